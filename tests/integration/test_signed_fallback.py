# Copyright (C) 2026 knot-mxpolicy authors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Signed zones when the module cannot sign: without the zone's private keys
(as on a secondary) DO answers keep the zone's set and validate, the cause
is counted and logged once; once the keys are back, signing resumes by
itself (retried after a minute, no reload); a wildcard set reached through
a CNAME is re-signed too."""

import os
import time

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdatatype
import pytest

ZONE = """
@ 300 MX 10 mx1
@ 300 MX 10 mx2
@ 300 MX 20 backup
mx1 300 A 192.0.2.1
mx2 300 A 192.0.2.2
backup 300 A 192.0.2.20
*.wild 300 MX 10 mx1
*.wild 300 MX 10 mx2
alias 300 CNAME x.wild
"""


def zone_mx(z):
    return sorted([(10, "mx1.%s." % z), (10, "mx2.%s." % z), (20, "backup.%s." % z)])


def keys_of(knot, z):
    r = knot.query(z, "DNSKEY", want_dnssec=True)
    name = dns.name.from_text(z)
    return {name: r.msg.find_rrset(r.msg.answer, name, dns.rdataclass.IN, dns.rdatatype.DNSKEY)}


def validate(r, keys, owner):
    msg = r.msg
    name = dns.name.from_text(owner)
    rrset = msg.find_rrset(msg.answer, name, dns.rdataclass.IN, dns.rdatatype.MX)
    rrsig = msg.find_rrset(msg.answer, name, dns.rdataclass.IN, dns.rdatatype.RRSIG,
                           dns.rdatatype.MX)
    dns.dnssec.validate(rrset, rrsig, keys, now=time.time())


def delta(before, after):
    return {k: after.get(k, 0) - before.get(k, 0) for k in set(before) | set(after)}


@pytest.fixture
def knot(module_so, mxpolicyctl, knot_factory):
    z = "fb.test"
    return knot_factory({z: ZONE}, {"s": {"weight": ["mx1.%s. 70" % z, "mx2.%s. 30" % z]}},
                        {z: "s"}, zone_extra={z: {"dnssec-signing": "on"}})


def test_wildcard_behind_cname_resigned(knot):
    """alias CNAME x.wild, *.wild MX: the MX set under the expanded owner is
    renumbered with a signature made for the wildcard owner."""
    z = "fb.test"
    keys = keys_of(knot, z)
    knot.query("alias.%s" % z, want_dnssec=True)
    time.sleep(0.3)
    base = knot.zone_stats(z)
    for i in range(20):
        r = knot.query("alias.%s" % z, want_dnssec=True, tcp=(i % 2 == 0))
        validate(r, keys, "x.wild.%s." % z)
        assert len({p for p, _ in r.mx("x.wild.%s." % z)}) == 2, r
    d = delta(base, knot.zone_stats(z))
    assert d["signed-variant[cache-hit]"] == 20 and d["signed-limited"] == 0, d


def test_no_key_falls_back_then_recovers(knot):
    """Keys unreadable: DO answers keep the zone's set (validating), counted
    as fallback-no-key, logged once. Keys back: within the retry period
    (a minute) answers carry signed variants again, without a reload."""
    z = "fb.test"
    keys = keys_of(knot, z)
    keydir = knot.dir / "keys" / "keys"
    assert keydir.is_dir(), "knotd's default keystore not where expected"
    moved = str(keydir) + ".away"
    os.rename(keydir, moved)
    try:
        knot.query(z, want_dnssec=True)
        time.sleep(0.5)
        base = knot.zone_stats(z)
        for i in range(20):
            r = knot.query(z, want_dnssec=True, tcp=(i % 2 == 0))
            assert sorted(r.mx()) == zone_mx(z), r
            validate(r, keys, z + ".")
        d = delta(base, knot.zone_stats(z))
        assert d["signed-variant[fallback-no-key]"] == 20 and d["signed-limited"] == 20, d
        assert d["renumbered"] == 0, d
        stats = knot.ctl_ok("stats")
        assert "no-key 0" not in stats, stats
        log = knot.logfile.read_text()
        assert log.count("cannot sign changed MX sets (no-key") == 1, log[-3000:]
        assert "mxpolicy" in log
    finally:
        os.rename(moved, keydir)

    # Failures are retried after 60 s; poll a little beyond that.
    deadline = time.time() + 90
    hit = False
    while time.time() < deadline and not hit:
        time.sleep(2)
        base = knot.zone_stats(z)
        r = knot.query(z, want_dnssec=True)
        validate(r, keys, z + ".")
        hit = delta(base, knot.zone_stats(z))["signed-variant[cache-hit]"] == 1
    assert hit, "signing did not resume after the keys came back"
    for _ in range(10):
        r = knot.query(z, want_dnssec=True)
        validate(r, keys, z + ".")
        assert len({p for p, _ in r.mx()}) == 3, r  # Renumbered again.


def test_reload_keeps_signing(module_so, mxpolicyctl, knot_factory):
    """knotc reload makes new module instances over the same zone data:
    the sets are handed to the signer again (by the same worker, which has
    handed them over before), so a state change after the reload still
    reaches DO answers (signed variants, no fallback)."""
    z = "fb.test"
    knot = knot_factory({z: ZONE}, {"s": {"weight": ["mx1.%s. 70" % z, "mx2.%s. 30" % z]}},
                        {z: "s"}, zone_extra={z: {"dnssec-signing": "on"}},
                        server_extra={"udp-workers": 1, "tcp-workers": 1})
    keys = keys_of(knot, z)
    knot.query(z, want_dnssec=True)
    time.sleep(0.3)
    rc, out = knot.knotc("reload")
    assert rc == 0, out
    time.sleep(1.0)
    knot.query(z, want_dnssec=True)  # The new instance hands the set over.
    time.sleep(0.3)
    knot.ctl_ok("down", "mx1.%s." % z)
    base = knot.zone_stats(z)
    for i in range(10):
        r = knot.query(z, want_dnssec=True)
        validate(r, keys, z + ".")
        assert "mx1.%s." % z not in {e for _, e in r.mx()}, r
    d = delta(base, knot.zone_stats(z))
    assert d["signed-variant[cache-hit]"] == 10 and d["left-out"] == 10, d


def test_small_cache_does_not_spin(module_so, mxpolicyctl, knot_factory):
    """sign-cache smaller than the live variants: variants are pushed out
    (logged once), but the signer does not sign in circles while idle."""
    zones = {"sc%d.test" % i: ZONE for i in range(6)}
    inst = {"server": {"sign-cache": 16},
            "s": {"weight": ["mx1.sc%d.test. 50" % i for i in range(6)] +
                            ["mx2.sc%d.test. 30" % i for i in range(6)]}}
    k = knot_factory(zones, inst, {z: "s" for z in zones},
                     zone_extra={z: {"dnssec-signing": "on"} for z in zones})
    for z in zones:
        k.query(z, want_dnssec=True)
        k.query("a.wild." + z, want_dnssec=True)
    time.sleep(1.0)
    first = k.ctl_json("stats")["signing"]
    time.sleep(3.0)
    later = k.ctl_json("stats")["signing"]
    assert later["signed"] == first["signed"], (first, later)
    assert later["cached"] <= 16, later
    assert k.logfile.read_text().count("sign-cache is full") == 1
