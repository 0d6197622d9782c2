# Copyright (C) 2026 knot-mxpolicy authors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Harness for the mod-mxpolicy integration tests.

Runs Debian's real knotd on a free loopback port with a configuration and
zones written to a temporary directory, loads the freshly built module from
the build tree, and queries it.  Every response is parsed twice: by
dnspython, and by a strict wire walker below that also checks that every
compression pointer points backwards to the start of a label written
earlier in the packet (a dangling pointer into rewritten bytes may still
parse with dnspython, but gives wrong names).
"""

import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections import namedtuple
from pathlib import Path

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MODULE = REPO / "module" / ".libs" / "mxpolicy.so"

KNOTD = shutil.which("knotd") or "/usr/sbin/knotd"
KNOTC = shutil.which("knotc") or "/usr/sbin/knotc"
KDIG = shutil.which("kdig") or "/usr/bin/kdig"


def mxpolicyctl_path():
    """The mxpolicyctl under test (MXPOLICYCTL or the build tree)."""
    env = os.environ.get("MXPOLICYCTL")
    return Path(env).resolve() if env else REPO / "tools" / "mxpolicyctl"

MOD = "mod-mxpolicy"


# --------------------------------------------------------------------------
# Module location
# --------------------------------------------------------------------------

def module_path():
    """Absolute path of the module under test (MXPOLICY_MODULE or the build tree)."""
    env = os.environ.get("MXPOLICY_MODULE")
    return Path(env).resolve() if env else DEFAULT_MODULE


def installed_copy():
    """Path of an installed mxpolicy.so in knotd's module dir, or None."""
    try:
        out = subprocess.run(["pkg-config", "--variable=module_instdir", "knotd"],
                             capture_output=True, text=True, timeout=10)
        moddir = out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        moddir = ""
    if not moddir:
        moddir = "/usr/lib/x86_64-linux-gnu/knot/modules-3.2"
    p = Path(moddir) / "mxpolicy.so"
    return p if p.exists() else None


# --------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------

# Critical values of the chi-square distribution for alpha = 0.001.
CHI2_CRIT_001 = {1: 10.828, 2: 13.816, 3: 16.266, 4: 18.467, 5: 20.515,
                 6: 22.458, 7: 24.322, 8: 26.124, 9: 27.877, 10: 29.588}


def chi_square(observed, weights):
    """Chi-square statistic of observed counts (dict key->n) vs weights (dict key->w).

    Keys with weight 0 must have count 0 (checked separately by callers).
    Returns (statistic, degrees of freedom, critical value at alpha 0.001).
    """
    keys = [k for k, w in weights.items() if w > 0]
    total = sum(observed.get(k, 0) for k in keys)
    wsum = float(sum(weights[k] for k in keys))
    stat = 0.0
    for k in keys:
        exp = total * weights[k] / wsum
        stat += (observed.get(k, 0) - exp) ** 2 / exp
    df = len(keys) - 1
    return stat, df, CHI2_CRIT_001[df]


def assert_shares(observed, weights, what=""):
    """Assert a chi-square goodness of fit at alpha = 0.001."""
    extra = set(observed) - set(weights)
    assert not extra, "%s: unexpected outcomes %r in %r" % (what, extra, observed)
    for k, w in weights.items():
        if w == 0:
            assert observed.get(k, 0) == 0, "%s: weight-0 %s chosen %d times" % (what, k, observed[k])
    stat, df, crit = chi_square(observed, weights)
    assert stat < crit, ("%s: chi-square %.2f >= %.3f (df=%d, alpha=0.001); observed %r, weights %r"
                         % (what, stat, crit, df, dict(observed), weights))
    return stat


# --------------------------------------------------------------------------
# Strict wire walker
# --------------------------------------------------------------------------

RR = namedtuple("RR", "section owner rtype rclass ttl rdata data")
# section: 0 answer, 1 authority, 2 additional; owner: lowercase text with
# trailing dot; data: decoded fields for the types this suite looks at.

