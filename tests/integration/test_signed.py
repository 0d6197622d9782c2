# Copyright (C) 2026 knot-mxpolicy authors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Signed zones (knotd automatic signing): with DO the full policy applies
with signatures made for the changed sets, RRSIG TTL = set TTL with
Original TTL unchanged, signatures validate; TTLs never raised above the
zone's."""

import time

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdatatype
import pytest

from knotharness import T_A, T_MX, T_RRSIG, T_TXT, check_preference_rotation

ZONE = """
@ 300 MX 10 mx1
@ 300 MX 10 mx2
@ 300 MX 10 mx3
@ 300 MX 20 backup
mx1 300 A 192.0.2.1
mx2 300 A 192.0.2.2
backup 300 A 192.0.2.20
_dmarc 3600 TXT "v=DMARC1; p=none"
low._domainkey 30 TXT "v=DKIM1; p="
"""


def weights(z):
    return {"mx1.%s." % z: 60, "mx2.%s." % z: 30, "mx3.%s." % z: 10}


def zone_mx(z):
    return [(10, "mx1.%s." % z), (10, "mx2.%s." % z), (10, "mx3.%s." % z), (20, "backup.%s." % z)]


ZONES = {"signed.test": ZONE, "raise.test": ZONE, "ordsig.test": ZONE}
INSTANCES = {
    "s": {"weight": ["%s %d" % kv for kv in weights("signed.test").items()], "ttl-max": "120",
          "ttl-min": "60"},
    "r": {"weight": ["%s %d" % kv for kv in weights("raise.test").items()], "ttl-min": "600"},
    "o": {"weight": ["%s %d" % kv for kv in weights("ordsig.test").items()], "rotation": "order",
          "ttl-max": "120"},
}
ZMODS = {"signed.test": "s", "raise.test": "r", "ordsig.test": "o"}


@pytest.fixture(scope="module")
def knot(module_so, mknot_factory):
    return mknot_factory(ZONES, INSTANCES, ZMODS,
                         zone_extra={z: {"dnssec-signing": "on"} for z in ZONES})


@pytest.fixture(scope="module")
def keys(knot):
    out = {}
    for z in ZONES:
        r = knot.query(z, "DNSKEY", want_dnssec=True)
        rrset = r.msg.find_rrset(r.msg.answer, dns.name.from_text(z), dns.rdataclass.IN, dns.rdatatype.DNSKEY)
        out[dns.name.from_text(z)] = rrset
    return out


def validate_all(r, keys):
    """Every signed RRset of the response validates; every RRSIG's TTL equals its set's TTL."""
    msg = r.msg
    checked = 0
    for section, sec_no in ((msg.answer, 0), (msg.additional, 2)):
        for rrsig in [s for s in section if s.rdtype == dns.rdatatype.RRSIG]:
            covered = rrsig.covers
            rrset = msg.find_rrset(section, rrsig.name, dns.rdataclass.IN, covered)
            try:
                dns.dnssec.validate(rrset, rrsig, keys, now=time.time())
            except dns.dnssec.ValidationFailure as e:
                raise AssertionError("%s %s does not validate (%s):\n%s"
                                     % (rrset.name, dns.rdatatype.to_text(covered), e, r))
            wire_ttls = {rr.ttl for rr in r.section(sec_no) if rr.owner == str(rrset.name).lower()
                         and rr.rtype == covered}
            sig_ttls = {rr.ttl for rr in r.section(sec_no) if rr.owner == str(rrset.name).lower()
                        and rr.rtype == T_RRSIG and rr.data["covered"] == covered}
            assert len(wire_ttls) == 1 and wire_ttls == sig_ttls, \
                "RRSIG TTL %r != set TTL %r for %s\n%s" % (sig_ttls, wire_ttls, rrset.name, r)
            checked += 1
    return checked


def orig_ttls(r, rtype, section=0):
    return {rr.data["orig_ttl"] for rr in r.section(section, T_RRSIG) if rr.data["covered"] == rtype}


def test_signed_do_full_policy_and_valid(knot, keys):
    """DO in a signed zone: the full policy applies (preference renumbering
    by weight) and every answer carries a signature made for its set; TTL
    lowered to ttl-max, RRSIG TTL follows, Original TTL unchanged."""
    z = "signed.test"
    knot.query(z, want_dnssec=True)  # Hands the set to the signer.
    time.sleep(0.2)
    base = knot.zone_stats(z)
    n = 150
    winners = {}
    for i in range(n):
        r = knot.query(z, want_dnssec=True, tcp=(i % 2 == 1))
        w = check_preference_rotation(r.mx(), zone_mx(z), weights(z))[10]
        winners[w] = winners.get(w, 0) + 1
        assert set(r.mx_ttls()) == {120}
        assert orig_ttls(r, T_MX) == {300}
        assert validate_all(r, keys) >= 2
        for rr in r.additional(T_A):
            assert rr.ttl <= 120
    s = knot.zone_stats(z)
    d = {k: s.get(k, 0) - base.get(k, 0) for k in s}
    assert d["signed-variant[cache-hit]"] == n, d
    assert d["signed-limited"] == 0, d
    assert d["renumbered"] == d["signed-variant[cache-hit]"], d
    assert len(winners) == 3, winners


def test_signed_without_do_full_policy(knot):
    """Without DO no signature goes out: the full policy applies."""
    z = "signed.test"
    seen = set()
    for _ in range(60):
        r = knot.query(z)
        assert not r.section(0, T_RRSIG)
        seen.add(check_preference_rotation(r.mx(), zone_mx(z), weights(z))[10])
        assert set(r.mx_ttls()) == {120}
    assert len(seen) >= 2


def test_signed_order_mode_do(knot, keys):
    z = "ordsig.test"
    firsts = set()
    for i in range(60):
        r = knot.query(z, want_dnssec=True)
        mx = r.mx()
        assert sorted(mx) == sorted(zone_mx(z))
        assert [p for p, _ in mx] == sorted(p for p, _ in mx)
        firsts.add(mx[0][1])
        if i < 10:
            validate_all(r, keys)
    assert len(firsts) >= 2, "order mode did not reorder with DO in a signed zone"


@pytest.mark.parametrize("do", [False, True])
def test_signed_txt(knot, keys, do):
    r = knot.query("_dmarc.signed.test", "TXT", want_dnssec=do)
    assert [rr.ttl for rr in r.answer(T_TXT)] == [120]
    if do:
        assert orig_ttls(r, T_TXT) == {3600}
        assert validate_all(r, keys) == 1
    r = knot.query("low._domainkey.signed.test", "TXT", want_dnssec=do)
    assert [rr.ttl for rr in r.answer(T_TXT)] == [30], "TTL raised above the signed zone's:\n%s" % r


@pytest.mark.parametrize("do", [False, True])
def test_signed_never_raised(knot, keys, do):
    """ttl-min 600 in a signed zone: TTLs stay at the zone's (300, 30)."""
    r = knot.query("raise.test", want_dnssec=do)
    assert set(r.mx_ttls()) == {300}, "MX TTL raised in a signed zone:\n%s" % r
    if do:
        validate_all(r, keys)
    r = knot.query("low._domainkey.raise.test", "TXT", want_dnssec=do)
    assert [rr.ttl for rr in r.answer(T_TXT)] == [30]


def test_kdig_dnssec(knot):
    knot.kdig("signed.test", "MX", "+dnssec")
    knot.kdig("signed.test", "MX", "+dnssec", "+tcp")
