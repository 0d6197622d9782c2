# Copyright (C) 2026 knot-mxpolicy authors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The control socket and mxpolicyctl against a real knotd.

Commands and their output (table and --json), --for expiry, --dry-run,
--force and the refusal that lists the MX sets a down would leave with
every exchanger down, remembered sets and the share each exchanger was
served first, persistence (knotc reload, zone-reload, restart, kill -9, kill
-9 in the middle of a burst of changes), corrupt and unreadable state
files, server-wide items only on the 'server' entry, the socket's access
rules (mode 0660 + SO_PEERCRED), hostile input on the raw socket, many
clients at once, and answers that stay correct while the state flips
quickly under query load.
"""

import calendar
import json
import os
import random
import re
import socket
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from healthzone import W_ZONE, expect, glue, mail_zone, reset, zone_mx
from healthzone import mx_names as names
from knotharness import assert_shares, check_additional

MAIL_ZONE = mail_zone()

ZONES = {
    "off.test": MAIL_ZONE,
    "solo.test": "@ 300 MX 10 mx3.off.test.\n",  # a second set that uses mx3.off.test.
    "w.test": W_ZONE,
    "flip.test": MAIL_ZONE,
}
INSTANCES = {
    "off": {"ttl-max": "120"},
    "w": {"weight": ["a.w.test. 3", "b.w.test. 1"]},
}
ZMODS = {"off.test": "off", "solo.test": "off", "w.test": "w", "flip.test": "off"}

COLUMNS = ["EXCHANGER", "OPERATOR", "EFFECTIVE", "WEIGHT", "SINCE", "UNTIL", "BY", "SETS", "FIRST",
           "REASON"]
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def healthy(knot, z="off.test"):
    expect(knot.query(z), zone_mx(z), 120, glue(z))


def entry(st, name):
    """The status --json entry of an exchanger, or None."""
    found = [e for e in st["exchangers"] if e["exchanger"] == name]
    assert len(found) <= 1, "exchanger listed twice: %r" % st
    return found[0] if found else None


def operator_view(st):
    """What the operator set: compared across reloads and restarts."""
    return (st["suspended"],
            sorted((e["exchanger"], e["operator"], e["effective"], e["weight"], e["since"], e["until"],
                    e["by"], e["reason"])
                   for e in st["exchangers"] if e["operator"] != "auto" or e["weight"] is not None))


def table(out):
    """Parse the status table: (header tokens, {name: row dict}, set lines)."""
    lines = [l for l in out.splitlines() if l.strip()]
    hdr_i = [i for i, l in enumerate(lines) if l.startswith("EXCHANGER")]
    assert len(hdr_i) == 1, "no status header in:\n%s" % out
    header = lines[hdr_i[0]].split()
    rows, sets = {}, []
    for l in lines[hdr_i[0] + 1:]:
        if l.startswith(" "):
            sets.append(l)
            continue
        f = l.split()
        assert len(f) >= len(COLUMNS), "short status row %r in:\n%s" % (l, out)
        row = dict(zip(COLUMNS[:-1], f[:len(COLUMNS) - 1]))
        row["REASON"] = " ".join(f[len(COLUMNS) - 1:])
        rows[row["EXCHANGER"]] = row
    return header, rows, sets


def raw(path, data=b"", shut=False, timeout=10.0):
    """One raw exchange on the control socket: send data, read until EOF."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(str(path))
    try:
        try:
            if data:
                s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return read_all(s)
    finally:
        s.close()


def read_all(s):
    buf = b""
    while True:
        try:
            c = s.recv(65536)
        except ConnectionResetError:
            break
        if not c:
            break
        buf += c
    return buf


def request(path, line, timeout=10.0):
    """A raw MXP/1 request line; returns (status, message, body)."""
    out = raw(path, ("MXP/1 %s\n" % line).encode(), timeout=timeout)
    head, _, body = out.partition(b"\n")
    parts = head.decode().split(" ", 2)
    assert parts[0] == "MXP/1", "bad response %r" % out
    return parts[1], (parts[2] if len(parts) > 2 else ""), body.decode()


@pytest.fixture(scope="module")
def knot(module_so, mxpolicyctl, mknot_factory):
    return mknot_factory(ZONES, INSTANCES, ZMODS)


@pytest.fixture
def k(knot):
    """The shared knotd, without operator states."""
    reset(knot)
    yield knot


def make(knot_factory, start=True, **kw):
    return knot_factory({"off.test": MAIL_ZONE}, {"off": {"ttl-max": "120"}}, {"off.test": "off"},
                        start=start, **kw)


# --------------------------------------------------------------------------- commands


def test_version(k):
    rc, out, err = k.ctl("version")
    assert rc == 0, (rc, out, err)
    assert re.fullmatch(r"mod-mxpolicy \S+, protocol 1\n", out), out


