# Copyright (C) 2026 knot-mxpolicy authors
# SPDX-License-Identifier: GPL-3.0-or-later
"""A validating resolver (Debian's unbound) in front of the test knotd, and
knotd DNSSEC signing helpers.

Unbound runs in the foreground (-d) with its own configuration, log, pid
file and control socket in a temporary directory, listens on 127.0.0.1 on a
free port, and reaches each test zone through a stub-zone pointing at a
knotd's 127.0.0.1@port.  Each zone gets its own trust anchor (DS of the
zone's KSK/CSK, taken from knotd); nothing is domain-insecure, there is no
root anchor, and every name outside the stub zones is refused locally, so
unbound never goes to the Internet.

Caching (verified by tests/integration/test_resolver.py):

* stub-no-cache: yes -- unbound neither looks up nor stores messages or
  RRsets of the stub zones: EVERY client query is sent to knotd (knotd's
  per-type query counters grow by exactly one per query), and positive,
  negative and bogus answers are never served from the message cache.
* The validator's key cache is NOT covered by stub-no-cache: a validated
  DNSKEY set is kept for its TTL (and bad keys for 60 s, a compiled-in
  constant).  With max_ttl=0 (the default) unbound gets cache-max-ttl: 0, so
  every TTL it parses becomes 0: DNSKEYs are kept for the rest of the
  current second only and fetched again in the next one (key rollovers are
  seen within a second) -- but clients then see TTL 0 on every record.
  With max_ttl=None unbound's default (86400) stays: clients see knotd's
  TTLs unchanged (nothing is cached, so nothing is decremented), and the
  DNSKEY set is cached for knotd's DNSKEY TTL -- exactly what a real
  resolver does, which knotd's rollover timing (propagation-delay +
  dnskey-ttl) is designed for; flush() empties the key cache at once.
* cache-max-negative-ttl: 0, val-bogus-ttl: 0, aggressive-nsec: no,
  prefetch/prefetch-key/serve-expired: no: no other route to a cached
  answer (belt and braces with stub-no-cache).
* infra-cache-min-rtt / unknown-server-time-limit: 1000 ms -- no
  retransmissions to knotd on a busy test machine (each would be one more
  query in knotd's counters); infra-keep-probing: yes.
* val-sig-skew-min/max: 0 -- signature validity is checked exactly (the
  default allows up to an hour after expiration, which would hide expired
  RRSIGs of short-lived test signatures).
"""

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import dns.dnssec
import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from knotharness import _free_port, _item, _recv_exact, fqdn

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"