T_A, T_NS, T_CNAME, T_SOA, T_PTR, T_MX, T_TXT, T_AAAA = 1, 2, 5, 6, 12, 15, 16, 28
T_OPT, T_RRSIG, T_NSEC, T_DNSKEY, T_TSIG = 41, 46, 47, 48, 250


class WireError(AssertionError):
    pass


class _Walker:
    def __init__(self, wire):
        self.w = wire
        self.labels = set()   # offsets where a literal label starts

    def name(self, off, limit=None):
        """Read a name at off; return (text, next offset after the name in place)."""
        w = self.w
        labels = []
        end = None
        jumps = 0
        pos = off
        while True:
            if pos >= len(w):
                raise WireError("name runs past the end of the packet at %d" % pos)
            ln = w[pos]
            if ln & 0xC0 == 0xC0:
                if pos + 1 >= len(w):
                    raise WireError("truncated compression pointer at %d" % pos)
                target = ((ln & 0x3F) << 8) | w[pos + 1]
                if end is None:
                    end = pos + 2
                if target >= pos:
                    raise WireError("compression pointer at %d points forward to %d" % (pos, target))
                if target not in self.labels:
                    raise WireError("compression pointer at %d points to %d, which is not the start "
                                    "of a label written earlier" % (pos, target))
                jumps += 1
                if jumps > 64:
                    raise WireError("compression loop at %d" % pos)
                pos = target
                continue
            if ln & 0xC0:
                raise WireError("bad label type 0x%02x at %d" % (ln, pos))
            if ln == 0:
                if end is None:
                    end = pos + 1
                break
            if jumps == 0:
                self.labels.add(pos)
            if pos + 1 + ln > len(w):
                raise WireError("label runs past the end of the packet at %d" % pos)
            labels.append(w[pos + 1:pos + 1 + ln])
            pos += 1 + ln
        text = ".".join(l.decode("latin-1").lower() for l in labels) + "."
        if limit is not None and end > limit:
            raise WireError("name at %d overruns its rdata (ends %d > %d)" % (off, end, limit))
        return text, end


def walk(wire):
    """Parse a DNS message strictly. Returns (header dict, question list, list of RR)."""
    if len(wire) < 12:
        raise WireError("short header (%d bytes)" % len(wire))
    wk = _Walker(wire)
    ident, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", wire[:12])
    hdr = dict(id=ident, flags=flags, qd=qd, an=an, ns=ns, ar=ar)
    pos = 12
    questions = []
    for _ in range(qd):
        n, pos = wk.name(pos)
        if pos + 4 > len(wire):
            raise WireError("truncated question")
        qt, qc = struct.unpack("!HH", wire[pos:pos + 4])
        pos += 4
        questions.append((n, qt, qc))
    rrs = []
    for section, count in ((0, an), (1, ns), (2, ar)):
        for _ in range(count):
            owner, pos = wk.name(pos)
            if pos + 10 > len(wire):
                raise WireError("truncated RR header in section %d" % section)
            rtype, rclass, ttl, rdlen = struct.unpack("!HHIH", wire[pos:pos + 10])
            pos += 10
            rstart, rend = pos, pos + rdlen
            if rend > len(wire):
                raise WireError("rdata of %s type %d overruns the packet" % (owner, rtype))
            data = None
            if rtype in (T_NS, T_CNAME, T_PTR):
                data, e = wk.name(rstart, rend)
                if e != rend:
                    raise WireError("rdata of %s type %d has trailing bytes" % (owner, rtype))
            elif rtype == T_MX:
                if rdlen < 3:
                    raise WireError("short MX rdata at %s" % owner)
                pref = struct.unpack("!H", wire[rstart:rstart + 2])[0]
                exch, e = wk.name(rstart + 2, rend)
                if e != rend:
                    raise WireError("MX rdata of %s has trailing bytes" % owner)
                data = (pref, exch)
            elif rtype == T_SOA:
                m, e = wk.name(rstart, rend)
                r, e = wk.name(e, rend)
                if e + 20 != rend:
                    raise WireError("bad SOA rdata length at %s" % owner)
                data = (m, r) + struct.unpack("!IIIII", wire[e:e + 20])
            elif rtype == T_A:
                if rdlen != 4:
                    raise WireError("A rdata length %d" % rdlen)
                data = socket.inet_ntop(socket.AF_INET, wire[rstart:rend])
            elif rtype == T_AAAA:
                if rdlen != 16:
                    raise WireError("AAAA rdata length %d" % rdlen)
                data = socket.inet_ntop(socket.AF_INET6, wire[rstart:rend])
            elif rtype == T_TXT:
                strs = []
                p = rstart
                while p < rend:
                    ln = wire[p]
                    if p + 1 + ln > rend:
                        raise WireError("TXT string overruns rdata at %s" % owner)
                    strs.append(wire[p + 1:p + 1 + ln])
                    p += 1 + ln
                data = strs
            elif rtype == T_RRSIG:
                if rdlen < 19:
                    raise WireError("short RRSIG")
                tc, alg, lab, ottl, exp, inc, tag = struct.unpack("!HBBIIIH", wire[rstart:rstart + 18])
                signer, e = wk.name(rstart + 18, rend)
                data = dict(covered=tc, alg=alg, labels=lab, orig_ttl=ottl, signer=signer)
            elif rtype == T_NSEC:
                data, e = wk.name(rstart, rend)
            elif rtype == T_TSIG:
                data, e = wk.name(rstart, rend)
            rrs.append(RR(section, owner, rtype, rclass, ttl, wire[rstart:rend], data))
            pos = rend
    if pos != len(wire):
        raise WireError("%d trailing bytes after the last record" % (len(wire) - pos))
    return hdr, questions, rrs