def test_status_table_and_json(k):
    """status: the documented columns, one row per exchanger with an operator
    entry or in a remembered set; status NAME adds the sets using it; --json
    parses with the documented keys; the change is logged."""
    z = "off.test"
    m1, m2, m3 = names(z)
    for _ in range(4):
        k.query(z)
    t0 = int(time.time())
    k.ctl_ok("down", "mx1.off.test", "--reason", "disk full")
    k.ctl_ok("weight", m2, "7")
    t1 = int(time.time())
    out = k.ctl_ok("status")
    header, rows, _ = table(out)
    assert header == COLUMNS, "status header %r, expected %r" % (header, COLUMNS)
    assert set(rows) >= {m1, m2, m3}, out
    r1 = rows[m1]
    assert (r1["OPERATOR"], r1["EFFECTIVE"], r1["WEIGHT"], r1["UNTIL"], r1["BY"], r1["REASON"]) == \
        ("down", "down", "-", "-", "0", "disk full"), out
    assert ISO.match(r1["SINCE"]), out
    since = calendar.timegm(time.strptime(r1["SINCE"], "%Y-%m-%dT%H:%M:%SZ"))
    assert t0 - 1 <= since <= t1 + 1, (r1, t0, t1)
    assert int(r1["SETS"]) >= 1 and re.fullmatch(r"\d+\.\d%|-", r1["FIRST"]), out
    r2 = rows[m2]
    assert (r2["OPERATOR"], r2["EFFECTIVE"], r2["WEIGHT"], r2["REASON"]) == ("auto", "up", "7", "-"), out
    r3 = rows[m3]
    assert (r3["OPERATOR"], r3["EFFECTIVE"], r3["WEIGHT"]) == ("auto", "up", "-"), out

    # status NAME (no trailing dot, other case): that row and the sets using it
    out = k.ctl_ok("status", "MX1.off.TEST")
    header, rows, sets = table(out)
    assert list(rows) == [m1], out
    assert any(re.fullmatch(r"\s+off\.test\.\s+exchangers: mx1\.off\.test\., mx2\.off\.test\., "
                            r"mx3\.off\.test\.\s+first: \d+ of \d+ answers", l) for l in sets), out

    st = k.ctl_json("status")
    assert isinstance(st["suspended"], bool) and isinstance(st["generation"], int), st
    e = entry(st, m1)
    assert e is not None, st
    for key, typ in (("exchanger", str), ("operator", str), ("effective", str), ("since", int),
                     ("until", int), ("by", int), ("reason", str), ("answers", int),
                     ("served_first", int), ("sets", list)):
        assert isinstance(e.get(key), typ), "key %s of %r" % (key, e)
    assert "weight" in e and e["weight"] is None, e
    assert (e["operator"], e["effective"], e["by"], e["reason"], e["until"]) == ("down", "down", 0, "disk full", 0)
    assert t0 - 1 <= e["since"] <= t1 + 1, e
    assert entry(st, m2)["weight"] == 7
    [s] = [s for s in e["sets"] if s["zone"] == "off.test."]
    assert s["exchangers"] == [m1, m2, m3], s
    assert isinstance(s["answers"], int) and isinstance(s["served_first"], int), s

    # an exchanger nobody set nor answered: auto/up
    st = k.ctl_json("status", "nosuch.example")
    e = entry(st, "nosuch.example.")
    assert e is not None and (e["operator"], e["effective"], e["weight"]) == ("auto", "up", None), st
    # nobody set it: no uid to show
    assert e["by"] is None and e["since"] == 0, e

    log = k.wait_log("exchanger mx1.off.test.: auto, weight default -> down, weight default, "
                     "reason: disk full, by uid 0")
    assert "exchanger mx2.off.test.: auto, weight default -> auto, weight 7, by uid 0" in log


def test_stats(k):
    out = k.ctl_ok("stats")
    for key in ("suspended:", "generation:", "exchangers:", "requests:", "changes:", "refused:",
                "errors:", "denied:", "uptime:", "state file: %s" % k.state_path):
        assert re.search(r"(?m)^" + re.escape(key), out), "stats lacks %r:\n%s" % (key, out)
    s1 = k.ctl_json("stats")
    for key in ("suspended", "generation", "exchangers", "down", "drain", "up", "weight_overrides",
                "requests", "changes", "refused", "errors", "denied", "uptime"):
        assert key in s1, "stats --json lacks %r: %r" % (key, s1)
    k.ctl_ok("drain", "mx2.off.test")
    s2 = k.ctl_json("stats")
    assert s2["requests"] >= s1["requests"] + 2, (s1, s2)
    assert s2["changes"] == s1["changes"] + 1, (s1, s2)
    assert s2["drain"] == s1["drain"] + 1 and s2["generation"] > s1["generation"], (s1, s2)


def test_commands_names_and_answers(k):
    """Every change command with and without the trailing dot, in any case;
    the next answer follows each one."""
    z = "off.test"
    m1, m2, m3 = names(z)
    steps = [
        (("down", "mx1.off.test"), ("down", "down", None), [(10, m2), (20, m3)], 60),
        (("up", "MX1.OFF.TEST."), ("up", "up", None), zone_mx(z), 120),
        (("drain", "Mx1.Off.Test"), ("drain", "drain", None), None, 60),
        (("auto", "mx1.off.test."), (None, None, None), zone_mx(z), 120),
        (("weight", "mx1.off.test", "9"), ("auto", "up", 9), None, 120),
        (("weight", "MX1.off.test.", "default"), (None, None, None), zone_mx(z), 120),
    ]
    for args, want, mx, ttl in steps:
        out = k.ctl_ok(*args)
        assert out.startswith(m1 + ": "), "%s: %r" % (args, out)
        e = entry(k.ctl_json("status", m1), m1)
        if want[0] is None:
            assert e["operator"] == "auto" and e["weight"] is None, (args, e)
        else:
            assert (e["operator"], e["effective"], e["weight"]) == want, (args, e)
        r = k.query(z)
        if mx is not None:
            expect(r, mx, ttl, glue(z))
        else:
            assert set(r.mx_ttls()) == {ttl}, (args, r)
    # weight 9 vs 1 in the best tier: mx1 wins most answers
    k.ctl_ok("weight", m1, "9")
    firsts = sum(1 for _ in range(40) if min(k.query(z).mx())[1] == m1)
    assert firsts >= 20, "weight 9 of 10 won only %d of 40" % firsts