def unbound_problem():
    """None if unbound can be run, else the reason why not."""
    if not os.access(UNBOUND, os.X_OK):
        return "%s not found or not executable (Debian package 'unbound')" % UNBOUND
    try:
        p = subprocess.run([UNBOUND, "-V"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as e:
        return "%s -V failed: %s" % (UNBOUND, e)
    if p.returncode != 0 or "Version" not in p.stdout:
        return "%s -V failed (%d): %s" % (UNBOUND, p.returncode, (p.stdout + p.stderr).strip())
    return None


def unbound_version():
    p = subprocess.run([UNBOUND, "-V"], capture_output=True, text=True, timeout=10)
    m = re.search(r"Version (\S+)", p.stdout)
    return m.group(1) if m else "?"


# --------------------------------------------------------------------------
# knotd DNSSEC signing policy (Knot DNS 3.2 'policy' section)
# --------------------------------------------------------------------------

# keyword -> knot.conf item, in the order they are written.
_POLICY_ITEMS = (
    ("algorithm", "algorithm"),
    ("ksk_size", "ksk-size"),
    ("zsk_size", "zsk-size"),
    ("single_type_signing", "single-type-signing"),
    ("nsec3", "nsec3"),
    ("nsec3_iterations", "nsec3-iterations"),
    ("nsec3_salt_length", "nsec3-salt-length"),
    ("dnskey_ttl", "dnskey-ttl"),
    ("zone_max_ttl", "zone-max-ttl"),
    ("propagation_delay", "propagation-delay"),
    ("ksk_lifetime", "ksk-lifetime"),
    ("zsk_lifetime", "zsk-lifetime"),
    ("rrsig_lifetime", "rrsig-lifetime"),
    ("rrsig_refresh", "rrsig-refresh"),
    ("rrsig_pre_refresh", "rrsig-pre-refresh"),
)

_TIME_KEYS = ("dnskey_ttl", "zone_max_ttl", "propagation_delay", "ksk_lifetime", "zsk_lifetime",
              "rrsig_lifetime", "rrsig_refresh", "rrsig_pre_refresh")

# Knot 3.2 defaults of the timing items (seconds) used by check_policy_timing.
KNOT_DEFAULTS = dict(propagation_delay=3600, rrsig_lifetime=14 * 86400, rrsig_pre_refresh=3600,
                     zsk_lifetime=30 * 86400, ksk_lifetime=0)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "M": 30 * 86400, "y": 365 * 86400}


def _seconds(v):
    if v is None:
        return None
    if isinstance(v, int):
        return v
    m = re.fullmatch(r"(\d+)([smhdwMy]?)", str(v).strip())
    if not m:
        raise ValueError("not a Knot TIME value: %r" % (v,))
    return int(m.group(1)) * _UNITS.get(m.group(2) or "s", 1)


def check_policy_timing(p):
    """Raise ValueError for policy timings knotd 3.2 would refuse.

    p: the keyword dict of policy_entry().  Mirrors check_policy() in
    knot/conf/tools.c (conf-check time) and the load-time check in
    knot/dnssec/zone-events.c (zone-max-ttl there defaults to the zone's
    largest TTL, which is unknown here, so that rule is only checked when
    zone-max-ttl is given)."""
    g = {k: _seconds(p.get(k)) for k in _TIME_KEYS}
    eff = dict(KNOT_DEFAULTS)
    eff.update({k: v for k, v in g.items() if v is not None})
    dnskey_ttl = eff.get("dnskey_ttl") or 0
    zmt = eff.get("zone_max_ttl")
    prop = eff["propagation_delay"]
    if g["rrsig_refresh"] is not None:
        if not eff["rrsig_lifetime"] > g["rrsig_refresh"] + eff["rrsig_pre_refresh"]:
            raise ValueError("rrsig-lifetime (%d) must exceed rrsig-refresh + rrsig-pre-refresh (%d + %d)"
                             % (eff["rrsig_lifetime"], g["rrsig_refresh"], eff["rrsig_pre_refresh"]))
        if zmt is not None and g["rrsig_refresh"] < zmt + prop:
            raise ValueError("rrsig-refresh (%d) must be >= zone-max-ttl + propagation-delay (%d + %d): "
                             "knotd refuses to load the zone otherwise" % (g["rrsig_refresh"], zmt, prop))
    zmt0 = zmt if zmt is not None else dnskey_ttl
    if p.get("single_type_signing"):
        if eff["ksk_lifetime"] and eff["ksk_lifetime"] < 2 * prop + dnskey_ttl + zmt0:
            raise ValueError("CSK lifetime must be >= 2*propagation-delay + dnskey-ttl + zone-max-ttl")
    else:
        if eff["ksk_lifetime"] and eff["ksk_lifetime"] < 2 * prop + 2 * dnskey_ttl:
            raise ValueError("ksk-lifetime must be >= 2*propagation-delay + 2*dnskey-ttl")
        if eff["zsk_lifetime"] and eff["zsk_lifetime"] < 2 * prop + dnskey_ttl + zmt0:
            raise ValueError("zsk-lifetime (%d) must be >= 2*propagation-delay + dnskey-ttl + zone-max-ttl "
                             "(%d)" % (eff["zsk_lifetime"], 2 * prop + dnskey_ttl + zmt0))


def policy_entry(id, algorithm=None, nsec3=None, single_type_signing=None, ksk_size=None,
                 zsk_size=None, rrsig_lifetime=None, rrsig_refresh=None, rrsig_pre_refresh=None,
                 zsk_lifetime=None, ksk_lifetime=0, propagation_delay=None, dnskey_ttl=None,
                 zone_max_ttl=None, nsec3_iterations=None, nsec3_salt_length=None, extra=None):
    """One entry of a Knot 3.2 'policy:' section, as text.

    Every item left at None is not written (knotd's default applies):
    algorithm ecdsap256sha256 (or rsasha256, ed25519, ...), nsec3 off,
    single-type-signing (CSK) off, sizes per algorithm (RSA 2048),
    rrsig-lifetime 14d, rrsig-refresh propagation-delay + zone-max-ttl,
    rrsig-pre-refresh 1h, zsk-lifetime 30d, propagation-delay 1h,
    dnskey-ttl = SOA TTL, zone-max-ttl = largest TTL in the zone.
    ksk_lifetime defaults to 0 (no KSK/CSK rollover: the trust anchor stays
    valid).  TIME values: int seconds or Knot strings ("90s", "2m", "1h").
    extra: {knot item: value} written as is.
    """
    kw = dict(algorithm=algorithm, nsec3=nsec3, single_type_signing=single_type_signing,
              ksk_size=ksk_size, zsk_size=zsk_size, rrsig_lifetime=rrsig_lifetime,
              rrsig_refresh=rrsig_refresh, rrsig_pre_refresh=rrsig_pre_refresh,
              zsk_lifetime=zsk_lifetime, ksk_lifetime=ksk_lifetime,
              propagation_delay=propagation_delay, dnskey_ttl=dnskey_ttl, zone_max_ttl=zone_max_ttl,
              nsec3_iterations=nsec3_iterations, nsec3_salt_length=nsec3_salt_length)
    check_policy_timing(kw)
    text = "  - id: \"%s\"\n" % id
    for key, item in _POLICY_ITEMS:
        v = kw[key]
        if v is not None:
            text += _item(item, v, "    ")
    for k, v in (extra or {}).items():
        text += _item(k, v, "    ")
    return text


def policy_section(*entries):
    """A whole 'policy:' section from policy_entry() texts, for Knot(extra_conf=...).

    knotharness writes extra_conf after the server/module sections and
    before 'zone:', so zones can refer to these policies."""
    return "\npolicy:\n" + "".join(entries)


def dnssec_policy(id, **kw):
    """policy_section() of a single policy_entry(id, **kw)."""
    return policy_section(policy_entry(id, **kw))


def signing(policy_id=None):
    """zone_extra items that sign a zone with knotd (automatic key management)."""
    e = {"dnssec-signing": "on"}
    if policy_id:
        e["dnssec-policy"] = policy_id
    return e


# Measured with Knot 3.2.6 (tests/integration/test_resolver.py::test_slow_*):
#
# fast_resign(60): every RRSIG is valid for 70 s and the whole zone is
# re-signed every 60 s (knotd: "next signing" = expiration - rrsig-refresh);
# rrsig-refresh must be >= zone-max-ttl + propagation-delay, so both are
# declared small.
def fast_resign(period=60, refresh=10):
    """Policy keywords: knotd re-signs the whole zone every `period` seconds."""
    return dict(rrsig_lifetime=period + refresh, rrsig_refresh=refresh, rrsig_pre_refresh=0,
                zone_max_ttl=refresh, propagation_delay=0)


# fast_zsk_rollover(60): the ZSK rollover (pre-publish) starts `lifetime`
# seconds after the first signing: the new ZSK is published at +60 s,
# signs everything from +72 s (propagation-delay + dnskey-ttl later), the
# old ZSK leaves the DNSKEY set at +84 s (propagation-delay + zone-max-ttl
# later); the next rollover starts `lifetime` after the new ZSK became
# active (+132 s).  zsk-lifetime >= 2*propagation-delay + dnskey-ttl +
# zone-max-ttl is enforced by knotd.  The zone's real TTLs should not
# exceed zone-max-ttl (use short_ttl_zone()), or a caching resolver could
# keep a signature of a ZSK knotd has already withdrawn.
def fast_zsk_rollover(lifetime=60, propagation_delay=2, ttl=10):
    """Policy keywords: knotd rolls the ZSK every ~lifetime + propagation_delay + ttl seconds."""
    return dict(zsk_lifetime=lifetime, propagation_delay=propagation_delay, dnskey_ttl=ttl,
                zone_max_ttl=ttl, ksk_lifetime=0)


def short_ttl_zone(body, ttl=10, serial=1):
    """Zone body with its own SOA/NS/ns A at TTL `ttl` (the harness default SOA
    has TTL 3600, which becomes the DNSKEY TTL and the zone's maximum TTL)."""
    head = ("@ {t} IN SOA ns hostmaster {s} 3600 600 86400 {t}\n@ {t} IN NS ns\nns {t} IN A 127.0.0.1\n"
            .format(t=ttl, s=serial))
    return head + body


# --------------------------------------------------------------------------
# Keys and trust anchors from knotd
# --------------------------------------------------------------------------

def zone_dnskeys(knot, zone):
    """The DNSKEY RRset knotd serves at the apex (queried with DO)."""
    r = knot.query(zone, "DNSKEY", want_dnssec=True)
    rrset = r.msg.get_rrset(r.msg.answer, dns.name.from_text(fqdn(zone)), dns.rdataclass.IN,
                            dns.rdatatype.DNSKEY)
    assert rrset is not None, "knotd serves no DNSKEY for %s:\n%s" % (zone, r)
    return rrset


def key_tags(rrset, flags=None):
    """Key tags of the DNSKEYs of rrset (only those with `flags` if given)."""
    return sorted(dns.dnssec.key_id(k) for k in rrset if flags is None or k.flags == flags)


def ksk_ds(knot, zone, digest="SHA256"):
    """DS records (text, owner included) of the zone's KSK/CSK (flags 257)."""
    name = dns.name.from_text(fqdn(zone))
    keys = [k for k in zone_dnskeys(knot, zone) if k.flags == 257]
    assert keys, "no KSK/CSK (flags 257) in the DNSKEY set of %s" % zone
    return ["%s DS %s" % (name, dns.dnssec.make_ds(name, k, digest)) for k in keys]


def ksk_dnskeys(knot, zone):
    """The KSK/CSK DNSKEY records (text), usable as unbound trust-anchor too."""
    name = dns.name.from_text(fqdn(zone))
    return ["%s DNSKEY %s" % (name, k) for k in zone_dnskeys(knot, zone) if k.flags == 257]


def unrelated_ds(zone, algorithm="ecdsap256sha256", digest="SHA256"):
    """DS (text) of a freshly generated key that signs nothing, of the given
    algorithm (ecdsap256sha256, rsasha256, ed25519), so that a zone signed
    with that algorithm fails on the key, not on an algorithm mismatch."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    name = dns.name.from_text(fqdn(zone))
    alg = algorithm.lower()
    if alg == "ecdsap256sha256":
        priv, num = ec.generate_private_key(ec.SECP256R1()), dns.dnssec.Algorithm.ECDSAP256SHA256
    elif alg == "rsasha256":
        priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        num = dns.dnssec.Algorithm.RSASHA256
    elif alg == "ed25519":
        priv, num = ed25519.Ed25519PrivateKey.generate(), dns.dnssec.Algorithm.ED25519
    else:
        raise ValueError("unrelated_ds: unsupported algorithm %r" % algorithm)
    key = dns.dnssec.make_dnskey(priv.public_key(), num, flags=257)
    return ["%s DS %s" % (name, dns.dnssec.make_ds(name, key, digest))]


def zone_dump(knot, zone):
    """The zone as knotd serves it (signed: DNSKEY, RRSIG, NSEC...), as
    master-file lines with absolute owners (knotc zone-read)."""
    rc, out = knot.knotc("zone-read", fqdn(zone))
    assert rc == 0, "knotc zone-read %s failed: %s" % (zone, out)
    prefix = "[%s] " % fqdn(zone)
    lines = [l[len(prefix):] for l in out.splitlines() if l.startswith(prefix)]
    assert lines, "knotc zone-read %s printed no records:\n%s" % (zone, out)
    return lines


def qtype_counts(knot, zone, module="mod-stats"):
    """Per-type query counters of knotd's mod-stats for a zone ({'MX': n, ...}).

    The zone needs module [..., "mod-stats/<id>"] with an entry
    'mod-stats: - id: <id>, query-type: on' (see STATS_CONF)."""
    rc, out = knot.knotc("-f", "zone-stats", fqdn(zone), module)
    assert rc == 0, "zone-stats %s %s failed (%d): %s" % (zone, module, rc, out)
    counts = {}
    for line in out.splitlines():
        m = re.search(r"query-type\[([A-Za-z0-9]+)\]\s*=\s*(\d+)", line)
        if m:
            counts[m.group(1)] = int(m.group(2))
    return counts


STATS_ID = "qt"
STATS_CONF = "\nmod-stats:\n  - id: \"%s\"\n    query-type: on\n" % STATS_ID
STATS_REF = "mod-stats/%s" % STATS_ID


# --------------------------------------------------------------------------
# Unbound
# --------------------------------------------------------------------------

EDE_DNSSEC_BOGUS = 6
EDE_SIGNATURE_EXPIRED = 7
EDE_DNSKEY_MISSING = 9
EDE_RRSIGS_MISSING = 10

# Log lines of unbound (verbosity 1, val-log-level 2, log-servfail) that say
# why an answer is bogus.
_BOGUS_RE = re.compile(r"validation failure|bogus|DNSKEY .*(not|no) match|signature crypto failed|"
                       r"SERVFAIL", re.IGNORECASE)


class UnboundError(AssertionError):
    pass


class Unbound:
    """unbound -d with a temporary configuration, log and control socket.

    stubs: {zone: (knotd port, [trust anchor RR texts (DS or DNSKEY)])}
    max_ttl: cache-max-ttl (0 by default: DNSKEYs re-fetched every second,
             clients see TTL 0; None: unbound's default, TTLs passed through,
             DNSKEYs cached for their TTL -- see the module docstring).
    server_extra: {unbound server item: value} appended to server:.
    """

    def __init__(self, stubs=None, max_ttl=0, server_extra=None, verbosity=1):
        self.stubs = {fqdn(z): (int(port), list(anchors)) for z, (port, anchors) in (stubs or {}).items()}
        self.max_ttl = max_ttl
        self.server_extra = dict(server_extra or {})
        self.verbosity = verbosity
        self.dir = Path(tempfile.mkdtemp(prefix="ubd-"))
        self.conf = self.dir / "unbound.conf"
        self.logfile = self.dir / "unbound.log"
        self.outfile = self.dir / "unbound.out"
        self.sock = self.dir / "control.sock"
        self.proc = None
        self.port = None
        self._out_fh = None

    # ---------------------------------------------------------- configuration
    def set_stub(self, zone, port, anchors=None):
        """Add or change a stub zone (knotd port) and its trust anchors; takes
        effect at the next start()/restart()."""
        z = fqdn(zone)
        if anchors is None:
            anchors = self.stubs[z][1]
        self.stubs[z] = (int(port), list(anchors))

    def set_anchors(self, zone, anchors):
        """Replace a zone's trust anchors (e.g. after a KSK rollover); call
        restart() to apply (unbound reads trust-anchor: only at start)."""
        z = fqdn(zone)
        self.stubs[z] = (self.stubs[z][0], list(anchors))

    def config_text(self, port):
        q = lambda s: '"%s"' % s  # noqa: E731
        lines = [
            "server:",
            "    verbosity: %d" % self.verbosity,
            "    num-threads: 1",
            "    interface: 127.0.0.1",
            "    port: %d" % port,
            "    do-ip4: yes",
            "    do-ip6: no",
            "    do-udp: yes",
            "    do-tcp: yes",
            "    so-reuseport: no",
            "    access-control: 127.0.0.0/8 allow",
            '    username: ""',
            '    chroot: ""',
            "    directory: %s" % q(self.dir),
            "    pidfile: %s" % q(self.dir / "unbound.pid"),
            "    logfile: %s" % q(self.logfile),
            "    use-syslog: no",
            "    log-time-ascii: yes",
            "    log-servfail: yes",
            "    val-log-level: 2",
            "    ede: yes",
            '    module-config: "validator iterator"',
            "    do-not-query-localhost: no",
            # No root anchor, no auto trust anchor, no key tag signalling
            # queries: the only anchors are the test zones' own.
            "    trust-anchor-signaling: no",
            "    root-key-sentinel: no",
            # Caching (see the module docstring).
            "    cache-max-negative-ttl: 0",
            "    val-bogus-ttl: 0",
            "    prefetch: no",
            "    prefetch-key: no",
            "    serve-expired: no",
            "    aggressive-nsec: no",
            "    rrset-roundrobin: no",
            "    minimal-responses: no",
            "    qname-minimisation: no",
            "    val-sig-skew-min: 0",
            "    val-sig-skew-max: 0",
            # knotd on loopback answers in well under a millisecond; the
            # 50 ms minimum retransmit timeout makes unbound resend queries
            # whenever a loaded test machine delays knotd a little, and the
            # resent queries show up in knotd's counters.
            "    infra-cache-min-rtt: 1000",
            "    unknown-server-time-limit: 1000",
            "    infra-keep-probing: yes",
            # Nothing outside the stub zones: refuse at once instead of
            # trying the root servers.
            '    local-zone: "." refuse',
        ]
        if self.max_ttl is not None:
            lines.append("    cache-max-ttl: %d" % self.max_ttl)
        for z, (zport, anchors) in self.stubs.items():
            lines.append('    local-zone: "%s" transparent' % z)
            for a in anchors:
                lines.append("    trust-anchor: %s" % q(a))
        for k, v in self.server_extra.items():
            lines.append("    %s: %s" % (k, v))
        lines += ["", "remote-control:", "    control-enable: yes",
                  "    control-interface: %s" % q(self.sock), "    control-use-cert: no"]
        for z, (zport, anchors) in self.stubs.items():
            lines += ["", "stub-zone:", "    name: %s" % q(z), "    stub-addr: 127.0.0.1@%d" % zport,
                      "    stub-no-cache: yes", "    stub-prime: no", "    stub-first: no"]
        return "\n".join(lines) + "\n"

    # --------------------------------------------------------------- process
    def start(self, timeout=10.0):
        last = ""
        for attempt in range(5):
            self.port = _free_port()
            self.conf.write_text(self.config_text(self.port))
            try:
                self.sock.unlink()
            except FileNotFoundError:
                pass
            self._out_fh = open(self.outfile, "ab")
            self.proc = subprocess.Popen([UNBOUND, "-d", "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                                         stdout=self._out_fh, stderr=subprocess.STDOUT)
            if self._wait_ready(timeout):
                return self
            last = self.log_tail()
            self._kill()
            if "Address already in use" not in last and "could not open ports" not in last:
                break
        raise UnboundError("unbound did not come up (port %s); config:\n%s\nlog tail:\n%s"
                           % (self.port, self.conf.read_text(), last))

    def _wait_ready(self, timeout):
        """Ready when it answers on its port and its control socket says 'is running'."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                q = dns.message.make_query("localhost.", "A")
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    s.settimeout(0.3)
                    s.sendto(q.to_wire(), ("127.0.0.1", self.port))
                    s.recvfrom(65535)
                finally:
                    s.close()
                if "is running" in self.control("status", timeout=2):
                    return True
            except (OSError, UnboundError):
                pass
            time.sleep(0.05)
        return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def restart(self, timeout=10.0):
        """Stop and start again with the current stubs/anchors (caches empty)."""
        self.stop()
        return self.start(timeout)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._kill()

    def _kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self._out_fh:
            self._out_fh.close()
            self._out_fh = None

    def cleanup(self):
        try:
            self.stop()
        finally:
            if not os.environ.get("MXPOLICY_KEEP_TMP"):
                shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    # ------------------------------------------------------------------ logs
    def log(self):
        text = ""
        for f in (self.outfile, self.logfile):
            try:
                text += f.read_text(errors="replace")
            except OSError:
                pass
        return text

    def log_size(self):
        """Current length of unbound.log (use as start= for bogus_reason)."""
        try:
            return len(self.logfile.read_text(errors="replace"))
        except OSError:
            return 0

    def log_tail(self, n=40):
        return "\n".join(self.log().splitlines()[-n:])

    def bogus_reason(self, start=0, qname=None):
        """Log lines (of unbound.log from offset start) that report a validation
        failure or a SERVFAIL, optionally only those naming qname."""
        try:
            text = self.logfile.read_text(errors="replace")[start:]
        except OSError:
            return []
        out = [l for l in text.splitlines() if _BOGUS_RE.search(l)]
        if qname is not None:
            n = fqdn(qname)
            out = [l for l in out if n in l.lower()]
        return out

    # ------------------------------------------------------------ control
    def control(self, command, timeout=5.0):
        """Send one unbound-control command over the unix control socket
        (no TLS on local sockets); return its output."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(timeout)
            s.connect(str(self.sock))
            s.sendall(("UBCT1 %s\n" % command).encode())
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except OSError as e:
            raise UnboundError("unbound-control %s: %s" % (command, e))
        finally:
            s.close()
        return out.decode("utf-8", "replace")

    def control_ok(self, command):
        out = self.control(command)
        assert out.startswith("ok") or "error" not in out.lower(), \
            "unbound-control %s failed: %s\n%s" % (command, out, self.log_tail())
        return out

    def flush(self, zone=None):
        """Forget everything unbound knows below zone (all stub zones by
        default): RRsets, messages and validator key entries (bad ones too),
        plus the infrastructure (server RTT/EDNS/lameness) cache."""
        for z in ([fqdn(zone)] if zone else list(self.stubs)):
            self.control_ok("flush_zone %s" % z)
        self.control_ok("flush_bogus")
        self.control_ok("flush_negative")
        self.control_ok("flush_infra all")

    # --------------------------------------------------------------- queries
    @staticmethod
    def make_query(qname, rdtype="MX", payload=1232):
        q = dns.message.make_query(qname, rdtype)
        q.flags |= dns.flags.RD | dns.flags.AD
        q.use_edns(0, dns.flags.DO, payload)
        return q

    def query(self, qname, rdtype="MX", tcp=False, timeout=5.0, tc_retry=False):
        """Ask unbound (RD, AD, EDNS0 DO, 1232 bytes); return the dns.message.Message.

        A truncated UDP answer is returned as is unless tc_retry (then asked
        again over TCP)."""
        q = self.make_query(qname, rdtype)
        data = q.to_wire()
        try:
            if tcp:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    s.settimeout(timeout)
                    s.connect(("127.0.0.1", self.port))
                    s.sendall(struct.pack("!H", len(data)) + data)
                    ln = struct.unpack("!H", _recv_exact(s, 2))[0]
                    wire = _recv_exact(s, ln)
                finally:
                    s.close()
            else:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    s.settimeout(timeout)
                    s.connect(("127.0.0.1", self.port))
                    s.send(data)
                    deadline = time.monotonic() + timeout
                    while True:
                        wire = s.recv(65535)
                        if wire[:2] == data[:2]:
                            break
                        if time.monotonic() > deadline:
                            raise socket.timeout("no matching response")
                finally:
                    s.close()
        except (OSError, ConnectionError, struct.error) as e:
            raise UnboundError("no answer from unbound for %s %s (%s: %s); alive=%s; log tail:\n%s"
                               % (qname, rdtype, "tcp" if tcp else "udp", e, self.alive(), self.log_tail()))
        try:
            msg = dns.message.from_wire(wire)
        except Exception as e:
            raise UnboundError("unbound's answer to %s %s does not parse (%s: %s): %s"
                               % (qname, rdtype, type(e).__name__, e, wire.hex()))
        assert q.is_response(msg), "unbound's answer does not match the query:\n%s" % msg
        if tc_retry and not tcp and msg.flags & dns.flags.TC:
            return self.query(qname, rdtype, tcp=True, timeout=timeout)
        return msg

    @staticmethod
    def is_secure(msg):
        """AD set and rcode NOERROR."""
        return bool(msg.flags & dns.flags.AD) and msg.rcode() == dns.rcode.NOERROR

    @staticmethod
    def ede(msg):
        """[(info code, extra text)] of the Extended DNS Errors in msg."""
        out = []
        for opt in msg.options or []:
            if opt.otype == dns.edns.OptionType.EDE:
                out.append((int(opt.code), opt.text or ""))
        return out

    def explain(self, msg, start=0):
        """Text for assertion messages: the answer, its EDEs and the log lines."""
        return "%s\nEDE: %r\nunbound log (validation failures):\n%s\nlog tail:\n%s" % (
            msg, self.ede(msg), "\n".join(self.bogus_reason(start)[-10:]), self.log_tail(15))


def rrset_of(msg, name, rdtype, section=None):
    """The RRset (or None) of rdtype at name in the answer (or given section)."""
    sec = msg.answer if section is None else section
    return msg.get_rrset(sec, dns.name.from_text(fqdn(name)), dns.rdataclass.IN,
                         dns.rdatatype.from_text(rdtype) if isinstance(rdtype, str) else rdtype)


def mx_set(msg, name):
    """Sorted [(preference, exchange)] of the MX RRset at name, [] if none."""
    rr = rrset_of(msg, name, "MX")
    return sorted((r.preference, str(r.exchange).lower()) for r in rr) if rr else []


def sig_times(msg, name, covered="MX"):
    """[(key tag, inception, expiration)] of the RRSIGs covering rdtype at name."""
    rr = msg.get_rrset(msg.answer, dns.name.from_text(fqdn(name)), dns.rdataclass.IN,
                       dns.rdatatype.RRSIG, dns.rdatatype.from_text(covered))
    return sorted((s.key_tag, s.inception, s.expiration) for s in rr) if rr else []