# --------------------------------------------------------------------------
# Response helpers
# --------------------------------------------------------------------------

class Response:
    """A parsed response: dnspython message + strict wire view."""

    def __init__(self, wire, msg, query, tcp):
        self.wire = wire
        self.msg = msg
        self.query = query
        self.tcp = tcp
        self.hdr, self.questions, self.rrs = walk(wire)

    # --- convenience views
    @property
    def rcode(self):
        return self.msg.rcode()

    @property
    def flags(self):
        return self.msg.flags

    @property
    def tc(self):
        return bool(self.msg.flags & dns.flags.TC)

    @property
    def aa(self):
        return bool(self.msg.flags & dns.flags.AA)

    def section(self, n, rtype=None, owner=None):
        out = []
        for rr in self.rrs:
            if rr.section != n:
                continue
            if rtype is not None and rr.rtype != rtype:
                continue
            if owner is not None and rr.owner != fqdn(owner):
                continue
            out.append(rr)
        return out

    def answer(self, rtype=None, owner=None):
        return self.section(0, rtype, owner)

    def additional(self, rtype=None, owner=None):
        return [rr for rr in self.section(2, rtype, owner) if rr.rtype not in (T_OPT, T_TSIG)]

    def mx(self, owner=None):
        """MX records of the answer in wire order: list of (pref, exchange)."""
        return [rr.data for rr in self.answer(T_MX, owner)]

    def mx_ttls(self):
        return [rr.ttl for rr in self.answer(T_MX)]

    def ecs(self):
        for opt in (self.msg.options or []):
            if isinstance(opt, dns.edns.ECSOption):
                return opt
        return None

    def dump(self):
        return self.msg.to_text()

    def __str__(self):
        return self.dump()


def fqdn(name):
    name = str(name).lower()
    return name if name.endswith(".") else name + "."


def winner_of(mx):
    """The unique exchanger with the lowest preference, or None if tied."""
    low = min(p for p, _ in mx)
    w = [e for p, e in mx if p == low]
    return w[0] if len(w) == 1 else None