def test_usage_and_connect_errors(k):
    s1 = k.ctl_json("stats")
    rc, out, err = k.ctl("down")
    assert rc == 2, (rc, out, err)
    rc, out, err = k.ctl("weight", "mx1.off.test", "70000")
    assert rc == 2, (rc, out, err)
    rc, out, err = k.ctl("status", socket_path=k.dir / "nosuch.sock")
    assert rc == 3 and "cannot connect" in err, (rc, out, err)
    s2 = k.ctl_json("stats")
    assert s2["requests"] == s1["requests"] + 1, "a usage error reached the server: %r %r" % (s1, s2)


def test_for_expiry(k):
    """--for 2 / 2s: the state ends by itself about 2 s later (down and
    drain), answers follow, the expiry is logged."""
    z = "off.test"
    m1, m2, m3 = names(z)
    k.ctl_ok("down", m1, "--for", "2", "--reason", "short")
    k.ctl_ok("drain", m2, "--for", "2s")
    st = k.ctl_json("status")
    for n in (m1, m2):
        e = entry(st, n)
        assert e["until"] - e["since"] == 2, e
    out = k.ctl_ok("status", m1)
    _, rows, _ = table(out)
    assert ISO.match(rows[m1]["UNTIL"]), out
    expect(k.query(z), [(10, m2), (20, m3)], 60, glue(z))
    set_at = min(entry(st, n)["since"] for n in (m1, m2))
    deadline = time.time() + 6
    while time.time() < deadline:
        st = k.ctl_json("status")
        if all(entry(st, n) is None or entry(st, n)["operator"] == "auto" for n in (m1, m2)):
            break
        time.sleep(0.1)
    back = time.time()
    for n in (m1, m2):
        e = entry(st, n)
        assert e is None or (e["operator"], e["until"], e["reason"]) == ("auto", 0, ""), st
    assert back >= set_at + 2 - 1, "expired too early"
    assert back <= set_at + 2 + 2.5, "expired %.1f s after setting (--for 2)" % (back - set_at)
    healthy(k, z)
    k.wait_log("exchanger mx1.off.test.: down expired -> auto")
    log = k.wait_log("exchanger mx2.off.test.: drain expired -> auto")
    assert re.search(r"exchanger mx1\.off\.test\.: auto, weight default -> down, weight default, "
                     r"until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, reason: short, by uid 0", log), log


def test_dry_run_changes_nothing(k):
    """--dry-run answers what would change and changes nothing: registry
    generation, state file, answers, log, counters."""
    z = "off.test"
    m1, m2, m3 = names(z)
    k.ctl_ok("weight", m3, "5")  # some state so that the file exists
    st0 = k.ctl_json("status")
    s0 = k.ctl_json("stats")
    file0 = k.state_path.read_bytes()
    mtime0 = os.stat(k.state_path).st_mtime_ns
    log0 = len(k.log())
    for args in (("down", m1), ("down", m1, "--for", "1h", "--reason", "x"), ("drain", m1),
                 ("up", m1), ("auto", m2), ("weight", m1, "5"), ("weight", m3, "default"),
                 ("suspend", "--reason", "y"), ("resume",)):
        rc, out, err = k.ctl(*(args + ("--dry-run",)))
        assert rc == 0, (args, rc, out, err)
        assert out.startswith("would "), (args, out)
        if args[0] not in ("suspend", "resume"):
            assert out.startswith("would change %s: " % fqdn_of(args[1])) and " -> " in out, (args, out)
        r = k.query(z)
        expect(r, zone_mx(z), 120, glue(z))
    out = k.ctl_ok("down", m1, "--dry-run", "--reason", "r")
    assert out.strip() == "would change %s: auto, weight default -> down, weight default, reason: r" % m1, out
    st1 = k.ctl_json("status")
    assert st1["generation"] == st0["generation"], "a dry run published a change"
    assert operator_view(st1) == operator_view(st0)
    assert k.state_path.read_bytes() == file0 and os.stat(k.state_path).st_mtime_ns == mtime0, \
        "a dry run rewrote the state file"
    assert k.ctl_json("stats")["changes"] == s0["changes"]
    assert " -> " not in k.log()[log0:] and "suspended" not in k.log()[log0:], k.log()[log0:]


def fqdn_of(n):
    n = n.lower()
    return n if n.endswith(".") else n + "."


