# Copyright (C) 2026 knot-mxpolicy authors
# SPDX-License-Identifier: GPL-3.0-or-later
"""mxpolicyctl on its own, without knotd.

Usage errors (exit 2, nothing sent), connection errors (exit 3), the exact
request line sent for each command and option (MXP/1 framing and
percent-encoding of include/mxpolicy/protocol.h), and how responses are
reported (exit 0/1, stdout, stderr), against a fake server in a thread.

The binary is $MXPOLICYCTL (default: <repo>/tools/mxpolicyctl). The client
timeout is shortened with $MXPOLICYCTL_TIMEOUT_MS where a test needs it.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CTL = Path(os.environ.get("MXPOLICYCTL") or REPO / "tools" / "mxpolicyctl")
DEFAULT_SOCKET = "/run/knot/mxpolicy.sock"
MAX_RESPONSE = 4 * 1024 * 1024
HINT = "Try 'mxpolicyctl --help' for more information."

# One request line as include/mxpolicy/protocol.h defines it.
TOKEN = r"(?:[A-Za-z0-9\-._~:/+@,*]|%[0-9A-F]{2})+"
REQUEST_RE = re.compile(r"MXP/1 [a-z]+(?: (?:[a-z-]+=)?%s)*\n" % TOKEN)

pytestmark = pytest.mark.skipif(
    not os.access(CTL, os.X_OK),
    reason="mxpolicyctl not built: %s is not executable (set MXPOLICYCTL)" % CTL)


def run(*args, env=None, sock=None, timeout=20):
    """Run mxpolicyctl with a clean environment; return the CompletedProcess."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("MXPOLICYCTL")}
    e.update(env or {})
    argv = [str(CTL)] + (["-s", sock] if sock is not None else []) + list(args)
    return subprocess.run(argv, capture_output=True, env=e, timeout=timeout)