def check_preference_rotation(resp_mx, zone_mx, weights, exact=True):
    """Check a `preference`-mode answer against the zone's MX set.

    zone_mx: list of (pref, exchange) as in the zone; weights: exchange ->
    effective weight.  Returns {zone pref: winner or None}.  Asserts:
    same exchangers, no record left out or duplicated; tiers keep their
    relative order; each tier whose members do not all have the same
    weight has exactly one winner strictly before the rest of the tier,
    the rest sharing one preference; equal-weight and single-record tiers
    share one preference.  With exact=True (zones leave room between
    tiers): the winner keeps the zone preference, unrotated tiers keep
    theirs, losers sit strictly between the winner and the next tier.
    """
    got = {}
    for p, e in resp_mx:
        assert e not in got, "duplicate exchanger %s in %r" % (e, resp_mx)
        got[e] = p
    zone = {fqdn(e): p for p, e in zone_mx}
    assert set(got) == set(zone), "exchanger set changed: %r vs zone %r" % (resp_mx, zone_mx)
    tiers = sorted(set(zone.values()))
    winners = {}
    prev_max = -1
    for i, tp in enumerate(tiers):
        members = [e for e in zone if zone[e] == tp]
        prefs = {e: got[e] for e in members}
        assert min(prefs.values()) > prev_max, \
            "tier %d does not sort strictly after the previous tier: %r" % (tp, resp_mx)
        prev_max = max(prefs.values())
        ws = {weights.get(e, 1) for e in members}
        rotated = len(members) > 1 and len(ws) > 1
        if rotated:
            low = min(prefs.values())
            win = [e for e in members if prefs[e] == low]
            assert len(win) == 1, "tier %d has no unique winner: %r" % (tp, resp_mx)
            rest = {prefs[e] for e in members if e != win[0]}
            assert len(rest) == 1, "losers of tier %d do not share one preference: %r" % (tp, resp_mx)
            if exact:
                nxt = tiers[i + 1] if i + 1 < len(tiers) else 65536
                assert low == tp, "winner of tier %d did not keep the preference: %r" % (tp, resp_mx)
                r = rest.pop()
                assert tp < r < nxt, "losers of tier %d not between %d and %d: %r" % (tp, tp, nxt, resp_mx)
            winners[tp] = win[0]
        else:
            assert len(set(prefs.values())) == 1, "unrotated tier %d split: %r" % (tp, resp_mx)
            if exact:
                assert set(prefs.values()) == {tp}, "unrotated tier %d renumbered: %r" % (tp, resp_mx)
            winners[tp] = None
    return winners


# --------------------------------------------------------------------------
# Knot
# --------------------------------------------------------------------------

def _q(v):
    """Quote a config value."""
    if isinstance(v, bool):
        v = "on" if v else "off"
    s = str(v)
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _item(key, v, indent):
    if isinstance(v, (list, tuple)):
        return "%s%s: [ %s ]\n" % (indent, key, ", ".join(_q(x) for x in v))
    return "%s%s: %s\n" % (indent, key, _q(v))


def _free_port():
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            try:
                t.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
        finally:
            u.close()
            t.close()
    raise RuntimeError("no free loopback port found")


DEFAULT_SOA = "@ 3600 IN SOA ns.{z} hostmaster.{z} {serial} 3600 600 86400 300\n@ 3600 IN NS ns.{z}\nns 3600 IN A 127.0.0.1\n"

TSIG_ALG = "hmac-sha256"