def test_down_refused_lists_sets_then_force(k):
    """A down that would leave remembered sets with every exchanger down is
    refused (exit 1) with the list of those sets, also as a dry run; drain
    counts as alive; --force does it and answers go all-down."""
    z = "off.test"
    m1, m2, m3 = names(z)
    k.query(z)
    k.query("solo.test")
    k.ctl_ok("down", m1)
    k.ctl_ok("down", m2)
    s0 = k.ctl_json("stats")
    gen0 = k.ctl_json("status")["generation"]
    for extra in ((), ("--dry-run",)):
        rc, out, err = k.ctl("down", m3, "--reason", "x", *extra)
        assert rc == 1, (extra, rc, out, err)
        assert "refused: would leave 2 MX set(s) with every exchanger down, use --force" in err, err
        lines = sorted(l.strip() for l in out.splitlines() if l.strip())
        assert lines == ["off.test.: mx1.off.test., mx2.off.test., mx3.off.test.",
                         "solo.test.: mx3.off.test."], out
    st = k.ctl_json("status")
    assert st["generation"] == gen0 and entry(st, m3)["operator"] == "auto", st
    assert k.ctl_json("stats")["refused"] == s0["refused"] + 2
    expect(k.query(z), zone_mx(z), 60, glue(z))  # tier-failover off: the down best tier stays
    expect(k.query("solo.test"), [(10, m3)], 120, {})

    # drain is alive: allowed, and a down after it is still refused
    k.ctl_ok("drain", m3)
    rc, out, err = k.ctl("down", m3)
    assert rc == 1 and "would leave 2 MX set(s)" in err, (rc, out, err)

    base = k.zone_stats(z)
    out = k.ctl_ok("down", m3, "--force")
    assert "-> down" in out, out
    assert entry(k.ctl_json("status"), m3)["operator"] == "down"
    r = k.query(z)
    assert sorted(r.mx()) == sorted(zone_mx(z)) and set(r.mx_ttls()) == {60}, r
    check_additional(r, glue(z))
    assert k.zone_stats(z)["all-down"] == base["all-down"] + 1
    expect(k.query("solo.test"), [(10, m3)], 60, {})
    # nothing more to refuse for an exchanger already down (idempotent)
    k.ctl_ok("down", m3, "--reason", "still")


def test_status_name_share_served_first(k):
    """status NAME: the sets an exchanger is in and how often it was served
    first; over a few hundred answers the shares follow the weights 3:1
    (chi-square, alpha 0.001, df 1). Counts are harvested from the workers
    and may miss a few answers by design: the total is bounded loosely."""
    z = "w.test"
    ex = ["a.w.test.", "b.w.test.", "c.w.test."]
    k.query(z)

    def counts():
        st = k.ctl_json("status")
        out = {}
        for n in ex:
            e = entry(st, n)
            assert e is not None, "exchanger %s of an answered set not listed: %r" % (n, st)
            [s] = [s for s in e["sets"] if s["zone"] == "w.test."]
            assert s["exchangers"] == ex, s
            out[n] = (s["answers"], s["served_first"])
        assert len({a for a, _ in out.values()}) == 1, "one set, different answer counts: %r" % out
        return out

    before = counts()
    n = 400
    for _ in range(n):
        k.query(z)
    after = counts()
    answers = after[ex[0]][0] - before[ex[0]][0]
    assert n - 20 <= answers <= n, "set answered %d times, counted %d" % (n, answers)
    first = {e: after[e][1] - before[e][1] for e in ex}
    assert first["c.w.test."] == 0, first
    assert first["a.w.test."] + first["b.w.test."] == answers, (first, answers)
    assert_shares({e: first[e] for e in ex[:2]}, {"a.w.test.": 3, "b.w.test.": 1},
                  "served first in w.test (df=1)")

    # ties count for each: in off.test (equal weights) mx1 and mx2 are both
    # served first in every answer, mx3 never
    def set_counts(z, ex):
        st = k.ctl_json("status")
        return {n: [(s["answers"], s["served_first"]) for s in entry(st, n)["sets"]
                    if s["zone"] == z][0] for n in ex}
    k.query("off.test")
    ob = set_counts("off.test.", names("off.test"))
    for _ in range(50):
        k.query("off.test")
    oa = set_counts("off.test.", names("off.test"))
    m1, m2, m3 = names("off.test")
    da = oa[m1][0] - ob[m1][0]
    assert 40 <= da <= 50, (ob, oa)
    assert oa[m1][1] - ob[m1][1] == da and oa[m2][1] - ob[m2][1] == da, (ob, oa)
    assert oa[m3][1] - ob[m3][1] == 0, (ob, oa)

    # the table and the per-set lines say the same
    out = k.ctl_ok("status", "a.w.test")
    _, rows, sets = table(out)
    st = k.ctl_json("status", "a.w.test")
    e = entry(st, "a.w.test.")
    share = 100.0 * e["served_first"] / e["answers"]
    assert rows["a.w.test."]["FIRST"] == "%.1f%%" % share, (out, e)
    assert rows["a.w.test."]["SETS"] == str(len(e["sets"])), (out, e)
    [s] = [s for s in e["sets"] if s["zone"] == "w.test."]
    assert any(re.fullmatch(r"\s+w\.test\.\s+exchangers: a\.w\.test\., b\.w\.test\., c\.w\.test\.\s+"
                            r"first: %d of %d answers" % (s["served_first"], s["answers"]), l)
               for l in sets), (out, s)


