# Copyright (C) 2026 knot-mxpolicy authors
# SPDX-License-Identifier: GPL-3.0-or-later
"""bypass: queries from listed networks get the zone's answer unmodified.

Linux routes all of 127.0.0.0/8 to the loopback, so queries can be sent from
127.0.0.2, 127.0.1.33, ... (source= in the harness)."""

import pytest

from knotharness import T_TXT, check_preference_rotation, rr_view

ZONE = """
@ MX 10 mx1
@ MX 10 mx2
@ MX 10 mx3
mx1 A 192.0.2.1
mx2 A 192.0.2.2
mx3 A 192.0.2.3
_dmarc 3600 TXT "v=DMARC1; p=none"
"""

BYPASS = {
    "bp1": ["127.0.0.1"],
    "bp2": ["10.0.0.0/8"],
    "bp3": ["127.0.0.5-127.0.0.9", "127.0.1.0/24", "::1"],
}
ZONES = {z + ".test": ZONE for z in BYPASS}


def weights(z):
    return {"mx1.%s.test." % z: 60, "mx2.%s.test." % z: 30, "mx3.%s.test." % z: 10}


INSTANCES = {z: {"bypass": nets, "ttl-max": "120", "weight": ["%s %d" % kv for kv in weights(z).items()]}
             for z, nets in BYPASS.items()}
ZMODS = {z + ".test": z for z in BYPASS}


@pytest.fixture(scope="module")
def knot(module_so, mknot_factory):
    return mknot_factory(ZONES, INSTANCES, ZMODS)


@pytest.fixture(scope="module")
def plain(mknot_factory):
    return mknot_factory(ZONES, with_module=False)


def assert_unmodified(knot, plain, z, src):
    for tcp in (False, True):
        ref_mx = rr_view(plain.query(z + ".test", tcp=tcp))
        ref_txt = rr_view(plain.query("_dmarc.%s.test" % z, "TXT", tcp=tcp))
        for _ in range(20):
            r = knot.query(z + ".test", source=src, tcp=tcp)
            assert rr_view(r) == ref_mx, "bypassed source %s got a modified answer:\n%s" % (src, r)
        r = knot.query("_dmarc.%s.test" % z, "TXT", source=src, tcp=tcp)
        assert rr_view(r) == ref_txt, "bypassed source %s got a modified TXT:\n%s" % (src, r)


def assert_policy(knot, z, src):
    zone = [(10, e) for e in weights(z)]
    for tcp in (False, True):
        seen = set()
        for _ in range(40):
            r = knot.query(z + ".test", source=src, tcp=tcp)
            seen.add(check_preference_rotation(r.mx(), zone, weights(z))[10])
            assert set(r.mx_ttls()) == {120}
        assert len(seen) >= 2, "no rotation for %s" % src
        r = knot.query("_dmarc.%s.test" % z, "TXT", source=src, tcp=tcp)
        assert [rr.ttl for rr in r.answer(T_TXT)] == [120]


def test_bypass_single_address(knot, plain):
    assert_unmodified(knot, plain, "bp1", "127.0.0.1")
    assert_policy(knot, "bp1", "127.0.0.2")


def test_bypass_other_network(knot):
    assert_policy(knot, "bp2", "127.0.0.1")


@pytest.mark.parametrize("src", ["127.0.0.5", "127.0.0.7", "127.0.0.9", "127.0.1.1", "127.0.1.254"])
def test_bypass_range_and_net_inside(knot, plain, src):
    assert_unmodified(knot, plain, "bp3", src)


@pytest.mark.parametrize("src", ["127.0.0.4", "127.0.0.10", "127.0.2.1", "127.0.0.1"])
def test_bypass_range_and_net_outside(knot, src):
    assert_policy(knot, "bp3", src)