class Knot:
    """A knotd with temporary configuration and zones.

    zones: {zone name: zone body text ($ORIGIN is the zone; SOA, NS and ns A
            are added unless the body has its own SOA)}
    instances: {instance id: {item: value or list}}
    zone_modules: {zone name: instance id (or list of module refs)}
    control_socket, state_file: items of the reserved 'server' entry of the
            mod-mxpolicy section (written only when given; the module's
            defaults are <rundir>/mxpolicy.sock and <storage>/mxpolicy.state,
            both in the temporary directory)
    """

    def __init__(self, zones, instances=None, zone_modules=None, with_module=True,
                 module_file=None, ecs=False, udp_max_payload=None, tsig_keys=None,
                 zone_extra=None, server_extra=None, extra_conf="", default_ttl=300,
                 control_socket=None, state_file=None):
        self.zones = {fqdn(z): body for z, body in zones.items()}
        self.instances = instances or {}
        self.zone_modules = {fqdn(z): m for z, m in (zone_modules or {}).items()}
        self.zone_extra = {fqdn(z): e for z, e in (zone_extra or {}).items()}
        self.with_module = with_module
        self.module_file = Path(module_file) if module_file else module_path()
        self.ecs = ecs
        self.udp_max_payload = udp_max_payload
        self.tsig_keys = tsig_keys or {}  # name -> base64 secret
        self.server_extra = server_extra or {}
        self.extra_conf = extra_conf
        self.default_ttl = default_ttl
        self.control_socket = control_socket
        self.state_file = state_file
        self.dir = Path(tempfile.mkdtemp(prefix="kmx-"))
        self.conf = self.dir / "knot.conf"
        self.logfile = self.dir / "knotd.log"
        self.proc = None
        self.port = None
        self.serial = 1
        self._log_fh = None

    # ---------------------------------------------------------------- files
    def zone_file(self, zone):
        return self.dir / ("%szone" % fqdn(zone))

    def write_zone(self, zone, body=None):
        zone = fqdn(zone)
        if body is not None:
            self.zones[zone] = body
        body = self.zones[zone]
        text = "$ORIGIN %s\n$TTL %d\n" % (zone, self.default_ttl)
        if " SOA " not in body.upper():
            text += DEFAULT_SOA.format(z=zone, serial=self.serial)
        text += body if body.endswith("\n") else body + "\n"
        self.zone_file(zone).write_text(text)

    def config_text(self, port=None):
        port = port or self.port or 53
        c = "server:\n"
        c += _item("listen", "127.0.0.1@%d" % port, "    ")
        c += _item("rundir", str(self.dir), "    ")
        c += _item("pidfile", str(self.dir / "knot.pid"), "    ")
        if self.ecs:
            c += _item("edns-client-subnet", "on", "    ")
        if self.udp_max_payload:
            c += _item("udp-max-payload", self.udp_max_payload, "    ")
        for k, v in self.server_extra.items():
            c += _item(k, v, "    ")
        c += "\ndatabase:\n"
        c += _item("storage", str(self.dir), "    ")
        c += "\nlog:\n  - target: \"stderr\"\n    any: \"info\"\n"
        if self.tsig_keys:
            c += "\nkey:\n"
            for name, secret in self.tsig_keys.items():
                c += "  - id: %s\n    algorithm: %s\n    secret: %s\n" % (_q(name), _q(TSIG_ALG), _q(secret))
            c += "\nacl:\n  - id: \"tsig-acl\"\n"
            c += _item("key", list(self.tsig_keys), "    ")
            c += _item("action", ["transfer", "notify"], "    ")
        if self.with_module:
            c += "\nmodule:\n  - id: \"%s\"\n" % MOD
            c += _item("file", str(self.module_file), "    ")
            instances = dict(self.instances)
            server = {}
            if self.control_socket is not None:
                server["control-socket"] = str(self.control_socket)
            if self.state_file is not None:
                server["state-file"] = str(self.state_file)
            if server:
                server.update(instances.pop("server", {}))
                instances = dict([("server", server)] + list(instances.items()))
            if instances:
                c += "\n%s:\n" % MOD
                for iid, items in instances.items():
                    c += "  - id: %s\n" % _q(iid)
                    for k, v in items.items():
                        c += _item(k, v, "    ")
        c += self.extra_conf
        c += "\nzone:\n"
        for z in self.zones:
            c += "  - domain: %s\n" % _q(z)
            c += _item("file", str(self.zone_file(z)), "    ")
            c += _item("zonefile-sync", "-1", "    ")
            c += _item("journal-content", "none", "    ")
            if self.tsig_keys:
                c += _item("acl", "tsig-acl", "    ")
            m = self.zone_modules.get(z)
            if m and self.with_module:
                refs = m if isinstance(m, (list, tuple)) else ["%s/%s" % (MOD, m)]
                c += _item("module", refs, "    ")
            for k, v in self.zone_extra.get(z, {}).items():
                c += _item(k, v, "    ")
        return c

    def write(self, port=None):
        for z in self.zones:
            self.write_zone(z)
        self.conf.write_text(self.config_text(port))

    # -------------------------------------------------------------- control
    def knotc(self, *args, timeout=20):
        p = subprocess.run([KNOTC, "-c", str(self.conf)] + list(args),
                           capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout + p.stderr

    def conf_check(self):
        self.write(self.port)
        return self.knotc("conf-check")

    def start(self, timeout=10.0):
        last = ""
        for attempt in range(5):
            self.port = _free_port()
            self.write(self.port)
            self._log_fh = open(self.logfile, "ab")
            self.proc = subprocess.Popen([KNOTD, "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                                         stdout=self._log_fh, stderr=subprocess.STDOUT)
            if self._wait_ready(timeout):
                return self
            last = self.log_tail()
            bind_fail = "cannot bind" in last or "failed to bind" in last or "Address already in use" in last
            self._kill()
            if not bind_fail:
                break
        raise RuntimeError("knotd did not come up (port %s); log tail:\n%s" % (self.port, last))

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        pending = set(self.zones)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            for z in list(pending):
                try:
                    r = self.raw_query(dns.message.make_query(z, "SOA"), timeout=0.3)
                except (OSError, dns.exception.DNSException, WireError):
                    continue
                if r.rcode() == dns.rcode.NOERROR and (r.flags & dns.flags.AA) and r.answer:
                    pending.discard(z)
            if not pending:
                return True
            time.sleep(0.05)
        return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def restart(self, timeout=10.0):
        """Stop knotd cleanly and start it again on the same directory (state,
        zones, log and configuration are kept; the port may change)."""
        self.stop()
        return self.start(timeout)

    def kill9(self):
        """SIGKILL knotd (no cleanup at all: the socket file, the pid file and
        any temporary files stay); start() brings it back on the same directory."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        if self._log_fh:
            self._log_fh.close()
            self._log_fh = None

    def kill9_restart(self, timeout=10.0):
        self.kill9()
        return self.start(timeout)

    # ------------------------------------------------------- control socket
    @property
    def socket_path(self):
        """Path of the module's control socket."""
        return Path(self.control_socket) if self.control_socket is not None else self.dir / "mxpolicy.sock"

    @property
    def state_path(self):
        """Path of the module's state file."""
        return Path(self.state_file) if self.state_file is not None else self.dir / "mxpolicy.state"

    def ctl(self, *args, prefix=None, env=None, timeout=20, socket_path=None):
        """Run mxpolicyctl -s <socket> ARGS; return (rc, stdout, stderr) as text.

        prefix: argv to run it under (e.g. setpriv ...); env: extra environment."""
        e = {k: v for k, v in os.environ.items() if not k.startswith("MXPOLICYCTL")}
        e.update(env or {})
        sock = str(socket_path if socket_path is not None else self.socket_path)
        argv = list(prefix or []) + [str(mxpolicyctl_path()), "-s", sock] + [str(a) for a in args]
        p = subprocess.run(argv, capture_output=True, env=e, timeout=timeout)
        return (p.returncode, p.stdout.decode("utf-8", "replace"),
                p.stderr.decode("utf-8", "replace"))

    def ctl_ok(self, *args, **kwargs):
        """mxpolicyctl that must succeed; returns its stdout."""
        rc, out, err = self.ctl(*args, **kwargs)
        assert rc == 0, ("mxpolicyctl %s failed (%d)\nstdout: %s\nstderr: %s\nlog:\n%s"
                         % (" ".join(map(str, args)), rc, out, err, self.log_tail()))
        return out

    def ctl_json(self, *args, **kwargs):
        """mxpolicyctl ARGS --json, parsed."""
        out = self.ctl_ok(*(list(args) + ["--json"]), **kwargs)
        try:
            return json.loads(out)
        except ValueError as e:
            raise AssertionError("mxpolicyctl %s --json printed no valid JSON (%s):\n%s"
                                 % (" ".join(map(str, args)), e, out))

    def wait_log(self, needle, timeout=5.0, start=0):
        """Wait until the log (from offset start) contains needle; return the log."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log()
            if needle in text[start:]:
                return text
            if time.monotonic() > deadline:
                raise AssertionError("log has no %r within %.1f s; tail:\n%s"
                                     % (needle, timeout, self.log_tail()))
            time.sleep(0.05)

    def reload(self):
        self.write(self.port)
        rc, out = self.knotc("reload")
        assert rc == 0, "knotc reload failed: %s\n%s" % (out, self.log_tail())
        return out

    def zone_reload(self, zone, body=None):
        """Rewrite a zone file (serial bumped) and reload that zone; wait until served."""
        self.serial += 1
        self.write_zone(zone, body)
        rc, out = self.knotc("zone-reload", fqdn(zone))
        assert rc == 0, "zone-reload failed: %s" % out
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = self.query(zone, "SOA")
            if r.answer(T_SOA) and r.answer(T_SOA)[0].data[2] == self.serial:
                return
            time.sleep(0.05)
        raise AssertionError("zone %s not reloaded to serial %d; log:\n%s" % (zone, self.serial, self.log_tail()))

    def zone_stats(self, zone):
        """knotc -f zone-stats ZONE mod-mxpolicy as {counter: int} (zeros included)."""
        rc, out = self.knotc("-f", "zone-stats", fqdn(zone), MOD)
        assert rc == 0, "zone-stats failed (%d): %s" % (rc, out)
        stats = {}
        for line in out.splitlines():
            line = line.strip()
            if "=" not in line or MOD + "." not in line:
                continue
            left, val = line.rsplit("=", 1)
            key = left.split(MOD + ".", 1)[1].strip()
            stats[key] = int(val.strip())
        return stats

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.knotc("stop", timeout=10)
            except (OSError, subprocess.SubprocessError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._kill()

    def _kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self._log_fh:
            self._log_fh.close()
            self._log_fh = None

    def cleanup(self):
        try:
            self.stop()
        finally:
            if not os.environ.get("MXPOLICY_KEEP_TMP"):
                shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            return self.logfile.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n=40):
        return "\n".join(self.log().splitlines()[-n:])

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    # -------------------------------------------------------------- queries
    def make_query(self, name, rdtype="MX", want_dnssec=False, payload=None, ecs=None,
                   tsig=None, edns=None, options=None):
        q = dns.message.make_query(name, rdtype)
        q.flags &= ~dns.flags.RD
        options = list(options or [])
        if ecs is not None:
            addr, srclen = ecs
            options.append(dns.edns.ECSOption(addr, srclen))
        if edns is None:
            edns = bool(want_dnssec or payload or options)
        if edns:
            q.use_edns(0, dns.flags.DO if want_dnssec else 0, payload or 1232, options=options)
        if tsig is not None:
            keyname, secret = tsig
            q.use_tsig(dns.tsigkeyring.from_text({keyname: secret}), keyname=keyname,
                       algorithm=dns.tsig.HMAC_SHA256)
        return q

    def raw_query(self, q, tcp=False, source=None, timeout=3.0):
        """Send q, return the dnspython message (no strict checks)."""
        wire = self._exchange(q.to_wire(), tcp, source, timeout, q.id)
        return dns.message.from_wire(wire, keyring=q.keyring, request_mac=q.mac or b"")

    def _exchange(self, data, tcp, source, timeout, qid=None):
        if tcp:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.settimeout(timeout)
                if source:
                    s.bind((source, 0))
                s.connect(("127.0.0.1", self.port))
                s.sendall(struct.pack("!H", len(data)) + data)
                ln = struct.unpack("!H", _recv_exact(s, 2))[0]
                return _recv_exact(s, ln)
            finally:
                s.close()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.settimeout(timeout)
            s.bind((source or "127.0.0.1", 0))
            s.sendto(data, ("127.0.0.1", self.port))
            deadline = time.monotonic() + timeout
            while True:
                wire, addr = s.recvfrom(65535)
                if addr[1] == self.port and (qid is None or (len(wire) >= 2 and wire[:2] == struct.pack("!H", qid))):
                    return wire
                if time.monotonic() > deadline:
                    raise socket.timeout("no matching response")
        finally:
            s.close()

    def query(self, name, rdtype="MX", tcp=False, want_dnssec=False, payload=None, ecs=None,
              source=None, tsig=None, edns=None, timeout=3.0, options=None):
        """Query the server; every response must parse cleanly (dnspython and the
        strict walker), answer this query, and verify its TSIG when signed."""
        q = self.make_query(name, rdtype, want_dnssec, payload, ecs, tsig, edns, options)
        wire = self._exchange(q.to_wire(), tcp, source, timeout, q.id)
        try:
            msg = dns.message.from_wire(wire, keyring=q.keyring, request_mac=q.mac or b"")
        except Exception as e:  # any parse / TSIG failure fails the test
            raise AssertionError("response to %s %s does not parse (%s: %s); wire %s"
                                 % (name, rdtype, type(e).__name__, e, wire.hex()))
        assert q.is_response(msg), "response does not match the query:\n%s" % msg
        try:
            return Response(wire, msg, q, tcp)
        except WireError as e:
            raise AssertionError("malformed response to %s %s: %s\n%s\nwire %s"
                                 % (name, rdtype, e, msg, wire.hex()))

    def send_raw(self, data, tcp=False, timeout=0.5):
        """Send arbitrary bytes; return the raw answer or None on timeout/close."""
        try:
            return self._exchange(data, tcp, None, timeout)
        except (OSError, struct.error, ConnectionError):
            return None

    def kdig(self, name, rdtype="MX", *opts):
        """Run real kdig against the server; return its output (asserts a clean parse)."""
        cmd = [KDIG, "@127.0.0.1", "-p", str(self.port), name, rdtype, "+norec", "+timeout=3",
               "+retry=0"] + list(opts)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        out = p.stdout + p.stderr
        assert p.returncode == 0, "kdig failed (%d): %s" % (p.returncode, out)
        assert "WARNING" not in out, "kdig warns about the response:\n%s" % out
        assert ";; ->>HEADER<<-" in out, "kdig printed no response:\n%s" % out
        return out


def _recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def tsig_secret(seed="mxpolicy-test"):
    return base64.b64encode((seed * 4).encode()[:32]).decode()


def mx_zone(records, ttl=None):
    """Zone lines for an MX set at an owner: records = [(owner, pref, exch)]."""
    lines = []
    for owner, pref, exch in records:
        lines.append("%s %sIN MX %d %s" % (owner, "%d " % ttl if ttl else "", pref, exch))
    return "\n".join(lines) + "\n"


def check_additional(resp, glue, owner_filter=None):
    """Assert the additional section holds exactly the A/AAAA of the exchangers
    in the answer (glue: {exchange: [(rtype, address)]}), under their own
    names, once each, and that none outlives the MX set."""
    exch = {e for _, e in resp.mx(owner_filter)}
    expected = sorted((e, t, a) for e in exch for (t, a) in glue.get(e, []))
    got = sorted((rr.owner, rr.rtype, rr.data) for rr in resp.additional() if rr.rtype in (T_A, T_AAAA))
    assert got == expected, ("additional section %r != expected %r for answer %r\n%s"
                             % (got, expected, resp.mx(owner_filter), resp))
    mx_ttls = resp.mx_ttls()
    if mx_ttls:
        for rr in resp.additional():
            if rr.rtype in (T_A, T_AAAA):
                assert rr.ttl <= min(mx_ttls), ("additional %s %d TTL %d outlives the MX set (TTL %d)\n%s"
                                                % (rr.owner, rr.rtype, rr.ttl, min(mx_ttls), resp))


def rr_view(resp, sections=(0, 1, 2), skip_types=(T_OPT, T_TSIG)):
    """Comparable list of the records of a response, in wire order."""
    return [(rr.section, rr.owner, rr.rtype, rr.ttl, rr.data if rr.data is not None else rr.rdata)
            for rr in resp.rrs
            if rr.section in sections and rr.rtype not in skip_types]