def test_state_survives_reload_and_zone_reload(k):
    """knotc reload and knotc -f zone-reload: same states, same socket and
    thread (no second start), answers right after."""
    z = "off.test"
    m1, m2, m3 = names(z)
    k.ctl_ok("down", m1, "--reason", "maint", "--for", "1h")
    k.ctl_ok("weight", "a.w.test", "7")

    def ops():
        sus, rows = operator_view(k.ctl_json("status"))
        return sus, [r for r in rows if r[0] != m3]

    view = ops()
    ready = k.log().count("control socket '%s' ready" % k.socket_path)
    # expires after the reload: logged by the thread, not by an unloaded instance
    k.ctl_ok("drain", m3, "--for", "1")
    k.reload()
    assert ops() == view
    expect(k.query(z), [(10, m2), (20, m3)], 60, glue(z))
    rc, out = k.knotc("-f", "zone-reload", z)
    assert rc == 0, out
    time.sleep(0.3)
    assert ops() == view
    expect(k.query(z), [(10, m2), (20, m3)], 60, glue(z))
    assert k.log().count("control socket '%s' ready" % k.socket_path) == ready, \
        "the control thread was restarted by a reload:\n%s" % k.log_tail()
    k.wait_log("exchanger mx3.off.test.: drain expired -> auto")
    assert k.alive()
    assert ops() == view
    k.ctl_ok("auto", m1)
    healthy(k, z)


# --------------------------------------------------------------------------- persistence


def test_state_survives_restart_and_kill9(module_so, mxpolicyctl, knot_factory):
    """Every accepted change is on disk before "ok": a clean restart and a
    kill -9 keep it, and the first answer after the start follows it."""
    kn = make(knot_factory)
    z = "off.test"
    m1, m2, m3 = names(z)
    kn.ctl_ok("down", m1, "--reason", "maint", "--for", "1h")
    kn.ctl_ok("drain", m2)
    kn.ctl_ok("weight", m3, "5")
    view = operator_view(kn.ctl_json("status"))

    kn.restart()
    r = kn.query(z)  # the first MX query of this process
    prefs = {e: p for p, e in r.mx()}
    assert set(prefs) == {m2, m3} and set(r.mx_ttls()) == {60}, "state lost by a restart:\n%s" % r
    assert operator_view(kn.ctl_json("status")) == view
    assert "state file '%s' loaded, 3 exchanger(s)" % kn.state_path in kn.log()

    kn.ctl_ok("suspend", "--reason", "test")
    view = operator_view(kn.ctl_json("status"))
    kn.kill9_restart()
    expect(kn.query(z), zone_mx(z), 300, glue(z))  # suspended: as the zone has it
    assert operator_view(kn.ctl_json("status")) == view
    kn.ctl_ok("resume")
    kn.kill9_restart()
    r = kn.query(z)
    assert {e for _, e in r.mx()} == {m2, m3}, r
    assert kn.ctl_json("status")["suspended"] is False


def test_kill9_during_change_burst(module_so, mxpolicyctl, knot_factory):
    """kill -9 while changes are being made as fast as possible: the state
    file always loads (never corrupt) and holds a change that was
    acknowledged, or the one in flight at the kill."""
    kn = make(knot_factory)
    name = "mx2.off.test."
    rnd = random.Random(1234)
    value = 0
    for rnd_i in range(4):
        acked = [None]
        attempted = [None]
        stop = threading.Event()
        path = kn.socket_path
        start_value = value

        def burst():
            v = start_value
            while not stop.is_set():
                v = v % 65535 + 1
                attempted[0] = v
                try:
                    st, msg, _ = request(path, "weight %s %d" % (name, v), timeout=3)
                except (OSError, AssertionError):
                    return
                if st != "ok":
                    return
                acked[0] = v

        t = threading.Thread(target=burst)
        t.start()
        time.sleep(0.15 + rnd.random() * 0.3)
        kn.kill9()
        stop.set()
        t.join(10)
        assert acked[0] is not None, "no change acknowledged before the kill"
        kn.start()
        log = kn.log()
        assert "corrupt" not in log, "state file reported corrupt after kill -9:\n%s" % kn.log_tail()
        assert not list(kn.dir.glob("mxpolicy.state.corrupt-*"))
        e = entry(kn.ctl_json("status", name), name)
        assert e["weight"] in (acked[0], attempted[0]), \
            ("after kill -9 the state holds weight %r; last acknowledged %r, in flight %r"
             % (e["weight"], acked[0], attempted[0]))
        value = e["weight"]
        # DNS answers with the module working
        r = kn.query("off.test")
        assert {x for _, x in r.mx()} == set(names("off.test")), r


def write_state(kn, kind):
    """Put a corrupt or foreign state file in place (kn stopped)."""
    p = kn.state_path
    if kind == "garbage":
        p.write_bytes(b"this is not a state file\n\x01\x02 at all\n")
    elif kind == "binary":
        p.write_bytes(bytes(range(256)) * 8)
    elif kind == "json":
        p.write_bytes(b'{"mx1.off.test.": "down"}\n')
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "truncated":
        # a real file, cut in the middle of its last line
        kn.start()
        kn.ctl_ok("down", "mx1.off.test", "--reason", "a reason")
        kn.ctl_ok("drain", "mx2.off.test")
        kn.stop()
        data = p.read_bytes()
        p.write_bytes(data[:len(data) - 4])
    return p.read_bytes()