class FakeServer:
    """A UNIX stream server handling one connection at a time with 'handler'."""

    def __init__(self, path, handler):
        self.path = path
        self.handler = handler
        self.requests = []
        self.connections = 0
        self.errors = []
        self.stop_event = threading.Event()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop_event.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            self.connections += 1
            try:
                conn.settimeout(10)
                self.handler(self, conn)
            except OSError as e:  # The client went away: not our business.
                self.errors.append(e)
            finally:
                conn.close()

    def read_request(self, conn):
        """Read up to and including the LF (or EOF); record and return it."""
        data = b""
        while b"\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        self.requests.append(data)
        return data

    def sync(self):
        """Make sure every connection made so far has been handled: connects
        itself and waits for the answer (accept() is in backlog order)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(self.path)
            s.sendall(b"SYNC\n")
            while s.recv(4096):
                pass
        self.requests.pop()
        self.connections -= 1

    def stop(self):
        self.stop_event.set()
        self.sock.close()
        self.thread.join(5)


def replying(data):
    """Handler: read the request, send 'data', close."""
    def handler(server, conn):
        server.read_request(conn)
        conn.sendall(data)
    return handler


@pytest.fixture
def sockdir():
    # Short: sun_path holds 108 bytes, pytest's tmp_path may be longer.
    d = tempfile.mkdtemp(prefix="mxpctl-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def fake(sockdir):
    """fake(handler or bytes) -> a running FakeServer at a fresh path."""
    servers = []

    def make(handler=b"MXP/1 ok\n"):
        if isinstance(handler, bytes):
            handler = replying(handler)
        srv = FakeServer(os.path.join(sockdir, "s%d.sock" % len(servers)), handler)
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.stop()


# ---------------------------------------------------------------------------
# Help, version, usage errors.
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["-h"], ["--help"], ["down", "mx1", "-h"], ["--help", "bogus"]])
def test_help(args):
    p = run(*args)
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert out.startswith("Usage: mxpolicyctl [-s|--socket PATH] COMMAND")
    for word in ("status", "stats", "version", "down", "drain", "up", "auto", "weight",
                 "suspend", "resume", "--json", "--reason", "--for", "--force", "--dry-run",
                 DEFAULT_SOCKET, "MXPOLICYCTL_SOCKET"):
        assert word in out
    assert p.stderr == b""


@pytest.mark.parametrize("args", [["-V"], ["--version"], ["status", "--version"]])
def test_client_version(args):
    p = run(*args)
    assert p.returncode == 0, p.stderr
    assert re.fullmatch(r"mxpolicyctl \(knot-mxpolicy\) \S+, protocol MXP/1\n", p.stdout.decode())


USAGE_ERRORS = [
    ([], "no command given"),
    (["bogus"], "unknown command 'bogus'"),
    (["Status"], "unknown command 'Status'"),
    (["down"], "command 'down' needs an exchanger name"),
    (["drain"], "command 'drain' needs an exchanger name"),
    (["up"], "command 'up' needs an exchanger name"),
    (["auto"], "command 'auto' needs an exchanger name"),
    (["weight"], "command 'weight' needs NAME and N|default"),
    (["weight", "mx1.example.net"], "command 'weight' needs NAME and N|default"),
    (["weight", "mx1.example.net", "65536"], "invalid weight '65536'"),
    (["weight", "mx1.example.net", "99999999999999999999"], "invalid weight"),
    (["weight", "mx1.example.net", "abc"], "invalid weight 'abc'"),
    (["weight", "mx1.example.net", ""], "invalid weight ''"),
    (["weight", "mx1.example.net", "1x"], "invalid weight '1x'"),
    (["weight", "mx1.example.net", "-1"], "unknown option '-1'"),
    (["weight", "mx1.example.net", "1", "2"], "too many arguments for 'weight': '2'"),
    (["down", "mx1.example.net", "maintenance"],
     "too many arguments for 'down': 'maintenance' (give a reason with --reason TEXT)"),
    (["status", "mx1.example.net", "mx2.example.net"], "too many arguments for 'status'"),
    (["version", "x"], "too many arguments for 'version': 'x'"),
    (["stats", "x"], "too many arguments for 'stats'"),
    (["suspend", "now"], "too many arguments for 'suspend'"),
    (["resume", "now"], "too many arguments for 'resume'"),
    (["down", "a..b"], "invalid exchanger name 'a..b'"),
    (["down", ""], "invalid exchanger name ''"),
    (["down", "."], "invalid exchanger name '.'"),
    (["status", "x" * 64 + ".example"], "invalid exchanger name"),
    (["down", "mx1.example.net", "--json"], "option --json is not valid for 'down'"),
    (["drain", "mx1.example.net", "--force"], "option --force is not valid for 'drain'"),
    (["up", "mx1.example.net", "--for", "1h"], "option --for is not valid for 'up'"),
    (["up", "mx1.example.net", "--force"], "option --force is not valid for 'up'"),
    (["auto", "mx1.example.net", "--reason", "x"], "option --reason is not valid for 'auto'"),
    (["weight", "mx1.example.net", "5", "--reason", "x"], "option --reason is not valid for 'weight'"),
    (["status", "--dry-run"], "option --dry-run is not valid for 'status'"),
    (["stats", "--reason", "x"], "option --reason is not valid for 'stats'"),
    (["version", "--json"], "option --json is not valid for 'version'"),
    (["suspend", "--for", "1h"], "option --for is not valid for 'suspend'"),
    (["resume", "--reason", "x"], "option --reason is not valid for 'resume'"),
    (["--force", "suspend"], "option --force is not valid for 'suspend'"),
    (["down", "mx1.example.net", "--for", "2x"], "option --for: invalid duration '2x'"),
    (["down", "mx1.example.net", "--for", "0"], "option --for: invalid duration '0'"),
    (["down", "mx1.example.net", "--for", "31d"], "option --for: invalid duration '31d'"),
    (["down", "mx1.example.net", "--for", "2592001"], "option --for: invalid duration"),
    (["down", "mx1.example.net", "--for", "30m1h"], "option --for: invalid duration '30m1h'"),
    (["down", "mx1.example.net", "--for", "1h30"], "option --for: invalid duration '1h30'"),
    (["drain", "mx1.example.net", "--for", "h"], "option --for: invalid duration 'h'"),
    (["drain", "mx1.example.net", "--for="], "option --for: invalid duration ''"),
    (["down", "mx1.example.net", "--reason", "x" * 201], "option --reason: text too long (201 bytes, at most 200)"),
    (["down", "mx1.example.net", "--reason", "a\tb"], "option --reason: control characters"),
    (["down", "mx1.example.net", "--reason", "a\x7fb"], "option --reason: control characters"),
    (["down", "mx1.example.net", "--reason", ""], "option --reason: empty text"),
    (["down", "mx1.example.net", "--reason"], "option --reason needs a value"),
    (["down", "mx1.example.net", "--for"], "option --for needs a value"),
    (["down", "mx1.example.net", "--force", "--force"], "option --force given twice"),
    (["down", "mx1.example.net", "--reason", "a", "--reason=b"], "option --reason given twice"),
    (["status", "--json", "--json"], "option --json given twice"),
    (["status", "--bogus"], "unknown option '--bogus'"),
    (["status", "--json=1"], "option '--json' takes no value"),
    (["-x", "status"], "unknown option '-x'"),
    (["status", "-s"], "option -s needs a value"),
    (["status", "--socket"], "option --socket needs a value"),
    (["-s", "", "status"], "option --socket: empty path"),
    (["-s", "/a", "--socket", "/b", "status"], "option --socket given twice"),
]


@pytest.mark.parametrize("args,message", USAGE_ERRORS, ids=lambda v: repr(v)[:60])
def test_usage_error(fake, args, message):
    srv = fake()
    # The server in MXPOLICYCTL_SOCKET must never hear of it.
    p = run(*args, env={"MXPOLICYCTL_SOCKET": srv.path})
    assert p.returncode == 2, (p.stdout, p.stderr)
    err = p.stderr.decode()
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith("mxpolicyctl: ")
    assert message in lines[0]
    assert lines[1] == HINT
    assert p.stdout == b""
    srv.sync()
    assert srv.connections == 0 and srv.requests == []


@pytest.mark.parametrize("value", ["abc", "0", "-5", "10x", "3600001"])
def test_bad_timeout_env(fake, value):
    srv = fake()
    p = run("status", sock=srv.path, env={"MXPOLICYCTL_TIMEOUT_MS": value})
    assert p.returncode == 2
    assert "invalid MXPOLICYCTL_TIMEOUT_MS '%s'" % value in p.stderr.decode()
    srv.sync()
    assert srv.connections == 0


def test_reason_at_limit_is_accepted(fake):
    srv = fake()
    p = run("down", "mx1.example.net", "--reason", "r" * 200, sock=srv.path)
    assert p.returncode == 0, p.stderr
    assert srv.requests == [b"MXP/1 down mx1.example.net. reason=" + b"r" * 200 + b"\n"]


# ---------------------------------------------------------------------------
# Cannot connect.
# ---------------------------------------------------------------------------

def assert_connect_error(p, path, reason):
    assert p.returncode == 3, (p.stdout, p.stderr)
    first = p.stderr.decode().splitlines()[0]
    assert first == "mxpolicyctl: cannot connect to %s: %s" % (path, reason)
    assert p.stdout == b""


def test_connect_missing_socket(sockdir):
    path = os.path.join(sockdir, "missing.sock")
    assert_connect_error(run("status", sock=path), path, "No such file or directory")


def test_connect_env_socket(sockdir):
    path = os.path.join(sockdir, "from-env.sock")
    p = run("stats", env={"MXPOLICYCTL_SOCKET": path})
    assert_connect_error(p, path, "No such file or directory")


def test_connect_option_overrides_env(sockdir):
    path = os.path.join(sockdir, "from-option.sock")
    p = run("stats", "--socket", path, env={"MXPOLICYCTL_SOCKET": "/nonexistent/env.sock"})
    assert_connect_error(p, path, "No such file or directory")
    p = run("stats", "--socket=" + path)
    assert_connect_error(p, path, "No such file or directory")


def test_connect_default_socket():
    if os.path.exists(DEFAULT_SOCKET):
        pytest.skip("%s exists on this machine" % DEFAULT_SOCKET)
    assert_connect_error(run("status"), DEFAULT_SOCKET, "No such file or directory")
    # An empty MXPOLICYCTL_SOCKET means the default.
    p = run("status", env={"MXPOLICYCTL_SOCKET": ""})
    assert_connect_error(p, DEFAULT_SOCKET, "No such file or directory")


def test_connect_refused(sockdir):
    # Bound but not listening; and a regular file.
    path = os.path.join(sockdir, "dead.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    try:
        assert_connect_error(run("status", sock=path), path, "Connection refused")
    finally:
        s.close()
    plain = os.path.join(sockdir, "plain")
    Path(plain).write_text("not a socket\n")
    assert_connect_error(run("status", sock=plain), plain, "Connection refused")


def test_connect_path_too_long(sockdir):
    path = os.path.join(sockdir, "x" * 120)
    assert_connect_error(run("status", sock=path), path, "File name too long")


# ---------------------------------------------------------------------------
# The request line.
# ---------------------------------------------------------------------------

REQUESTS = [
    (["version"], "MXP/1 version\n"),
    (["status"], "MXP/1 status\n"),
    (["status", "--json"], "MXP/1 status json=1\n"),
    (["status", "MX1.Mail.Example.NET"], "MXP/1 status mx1.mail.example.net.\n"),
    (["--json", "status", "mx1.mail.example.net."], "MXP/1 status mx1.mail.example.net. json=1\n"),
    (["stats"], "MXP/1 stats\n"),
    (["stats", "--json"], "MXP/1 stats json=1\n"),
    (["down", "mx1.example.net"], "MXP/1 down mx1.example.net.\n"),
    (["down", "mx1.example.net", "--reason", "disk 100% full = bad", "--for", "1h30m",
      "--force", "--dry-run"],
     "MXP/1 down mx1.example.net. reason=disk%20100%25%20full%20%3D%20bad for=5400 force=1 dry-run=1\n"),
    # Options before the command, "--opt=value", order of options irrelevant.
    (["--dry-run", "--force", "--for=2h", "--reason=kernel update", "down", "mx1.example.net"],
     "MXP/1 down mx1.example.net. reason=kernel%20update for=7200 force=1 dry-run=1\n"),
    (["down", "mx1.example.net", "--for", "7200"], "MXP/1 down mx1.example.net. for=7200\n"),
    (["down", "mx1.example.net", "--for", "30d"], "MXP/1 down mx1.example.net. for=2592000\n"),
    (["down", "mx1.example.net", "--for", "1d2h3m4s"], "MXP/1 down mx1.example.net. for=93784\n"),
    (["drain", "mx2.example.net", "--reason", "kernel update", "--for", "90s"],
     "MXP/1 drain mx2.example.net. reason=kernel%20update for=90\n"),
    (["drain", "mx2.example.net", "--dry-run"], "MXP/1 drain mx2.example.net. dry-run=1\n"),
    # The safe set is not encoded; everything else is, UTF-8 byte by byte.
    (["up", "mx1.example.net", "--reason", "ok: back/up @ 10:00, ~all*+_-."],
     "MXP/1 up mx1.example.net. reason=ok:%20back/up%20@%2010:00,%20~all*+_-.\n"),
    (["up", "mx1.example.net", "--reason", "Wartung f\u00fcr \u00d6lpumpe"],
     "MXP/1 up mx1.example.net. reason=Wartung%20f%C3%BCr%20%C3%96lpumpe\n"),
    (["up", "mx1.example.net", "--reason", "a\"b'c#d&e?f[g]h\\i"],
     "MXP/1 up mx1.example.net. reason=a%22b%27c%23d%26e%3Ff%5Bg%5Dh%5Ci\n"),
    (["up", "MX1.EXAMPLE.NET."], "MXP/1 up mx1.example.net.\n"),
    (["auto", "mx1.example.net"], "MXP/1 auto mx1.example.net.\n"),
    (["auto", "mx1.example.net", "--dry-run"], "MXP/1 auto mx1.example.net. dry-run=1\n"),
    (["weight", "mx3.example.net", "300"], "MXP/1 weight mx3.example.net. 300\n"),
    (["weight", "mx3.example.net", "0"], "MXP/1 weight mx3.example.net. 0\n"),
    (["weight", "mx3.example.net", "65535"], "MXP/1 weight mx3.example.net. 65535\n"),
    (["weight", "mx3.example.net", "007"], "MXP/1 weight mx3.example.net. 7\n"),
    (["weight", "mx3.example.net", "default", "--dry-run"],
     "MXP/1 weight mx3.example.net. default dry-run=1\n"),
    (["suspend"], "MXP/1 suspend\n"),
    (["suspend", "--reason", "incident #42", "--dry-run"],
     "MXP/1 suspend reason=incident%20%2342 dry-run=1\n"),
    (["resume"], "MXP/1 resume\n"),
    (["resume", "--dry-run"], "MXP/1 resume dry-run=1\n"),
    # "--" ends the options.
    (["down", "--reason", "x", "--", "mx1.example.net"], "MXP/1 down mx1.example.net. reason=x\n"),
    # A name with a space (escaped by the name syntax, then percent-encoded).
    (["status", "odd name.example"], "MXP/1 status odd%5C032name.example.\n"),
]


@pytest.mark.parametrize("args,line", REQUESTS, ids=lambda v: repr(v)[:70])
@pytest.mark.parametrize("where", ["first", "last"])
def test_request_line(fake, args, line, where):
    srv = fake()
    sock = ["-s", srv.path]
    if where == "last" and "--" in args:
        where = "first"  # After "--", "-s" would be an argument.
    argv = sock + args if where == "first" else args + sock
    p = run(*argv)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"" and p.stderr == b""
    assert srv.requests == [line.encode()]
    assert REQUEST_RE.fullmatch(line)


def test_request_via_env_socket(fake):
    srv = fake()
    p = run("version", env={"MXPOLICYCTL_SOCKET": srv.path})
    assert p.returncode == 0, p.stderr
    assert srv.requests == [b"MXP/1 version\n"]


def test_option_socket_overrides_env(fake):
    used, unused = fake(), fake()
    p = run("stats", "--socket", used.path, env={"MXPOLICYCTL_SOCKET": unused.path})
    assert p.returncode == 0, p.stderr
    assert used.requests == [b"MXP/1 stats\n"]
    unused.sync()
    assert unused.requests == []


# ---------------------------------------------------------------------------
# Responses.
# ---------------------------------------------------------------------------

def test_ok_body_printed_as_is(fake):
    body = b"EXCHANGER  STATE\nmx1.example.net.  down \xc3\xa4 \x01raw\n\nlast line without LF"
    srv = fake(b"MXP/1 ok\n" + body)
    p = run("status", sock=srv.path)
    assert p.returncode == 0
    assert p.stdout == body
    assert p.stderr == b""


def test_ok_message(fake):
    srv = fake(b"MXP/1 ok mx1.example.net. down (was auto), until 2026-01-01 12:00\n")
    p = run("down", "mx1.example.net", sock=srv.path)
    assert p.returncode == 0
    assert p.stdout == b"mx1.example.net. down (was auto), until 2026-01-01 12:00\n"
    assert p.stderr == b""


def test_ok_message_with_json_goes_to_stderr(fake):
    body = b'{"exchangers": []}\n'
    srv = fake(b"MXP/1 ok 0 exchangers\n" + body)
    p = run("status", "--json", sock=srv.path)
    assert p.returncode == 0
    assert p.stdout == body
    assert p.stderr == b"0 exchangers\n"


def test_large_body(fake):
    body = bytes(range(256)) * 4096 * 3 + b"end\n"   # 3 MiB + 4
    srv = fake(b"MXP/1 ok\n" + body)
    p = run("status", sock=srv.path)
    assert p.returncode == 0
    assert p.stdout == body


def test_response_at_size_limit(fake):
    head = b"MXP/1 ok\n"
    srv = fake(head + b"y" * (MAX_RESPONSE - len(head)))
    p = run("status", sock=srv.path)
    assert p.returncode == 0, p.stderr
    assert len(p.stdout) == MAX_RESPONSE - len(head)


def test_response_too_long(fake):
    srv = fake(b"MXP/1 ok\n" + b"z" * MAX_RESPONSE)
    p = run("status", sock=srv.path)
    assert p.returncode == 1
    assert p.stderr.decode().startswith("error: response from %s too long" % srv.path)
    assert p.stdout == b""


def test_refused(fake):
    body = b"example.com.: mx1.example.net. mx2.example.net.\n"
    srv = fake(b"MXP/1 refused down would leave 1 MX set with every exchanger down\n" + body)
    p = run("down", "mx2.example.net", sock=srv.path)
    assert p.returncode == 1
    assert p.stderr == b"refused: down would leave 1 MX set with every exchanger down\n"
    assert p.stdout == body


def test_error(fake):
    srv = fake(b"MXP/1 error unknown exchanger 'mx9.example.net.'\n")
    p = run("auto", "mx9.example.net", sock=srv.path)
    assert p.returncode == 1
    assert p.stderr == b"error: unknown exchanger 'mx9.example.net.'\n"
    assert p.stdout == b""


@pytest.mark.parametrize("status", [b"refused", b"error"])
def test_status_without_message(fake, status):
    srv = fake(b"MXP/1 " + status + b"\n")
    p = run("resume", sock=srv.path)
    assert p.returncode == 1
    assert p.stderr == status + b"\n"


def test_message_control_characters_are_replaced(fake):
    srv = fake(b"MXP/1 error bad\x1b[31m thing\r\n")
    p = run("resume", sock=srv.path)
    assert p.returncode == 1
    assert p.stderr == b"error: bad?[31m thing?\n"


def test_error_sent_before_reading_the_request(fake):
    """A server that answers at once and closes (e.g. peer not permitted)."""
    def handler(server, conn):
        conn.sendall(b"MXP/1 error peer not permitted (uid 1234)\n")
    srv = fake(handler)
    for _ in range(5):
        p = run("status", sock=srv.path)
        assert p.returncode == 1
        assert p.stderr == b"error: peer not permitted (uid 1234)\n"


@pytest.mark.parametrize("reply", [
    b"",                              # Nothing at all.
    b"garbage\n",
    b"HTTP/1.1 200 OK\r\n\r\n",
    b"MXP/2 ok\n",
    b"MXP/1\n",
    b"MXP/1 \n",
    b"MXP/1 okay\n",
    b"MXP/1 OK\n",
    b"mxp/1 ok\n",
    b"MXP/1 ok",                      # No LF.
    b"MXP/1 ok\x00\n",
    b"\x00\x01\x02\xff" * 100,
], ids=repr)
def test_malformed_response(fake, reply):
    srv = fake(reply)
    p = run("status", sock=srv.path)
    assert p.returncode == 1, (p.stdout, p.stderr)
    err = p.stderr.decode(errors="replace")
    assert err.startswith("error: ")
    assert "malformed response" in err or "without a response" in err
    assert len(err.splitlines()) == 1
    assert p.stdout == b""


def test_server_closes_at_once(fake):
    def handler(server, conn):
        pass  # Closed without reading or answering.
    srv = fake(handler)
    for _ in range(5):
        p = run("down", "mx1.example.net", "--reason", "x" * 200, sock=srv.path)
        # Never killed by SIGPIPE.
        assert p.returncode == 1, (p.returncode, p.stderr)
        err = p.stderr.decode()
        assert err.startswith("error: ")
        assert "without a response" in err or "cannot send the request" in err


def test_timeout_no_answer(fake):
    def handler(server, conn):
        server.read_request(conn)
        server.stop_event.wait(30)
    srv = fake(handler)
    start = time.monotonic()
    p = run("status", sock=srv.path, env={"MXPOLICYCTL_TIMEOUT_MS": "300"})
    elapsed = time.monotonic() - start
    assert p.returncode == 1
    assert p.stderr == ("error: no complete response from %s within 300 ms\n" % srv.path).encode()
    assert 0.25 < elapsed < 5
    assert srv.requests == [b"MXP/1 status\n"]


def test_timeout_partial_answer(fake):
    """A status line, part of a body, then silence: still a timeout."""
    def handler(server, conn):
        server.read_request(conn)
        conn.sendall(b"MXP/1 ok\npartial")
        server.stop_event.wait(30)
    srv = fake(handler)
    p = run("status", sock=srv.path, env={"MXPOLICYCTL_TIMEOUT_MS": "300"})
    assert p.returncode == 1
    assert b"within 300 ms" in p.stderr
    assert p.stdout == b""


def test_timeout_never_accepted(sockdir):
    """Listening, never accepting: connect succeeds (backlog), no answer."""
    path = os.path.join(sockdir, "backlog.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(4)
    try:
        p = run("version", sock=path, env={"MXPOLICYCTL_TIMEOUT_MS": "200"})
        assert p.returncode == 1
        assert b"within 200 ms" in p.stderr
    finally:
        s.close()


def test_stdout_closed_early(fake):
    """A reader that goes away (mxpolicyctl status | head -1) is no crash."""
    srv = fake(b"MXP/1 ok\n" + b"line\n" * 200000)
    e = {k: v for k, v in os.environ.items() if not k.startswith("MXPOLICYCTL")}
    proc = subprocess.Popen([str(CTL), "-s", srv.path, "status"], env=e,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.read(5)
    proc.stdout.close()
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, (proc.returncode, err)
    assert proc.returncode != -signal.SIGPIPE
