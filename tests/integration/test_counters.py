# Copyright (C) 2026 knot-mxpolicy authors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Counters in `knotc zone-stats ZONE mod-mxpolicy`: exact where deterministic."""

import pytest

from knotharness import check_preference_rotation

ZONE = """
@ 300 MX 10 mx1
@ 300 MX 10 mx2
@ 300 MX 10 mx3
eq 60 MX 10 eq1
eq 60 MX 10 eq2
single 3600 MX 10 mx1
nullmx 3600 MX 0 .
mx1 A 192.0.2.1
_dmarc 3600 TXT "v=DMARC1; p=none"
sel._domainkey 3600 TXT "v=DKIM1; p="
spf 60 TXT "v=spf1 -all"
info 3600 TXT "hello"
"""
COUNTERS = ("rewritten", "left-out", "renumbered", "all-down", "txt-ttl", "signed-limited")


def weights(z):
    z = z.rstrip(".")
    return {"mx1.%s." % z: 60, "mx2.%s." % z: 30, "mx3.%s." % z: 10}


def inst(z, **kw):
    d = {"weight": ["%s %d" % kv for kv in weights(z).items()], "ttl-max": "120", "bypass": "127.0.0.9"}
    d.update(kw)
    return d


ZONES = {"cnt.test": ZONE, "ord.test": ZONE, "other.test": ZONE}
INSTANCES = {"c": inst("cnt.test"), "o": inst("ord.test", rotation="order", **{"ttl-max": "0"}),
             "x": inst("other.test")}
ZMODS = {"cnt.test": "c", "ord.test": "o", "other.test": "x"}


@pytest.fixture(scope="module")
def knot(module_so, mknot_factory):
    return mknot_factory(ZONES, INSTANCES, ZMODS)


@pytest.fixture(scope="module")
def plain(mknot_factory):
    return mknot_factory(ZONES, with_module=False)


def stats(knot, zone):
    s = knot.zone_stats(zone)
    for c in COUNTERS:
        assert c in s, "counter %r missing from zone-stats (-f): %r" % (c, s)
    assert s.get("errors", 0) == 0, "module error counter: %r" % s
    return s


def test_counters_start_at_zero(knot):
    for z in ZONES:
        assert all(v == 0 for v in stats(knot, z).values()), stats(knot, z)


def test_counters_exact(knot):
    z = "cnt.test."
    base = stats(knot, z)
    n_rot, n_single, n_dmarc, n_dkim = 97, 13, 11, 5
    for i in range(n_rot):
        r = knot.query(z, tcp=(i % 3 == 0))
        check_preference_rotation(r.mx(), [(10, e) for e in weights(z)], weights(z))
    for _ in range(n_single):
        assert knot.query("single." + z).mx_ttls() == [120]
    for _ in range(n_dmarc):
        knot.query("_dmarc." + z, "TXT")
    for _ in range(n_dkim):
        knot.query("sel._domainkey." + z, "TXT", tcp=True)
    # none of these may count
    for _ in range(7):
        knot.query("eq." + z)                       # equal weights, TTL within bounds
        knot.query("nullmx." + z)                   # null MX
        knot.query("spf." + z, "TXT")               # email TXT, TTL within bounds
        knot.query("info." + z, "TXT")              # not an email TXT
        knot.query("mx1." + z, "A")
        knot.query(z, "ANY")
        knot.query("nothere." + z)                  # NXDOMAIN
        knot.query(z, source="127.0.0.9")           # bypass
        knot.query("_dmarc." + z, "TXT", source="127.0.0.9")
    s = stats(knot, z)
    d = {c: s[c] - base[c] for c in COUNTERS}
    assert d == {"rewritten": n_rot + n_single, "left-out": 0, "renumbered": n_rot, "all-down": 0,
                 "txt-ttl": n_dmarc + n_dkim, "signed-limited": 0}, "counter deltas %r" % d
    # per-zone counters: the other zone's stay at zero
    assert all(v == 0 for v in stats(knot, "other.test").values())


def test_counters_order_mode(knot, plain):
    """order mode: 'rewritten' counts exactly the answers whose order differs
    from the zone's; nothing is renumbered."""
    z = "ord.test."
    zone_order = plain.query(z).mx()
    base = stats(knot, z)
    changed = 0
    for _ in range(200):
        mx = knot.query(z).mx()
        assert sorted(mx) == sorted(zone_order)
        changed += mx != zone_order
    s = stats(knot, z)
    assert 0 < changed < 200
    assert s["rewritten"] - base["rewritten"] == changed, (s, changed)
    assert s["renumbered"] == base["renumbered"]