@pytest.mark.parametrize("kind", ["garbage", "binary", "json", "empty", "truncated"])
def test_corrupt_state_file_moved_aside(module_so, mxpolicyctl, knot_factory, kind):
    """A corrupt or foreign state file is logged, moved aside, and the server
    starts without operator states, answers, and saves new changes."""
    kn = make(knot_factory, start=False)
    data = write_state(kn, kind)
    kn.start()
    log = kn.log()
    p = str(kn.state_path)
    m = re.search(r"state file '%s' is corrupt \(.+\), moved to '(%s\.corrupt-\d+(?:-\d+)?)'"
                  % (re.escape(p), re.escape(p)), log)
    assert m, "no corrupt-file message in the log:\n%s" % kn.log_tail()
    moved = m.group(1)
    assert open(moved, "rb").read() == data, "the moved file does not hold the old bytes"
    assert not kn.state_path.exists()
    assert kn.alive()
    healthy(kn)
    st = kn.ctl_json("status")
    assert operator_view(st) == (False, []), st
    kn.ctl_ok("down", "mx3.off.test")
    assert kn.state_path.exists()
    kn.restart()
    assert kn.log().count("is corrupt") == 1
    assert entry(kn.ctl_json("status"), "mx3.off.test.")["operator"] == "down"


def test_change_not_saved_is_not_made(module_so, mxpolicyctl, knot_factory):
    """A change that cannot be saved (the state file's directory is missing) is
    refused with a clear error and not applied: "ok" always means saved."""
    kn = make(knot_factory, start=False)
    kn.state_file = kn.dir / "missing" / "mxpolicy.state"
    kn.start()
    healthy(kn)
    gen0 = kn.ctl_json("status")["generation"]
    rc, out, err = kn.ctl("down", "mx1.off.test")
    assert rc == 1, (rc, out, err)
    assert "cannot save the state file" in err, err
    healthy(kn)
    st = kn.ctl_json("status")
    assert st["generation"] == gen0 and operator_view(st) == (False, []), st
    kn.wait_log("cannot save the state file")
    (kn.dir / "missing").mkdir()
    kn.ctl_ok("down", "mx1.off.test")
    expect(kn.query("off.test"), zone_mx("off.test")[1:], 60, glue("off.test"))
    assert kn.state_file.exists()


def test_unreadable_state_file_not_overwritten(module_so, mxpolicyctl, knot_factory):
    """A state file that exists but cannot be read (here a link to
    /proc/self/mem: reading offset 0 fails with EIO, even for root) is logged
    and never overwritten: the server answers, changes fail clearly."""
    kn = make(knot_factory, start=False)
    os.symlink("/proc/self/mem", kn.state_path)
    kn.start()
    kn.wait_log("cannot read state file '%s'" % kn.state_path)
    healthy(kn)
    rc, out, err = kn.ctl("down", "mx1.off.test")
    assert rc == 1, (rc, out, err)
    assert "cannot save the state file" in err and "refusing to overwrite" in err, err
    healthy(kn)
    assert os.path.islink(kn.state_path) and os.readlink(kn.state_path) == "/proc/self/mem"


def test_server_items_custom_paths(module_so, mxpolicyctl, knot_factory):
    """control-socket and state-file on the 'server' entry (which needs no
    zone) are used; the socket is mode 0660, owned by knotd's user and group."""
    kn = make(knot_factory, start=False)
    (kn.dir / "run").mkdir()
    (kn.dir / "lib").mkdir()
    kn.control_socket = kn.dir / "run" / "ctl.sock"
    kn.state_file = kn.dir / "lib" / "my.state"
    kn.start()
    st = os.stat(kn.control_socket)
    assert stat.S_ISSOCK(st.st_mode), st
    assert stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
    assert (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid())
    assert not (kn.dir / "mxpolicy.sock").exists()
    kn.ctl_ok("down", "mx1.off.test")
    assert kn.state_file.exists() and not (kn.dir / "mxpolicy.state").exists()
    rc, out, err = kn.ctl("status", socket_path=kn.dir / "mxpolicy.sock")
    assert rc == 3, (rc, out, err)
    kn.restart()
    assert entry(kn.ctl_json("status"), "mx1.off.test.")["operator"] == "down"


@pytest.mark.parametrize("item", ["control-socket", "state-file"])
def test_conf_check_server_items_only_on_server(module_so, knot_factory, item):
    kn = knot_factory({"off.test": MAIL_ZONE}, {"off": {"ttl-max": "120", item: "/tmp/x"}},
                      {"off.test": "off"}, start=False)
    rc, out = kn.conf_check()
    assert rc != 0, "conf-check accepted %s on a zone entry:\n%s" % (item, out)
    assert "'%s' is server-wide, set it on the entry with id 'server'" % item in out, out
    kn2 = knot_factory({"off.test": MAIL_ZONE}, {"server": {item: str(kn.dir / "x")},
                                                  "off": {"ttl-max": "120"}},
                       {"off.test": "off"}, start=False)
    rc, out = kn2.conf_check()
    assert rc == 0, "conf-check rejected %s on the server entry:\n%s" % (item, out)


def test_last_instance_unload_stops_socket(module_so, mxpolicyctl, knot_factory):
    """With no zone using the module after a reload the thread stops and the
    socket goes; using it again brings both back with the saved states."""
    kn = make(knot_factory)
    kn.ctl_ok("down", "mx1.off.test")
    kn.zone_modules = {}
    kn.reload()
    deadline = time.monotonic() + 5
    while kn.socket_path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not kn.socket_path.exists(), "socket still there with no instance left"
    rc, out, err = kn.ctl("status")
    assert rc == 3, (rc, out, err)
    r = kn.query("off.test")
    assert r.mx() == zone_mx("off.test") and set(r.mx_ttls()) == {300}, r
    kn.zone_modules = {"off.test.": "off"}
    kn.reload()
    expect(kn.query("off.test"), zone_mx("off.test")[1:], 60, glue("off.test"))
    assert entry(kn.ctl_json("status"), "mx1.off.test.")["operator"] == "down"


