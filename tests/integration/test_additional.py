# Copyright (C) 2026 knot-mxpolicy authors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Additional section of rewritten MX answers: the A/AAAA of the exchangers in
the answer and only those, under their own names, valid compression; large
sets: TC as knotd makes it, dropped optional glue, TCP."""

from collections import Counter

import pytest

from knotharness import T_A, T_AAAA, check_additional, check_preference_rotation, rr_view

ADD_ZONE = """
@ MX 10 a
@ MX 10 b
@ MX 10 mail.example.net.
@ MX 10 e
@ MX 20 d
a A 192.0.2.1
a A 192.0.2.11
b AAAA 2001:db8::b
d A 192.0.2.4
d AAAA 2001:db8::d
e TXT "no address"
deep MX 10 x.deep
deep MX 10 y.deep
deep MX 10 a
x.deep A 192.0.2.21
y.deep A 192.0.2.22
"""
AZ = "add.test."
AW = {"a." + AZ: 5, "b." + AZ: 3, "mail.example.net.": 2, "e." + AZ: 1,
      "x.deep." + AZ: 1, "y.deep." + AZ: 4}
AGLUE = {"a." + AZ: [(T_A, "192.0.2.1"), (T_A, "192.0.2.11")], "b." + AZ: [(T_AAAA, "2001:db8::b")],
         "d." + AZ: [(T_A, "192.0.2.4"), (T_AAAA, "2001:db8::d")],
         "x.deep." + AZ: [(T_A, "192.0.2.21")], "y.deep." + AZ: [(T_A, "192.0.2.22")]}

N_BIG = 40
BIG_LABEL = "x" * 20


def big_zone(n, label):
    lines = []
    for i in range(n):
        lines.append("@ MX 10 mx%02d-%s" % (i, label))
        lines.append("mx%02d-%s A 192.0.2.%d" % (i, label, i + 1))
    return "\n".join(lines) + "\n"


BIG_ZONE = big_zone(N_BIG, BIG_LABEL)
BZ = "big.test."
BW = {"mx%02d-%s.%s" % (i, BIG_LABEL, BZ): i + 1 for i in range(N_BIG)}
# 8 exchangers with 40-char labels: the MX answer fits in 512 bytes, their glue does not.
GLUE_LABEL = "g" * 36
GLUE_ZONE = big_zone(8, GLUE_LABEL)
GZ = "glue.test."
GW = {"mx%02d-%s.%s" % (i, GLUE_LABEL, GZ): i + 1 for i in range(8)}

ZONES = {"add.test": ADD_ZONE, "big.test": BIG_ZONE, "glue.test": GLUE_ZONE}
INSTANCES = {
    "a": {"weight": ["%s %d" % kv for kv in AW.items()]},
    "b": {"weight": ["%s %d" % kv for kv in BW.items()]},
    "g": {"weight": ["%s %d" % kv for kv in GW.items()], "ttl-max": "60"},
}
ZMODS = {"add.test": "a", "big.test": "b", "glue.test": "g"}


@pytest.fixture(scope="module")
def knot(module_so, mknot_factory):
    return mknot_factory(ZONES, INSTANCES, ZMODS, udp_max_payload=4096)


@pytest.fixture(scope="module")
def plain(mknot_factory):
    return mknot_factory(ZONES, with_module=False, udp_max_payload=4096)


def addset(r):
    return sorted((rr.owner, rr.rtype, rr.data, rr.ttl) for rr in r.additional())


@pytest.mark.parametrize("tcp", [False, True])
@pytest.mark.parametrize("owner", ["", "deep."])
def test_additional_matches_answer(knot, plain, owner, tcp):
    """Glue of every exchanger in the answer, under its own name, nothing else;
    the same records as plain knotd gives (nothing is left out in this issue)."""
    name = owner + AZ
    ref = plain.query(name, tcp=tcp)
    zone = [(p, e) for p, e in ref.mx()]
    wins = Counter()
    for _ in range(300):
        r = knot.query(name, tcp=tcp)
        win = check_preference_rotation(r.mx(), zone, AW)
        wins[win[10]] += 1
        check_additional(r, AGLUE)
        assert addset(r) == addset(ref), "additional differs from plain knotd:\n%s\n---\n%s" % (r, ref)
        assert not r.section(1), "authority section appeared:\n%s" % r
    assert len(wins) >= 3, wins
    knot.kdig(name, "MX", *(["+tcp"] if tcp else []))


def test_additional_with_dnssec_ok_unsigned(knot, plain):
    r = knot.query(AZ, want_dnssec=True)
    check_additional(r, AGLUE)
    assert addset(r) == addset(plain.query(AZ, want_dnssec=True))


def test_tc_as_knotd_made_it(knot, plain):
    """40 long exchangers over UDP at 512 bytes: knotd sets TC; the module lets
    that response go out as knotd made it (same records as plain knotd)."""
    for kw in (dict(edns=False), dict(payload=512)):
        ref = plain.query(BZ, **kw)
        assert ref.tc, "test premise: plain knotd must truncate:\n%s" % ref
        for _ in range(20):
            r = knot.query(BZ, **kw)
            assert r.tc, "TC lost:\n%s" % r
            assert rr_view(r) == rr_view(ref), "truncated response differs from knotd's:\n%s\n---\n%s" % (r, ref)
            assert (r.hdr["an"], r.hdr["ns"], r.hdr["ar"]) == (ref.hdr["an"], ref.hdr["ns"], ref.hdr["ar"])
    knot.kdig(BZ, "MX", "+notcp", "+ignore", "+bufsize=512")


def test_big_set_over_tcp(knot):
    """Over TCP the full 40-record set is rotated, with all 40 glue records (df=39 too
    many for few queries: check rotation and validity only)."""
    zone = [(10, e) for e in BW]
    glue = {e: [(T_A, "192.0.2.%d" % (i + 1))] for i, e in enumerate(BW)}
    seen = set()
    for _ in range(60):
        r = knot.query(BZ, tcp=True)
        assert not r.tc and len(r.mx()) == N_BIG
        seen.add(check_preference_rotation(r.mx(), zone, BW)[10])
        check_additional(r, glue)
    assert len(seen) >= 5
    knot.kdig(BZ, "MX", "+tcp")


def test_big_set_large_udp(knot, plain):
    """The full set with all glue fits a 4096-byte EDNS UDP answer
    (udp-max-payload 4096): rotated, complete, valid."""
    zone = [(10, e) for e in BW]
    glue = {e: [(T_A, "192.0.2.%d" % (i + 1))] for i, e in enumerate(BW)}
    ref = plain.query(BZ, payload=4096)
    assert not ref.tc and len(ref.additional()) == N_BIG, "test premise: all glue fits:\n%s" % ref
    for _ in range(30):
        r = knot.query(BZ, payload=4096)
        assert not r.tc and len(r.wire) <= 4096
        check_preference_rotation(r.mx(), zone, BW)
        check_additional(r, glue)


def test_dropped_glue_stays_valid(knot, plain):
    """The MX answer fits 512 bytes but not all glue: knotd drops optional glue
    (no TC). The policy still applies (rotation, ttl-max 60, glue TTL capped);
    the answer stays within 512 bytes, valid, no TC, and its additional records
    are glue of answered exchangers under their own names."""
    ref = plain.query(GZ)
    assert not ref.tc and len(ref.additional()) < 8, "test premise: glue must be dropped:\n%s" % ref
    zone = [(10, e) for e in GW]
    glue = {e: ("192.0.2.%d" % (i + 1)) for i, e in enumerate(GW)}
    seen = set()
    for _ in range(200):
        r = knot.query(GZ)
        assert len(r.wire) <= 512
        assert not r.tc, "TC set although knotd's own answer fits:\n%s" % r
        seen.add(check_preference_rotation(r.mx(), zone, GW)[10])
        assert set(r.mx_ttls()) == {60}, "ttl-max not applied:\n%s" % r
        assert all(rr.ttl <= 60 for rr in r.additional()), "glue outlives the MX set:\n%s" % r
        owners = [rr.owner for rr in r.additional()]
        assert len(owners) == len(set(owners)), str(r)
        for rr in r.additional():
            assert rr.rtype == T_A and glue.get(rr.owner) == rr.data, "wrong glue %r\n%s" % (rr, r)
    assert len(seen) >= 4
    knot.kdig(GZ, "MX", "+notcp", "+noedns")