# --------------------------------------------------------------------------- access and input


def test_peer_not_allowed(k):
    """Only root, knotd's user or a member of knotd's group: the socket is
    0660 (others cannot connect: exit 3); with 0666 the SO_PEERCRED check
    refuses them (exit 1, "permission denied", logged); a member of knotd's
    group, primary or supplementary, is served."""
    st = os.stat(k.socket_path)
    assert stat.S_IMODE(st.st_mode) == 0o660 and (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid()), st
    os.chmod(k.dir, 0o711)
    try:
        rc, out, err = k.ctl("status", prefix=NOBODY)
        assert rc == 3, "uid 65534 through a 0660 socket: %r" % ((rc, out, err),)
        s0 = k.ctl_json("stats")
        os.chmod(k.socket_path, 0o666)
        for args in (("status",), ("down", "mx1.off.test"), ("suspend",)):
            rc, out, err = k.ctl(*args, prefix=NOBODY)
            assert rc == 1, (args, rc, out, err)
            assert "permission denied" in err, (args, err)
        k.wait_log("control connection from uid 65534 refused")
        s1 = k.ctl_json("stats")
        assert s1["denied"] == s0["denied"] + 3, (s0, s1)
        assert s1["changes"] == s0["changes"] and not s1["suspended"]
        assert entry(k.ctl_json("status"), "mx1.off.test.") is None or \
            entry(k.ctl_json("status"), "mx1.off.test.")["operator"] == "auto"
        healthy(k)
        for groups in (["--regid=65534", "--groups=%d" % os.getegid()],
                       ["--regid=%d" % os.getegid(), "--clear-groups"]):
            rc, out, err = k.ctl("version", prefix=["setpriv", "--reuid=65534"] + groups)
            assert rc == 0, "member of knotd's group refused (%s): %r" % (groups, (rc, out, err))
    finally:
        os.chmod(k.socket_path, 0o660)
        os.chmod(k.dir, 0o700)


def test_bad_input_gets_errors(k):
    """Garbage, partial, oversized and slow input: an error reply each, the
    server stays up, states untouched, DNS answers right all along."""
    path = k.socket_path
    gen0 = k.ctl_json("status")["generation"]
    s0 = k.ctl_json("stats")

    # slow clients first: they wait for the idle timeout (5 s) meanwhile
    slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    slow.connect(str(path))
    partial_open = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    partial_open.connect(str(path))
    partial_open.sendall(b"MXP/1 vers")
    t_slow = time.monotonic()

    cases = [
        b"hello world\n",
        b"\x00\xff\xfe\x80\n",
        b"MXP/2 version\n",
        b"MXP/1\n",
        b"MXP/1 frobnicate\n",
        b"MXP/1 down\n",
        b"MXP/1 down mx1.off.test. force=2\n",
        b"MXP/1 down mx1.off.test. bogus=1\n",
        b"MXP/1 weight mx1.off.test. 65536\n",
        b"MXP/1 down mx1.off.test. for=31d\n",
        b"MXP/1 down %zz\n",
        b"MXP/1  status\n",
        b"\n",
        b"\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
        b"MXP/1 status " + b"a" * 5000 + b"\n",   # oversized line
        b"MXP/1 status " + b"b" * 4200,          # oversized, no LF
    ]
    for data in cases:
        out = raw(path, data)
        assert out.startswith(b"MXP/1 error "), "input %r got %r" % (data[:60], out[:200])
        assert out.count(b"\n") >= 1 and len(out) < 4096, out[:200]
        healthy(k)
    out = raw(path, b"MXP/1 status " + b"c" * 5000 + b"\n")
    assert b"too long" in out, out
    # a megabyte without a line end: an error, the connection closed early
    out = raw(path, b"x" * (1 << 20))
    assert out.startswith(b"MXP/1 error ") and b"too long" in out, out[:200]
    # nothing at all, then EOF: nothing to answer
    raw(path, b"", shut=True)

    # meanwhile the thread serves others and DNS answers
    assert k.ctl_ok("version").startswith("mod-mxpolicy ")
    healthy(k)

    slow.settimeout(10)
    partial_open.settimeout(10)
    r_slow = read_all(slow)
    r_part = read_all(partial_open)
    waited = time.monotonic() - t_slow
    slow.close()
    partial_open.close()
    assert r_slow.startswith(b"MXP/1 error ") and b"timeout" in r_slow, r_slow
    assert r_part.startswith(b"MXP/1 error ") and b"timeout" in r_part, r_part
    assert 3.5 <= waited <= 8, "idle clients closed after %.1f s (documented 5 s)" % waited

    st = k.ctl_json("status")
    assert st["generation"] == gen0, "bad input changed the registry"
    assert k.ctl_json("stats")["errors"] >= s0["errors"] + len(cases) + 2
    healthy(k)
    assert k.alive()


def test_partial_request_then_eof_gets_error(k):
    """A partial request whose client then closes its sending side (it still
    reads) gets an error reply, like other bad input; nothing changes."""
    gen0 = k.ctl_json("status")["generation"]
    for data in (b"MXP/1 down mx1.off", b"MXP/1 version"):
        out = raw(k.socket_path, data, shut=True)
        assert out.startswith(b"MXP/1 error "), "partial request %r then EOF got %r" % (data, out)
    assert k.ctl_json("status")["generation"] == gen0
    healthy(k)


def test_many_concurrent_clients(k):
    """50 clients at once, changes and reads: every one answered, no change lost."""
    n = 50
    exs = ["n%02d.many.test." % i for i in range(n)]
    with ThreadPoolExecutor(max_workers=n) as pool:
        res = list(pool.map(lambda i: k.ctl("weight", exs[i], str(i + 1)), range(n)))
    bad = [(exs[i], r) for i, r in enumerate(res) if r[0] != 0]
    assert not bad, "clients not served: %r" % bad[:5]
    st = k.ctl_json("status")
    for i, e in enumerate(exs):
        assert entry(st, e) is not None and entry(st, e)["weight"] == i + 1, (e, entry(st, e))
    with ThreadPoolExecutor(max_workers=n) as pool:
        res = list(pool.map(lambda i: k.ctl("status", "--json"), range(n)))
    for rc, out, err in res:
        assert rc == 0, (rc, out, err)
        assert len(json.loads(out)["exchangers"]) >= n
    healthy(k)
    with ThreadPoolExecutor(max_workers=n) as pool:
        res = list(pool.map(lambda e: k.ctl("weight", e, "default"), exs))
    assert all(r[0] == 0 for r in res), [r for r in res if r[0] != 0][:5]


def test_client_cap_waits_in_backlog(k):
    """With every client slot held by an idle connection (16), one more client
    waits in the listen backlog (include/mxpolicy/protocol.h) and is served
    once a slot frees; DNS answers meanwhile."""
    holders = []
    try:
        for _ in range(16):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(str(k.socket_path))
            holders.append(s)
        time.sleep(0.3)
        result = {}
        t = threading.Thread(target=lambda: result.setdefault("r", k.ctl("version")))
        t.start()
        time.sleep(0.5)
        healthy(k)
        for s in holders:
            s.close()
        holders = []
        t.join(15)
        rc, out, err = result["r"]
        assert rc == 0 and out.startswith("mod-mxpolicy "), \
            "17th client with 16 idle ones: %r" % ((rc, out, err),)
    finally:
        for s in holders:
            s.close()


def test_answers_correct_while_state_flips(k):
    """A thread flips mx1 down/auto as fast as it can while others query:
    every response parses (strictly) and is exactly the before- or the
    after-state answer; the answer right after each "ok" follows it."""
    z = "flip.test"
    m1, m2, m3 = names(z)
    before = (zone_mx(z), 120)
    after = ([(10, m2), (20, m3)], 60)
    stop = threading.Event()
    errors = []
    seen = {"before": 0, "after": 0}
    lock = threading.Lock()

    def classify(r):
        got = (r.mx(), set(r.mx_ttls()))
        if got == (before[0], {before[1]}):
            check_additional(r, glue(z))
            return "before"
        if got == (after[0], {after[1]}):
            check_additional(r, glue(z))
            assert not r.additional(owner=m1)
            return "after"
        raise AssertionError("answer is neither the before- nor the after-state:\n%s" % r)

    def querier(tcp_every):
        i = 0
        while not stop.is_set():
            i += 1
            try:
                r = k.query(z, tcp=(i % tcp_every == 0))
                c = classify(r)
                with lock:
                    seen[c] += 1
            except Exception as e:  # collected and reported below
                errors.append(e)
                return

    def flipper():
        t_end = time.monotonic() + 2.5
        flips = 0
        try:
            while time.monotonic() < t_end:
                for cmd, want in (("down", "after"), ("auto", "before")):
                    rc, out, err = k.ctl(cmd, m1)
                    assert rc == 0, (cmd, rc, out, err)
                    c = classify(k.query(z))
                    assert c == want, "after '%s' returned ok the next answer is the %s-state" % (cmd, c)
                    flips += 1
        except Exception as e:
            errors.append(e)
        return flips

    threads = [threading.Thread(target=querier, args=(t,)) for t in (5, 3)]
    for t in threads:
        t.start()
    flips = flipper()
    stop.set()
    for t in threads:
        t.join(10)
    if errors:
        raise errors[0]
    assert flips >= 40, "only %d flips in 2.5 s" % flips
    assert seen["before"] > 20 and seen["after"] > 20, seen
    expect(k.query(z), zone_mx(z), 120, glue(z))


def test_long_for_keeps_the_control_loop_awake(k):
    """A --for of 30 days (the maximum) must not stop the control thread from
    waking: idle clients still get the timeout error, expiry stays pending."""
    k.ctl_ok("drain", "mx1.off.test.", "--for", "30d")
    t0 = time.monotonic()
    reply = raw(k.socket_path, b"MXP/1 vers", timeout=15.0)
    waited = time.monotonic() - t0
    assert reply.startswith(b"MXP/1 error timeout"), reply
    assert 3.0 <= waited <= 9.0, waited
    e = entry(k.ctl_json("status", "mx1.off.test."), "mx1.off.test.")
    assert e["operator"] == "drain" and e["until"] - e["since"] == 30 * 24 * 3600, e
