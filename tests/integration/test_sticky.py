# Copyright (C) 2026 knot-mxpolicy authors
# SPDX-License-Identifier: GPL-3.0-or-later
"""sticky: keyed choice per client network (ECS or source /24), shares across
clients, ECS scope, fixed sticky-key reproducibility, rendezvous stability."""

import ipaddress
import time
from collections import Counter

import pytest

from knotharness import Knot, assert_shares, check_preference_rotation, rr_view, winner_of

ZONE = """
@ MX 10 mx1
@ MX 10 mx2
@ MX 10 mx3
@ MX 20 backup
mx1 A 192.0.2.1
mx2 A 192.0.2.2
mx3 A 192.0.2.3
"""
STAB_ZONE = """
@ MX 10 mx1
@ MX 10 mx2
@ MX 10 mx3
@ MX 10 mx4
"""
KEY = "integration-test-key-1"


def w(zone, **kw):
    return {"%s.%s." % (k, zone): v for k, v in kw.items()}


SW = w("sticky.test", mx1=60, mx2=30, mx3=10)
OW = w("stickord.test", mx1=60, mx2=30, mx3=10)
NW = w("nosticky.test", mx1=60, mx2=30, mx3=10)
TW = w("stab.test", mx1=40, mx2=30, mx3=20, mx4=10)
ZONES = {"sticky.test": ZONE, "stickord.test": ZONE, "nosticky.test": ZONE, "stab.test": STAB_ZONE}


def wl(d):
    return ["%s %d" % kv for kv in d.items()]


def instances(key=KEY):
    return {
        "s": {"sticky": "on", "sticky-key": key, "weight": wl(SW)},
        "o": {"sticky": "on", "sticky-key": key, "rotation": "order", "weight": wl(OW)},
        "n": {"weight": wl(NW)},
        "t": {"sticky": "on", "sticky-key": key, "weight": wl(TW)},
    }


ZMODS = {"sticky.test": "s", "stickord.test": "o", "nosticky.test": "n", "stab.test": "t"}
SZ = [(10, "mx1.sticky.test."), (10, "mx2.sticky.test."), (10, "mx3.sticky.test."), (20, "backup.sticky.test.")]


@pytest.fixture(scope="module")
def knot(module_so, mknot_factory):
    return mknot_factory(ZONES, instances(), ZMODS, ecs=True)


def subnet(i):
    """The i-th distinct IPv4 /24 (as ECS address data only; no traffic goes there)."""
    return str(ipaddress.IPv4Address(0x0A000000 + (i << 8)))


def test_same_client_same_answer(knot):
    for i in range(25):
        ecs = (subnet(i * 7919 % 65000), 24)
        ref = knot.query("sticky.test", ecs=ecs)
        check_preference_rotation(ref.mx(), SZ, SW)
        for _ in range(8):
            r = knot.query("sticky.test", ecs=ecs)
            assert rr_view(r) == rr_view(ref), "sticky answer changed for %r:\n%s\n%s" % (ecs, ref, r)


def test_shares_across_subnets(knot):
    """3000 distinct /24 clients: first choices follow 60/30/10 (df=2)."""
    wins = Counter()
    for i in range(3000):
        r = knot.query("sticky.test", ecs=(subnet(i), 24))
        wins[check_preference_rotation(r.mx(), SZ, SW)[10]] += 1
    assert_shares(wins, SW, "sticky winners across /24 clients")


def test_ecs_scope_v4_24(knot):
    for i in range(20):
        r = knot.query("sticky.test", ecs=(subnet(i), 24))
        opt = r.ecs()
        assert opt is not None, "no ECS option in the response:\n%s" % r
        assert opt.srclen == 24 and opt.scopelen == 24, "ECS scope %d (source 24):\n%s" % (opt.scopelen, r)


def test_ecs_scope_v4_32(knot):
    """A /32 source: the scope is the prefix the choice was keyed on (24 or
    32); if 24, every address of the /24 gets the same answer."""
    scopes = set()
    for i in range(10):
        base = int(ipaddress.IPv4Address(subnet(i + 500)))
        answers = set()
        for host in (1, 77, 200, 254):
            r = knot.query("sticky.test", ecs=(str(ipaddress.IPv4Address(base + host)), 32))
            opt = r.ecs()
            assert opt is not None and opt.srclen == 32, str(r)
            scopes.add(opt.scopelen)
            answers.add(tuple(r.mx()))
        if scopes == {24}:
            assert len(answers) == 1, "scope 24 claimed but the /24 got different answers: %r" % answers
    assert len(scopes) == 1 and scopes <= {24, 32}, "ECS scopes for /32 sources: %r" % scopes


def test_ecs_scope_v6_56(knot):
    for i in range(10):
        net = ipaddress.IPv6Address("2001:db8::") + (i << 72)
        r = knot.query("sticky.test", ecs=(str(net), 56))
        opt = r.ecs()
        assert opt is not None and opt.srclen == 56 and opt.scopelen == 56, "IPv6 /56 scope:\n%s" % r


def test_ecs_v6_shares(knot):
    wins = Counter()
    for i in range(1500):
        net = ipaddress.IPv6Address("2001:db8::") + (i << 72)
        r = knot.query("sticky.test", ecs=(str(net), 56))
        wins[winner_of(r.mx())] += 1
    assert_shares(wins, SW, "sticky winners across IPv6 /56 clients")


def test_ecs_source_zero_is_valid(knot):
    for _ in range(5):
        r = knot.query("sticky.test", ecs=("0.0.0.0", 0))
        assert r.rcode == 0
        check_preference_rotation(r.mx(), SZ, SW)


def test_no_ecs_same_source_same_answer(knot):
    """Without ECS the client is the source /24: 127.0.0.1 always gets the same
    answer, and so does every other address of 127.0.0.0/24."""
    ref = knot.query("sticky.test")
    assert ref.ecs() is None
    check_preference_rotation(ref.mx(), SZ, SW)
    for _ in range(20):
        assert rr_view(knot.query("sticky.test")) == rr_view(ref)
    for host in (2, 9, 100, 254):
        r = knot.query("sticky.test", source="127.0.0.%d" % host)
        assert rr_view(r) == rr_view(ref), "127.0.0.%d got another answer than 127.0.0.1" % host


def test_no_ecs_shares_across_source_subnets(knot):
    """Sources in 1500 distinct 127.x.y.0/24: shares follow the weights (df=2)."""
    wins = Counter()
    for i in range(1, 1501):
        src = "127.%d.%d.1" % (i >> 8, i & 0xFF)
        r = knot.query("sticky.test", source=src)
        wins[check_preference_rotation(r.mx(), SZ, SW)[10]] += 1
    assert_shares(wins, SW, "sticky winners across source /24s")


def test_sticky_order_mode(knot):
    """rotation order + sticky: the same client always gets the same wire order;
    across clients the first exchanger follows the weights (df=2)."""
    first = Counter()
    for i in range(1500):
        ecs = (subnet(i), 24)
        r = knot.query("stickord.test", ecs=ecs)
        mx = r.mx()
        assert sorted(p for p, _ in mx) == [10, 10, 10, 20] and [p for p, _ in mx] == [10, 10, 10, 20], str(r)
        if i < 30:
            for _ in range(3):
                assert knot.query("stickord.test", ecs=ecs).mx() == mx
        first[mx[0][1]] += 1
    assert_shares(first, OW, "sticky order-mode first position")


def test_not_sticky_scope_zero(knot):
    """Without sticky the answer does not depend on the subnet: scope 0."""
    for i in range(10):
        r = knot.query("nosticky.test", ecs=(subnet(i), 24))
        assert r.ecs() is not None and r.ecs().scopelen == 0, str(r)


def test_fixed_key_reproducible_across_restarts(module_so, knot):
    ref = {i: tuple(knot.query("sticky.test", ecs=(subnet(i), 24)).mx()) for i in range(300)}
    with Knot(ZONES, instances(), ZMODS, ecs=True) as k2:
        same = {i: tuple(k2.query("sticky.test", ecs=(subnet(i), 24)).mx()) for i in range(300)}
    assert same == ref, "same sticky-key, different answers after restart"
    with Knot(ZONES, instances("another key"), ZMODS, ecs=True) as k3:
        other = {i: tuple(k3.query("sticky.test", ecs=(subnet(i), 24)).mx()) for i in range(300)}
    diff = sum(1 for i in ref if other[i] != ref[i])
    assert diff > 60, "a different sticky-key changed only %d of 300 choices" % diff


def test_rendezvous_stability(knot):
    """Removing mx4 from the set moves only the clients that had mx4 first;
    those spread over the rest by weight (df=2)."""
    zone = [(10, "mx%d.stab.test." % i) for i in (1, 2, 3, 4)]
    before = {}
    for i in range(1500):
        before[i] = check_preference_rotation(knot.query("stab.test", ecs=(subnet(i), 24)).mx(), zone, TW)[10]
    assert_shares(Counter(before.values()), TW, "stab winners")
    knot.zone_reload("stab.test", STAB_ZONE.replace("@ MX 10 mx4\n", ""))
    moved = Counter()
    zone3 = zone[:3]
    for i in range(1500):
        win = check_preference_rotation(knot.query("stab.test", ecs=(subnet(i), 24)).mx(), zone3, TW)[10]
        if before[i] != "mx4.stab.test.":
            assert win == before[i], "client %d moved from %s to %s although its exchanger stayed" % (i, before[i], win)
        else:
            moved[win] += 1
    assert sum(moved.values()) > 50
    assert_shares(moved, {k: v for k, v in TW.items() if "mx4" not in k}, "re-homed clients")


def test_sticky_ignores_qname_case(knot):
    """0x20 case randomisation must not change a client's sticky answer."""
    for i in range(20):
        ecs = (subnet(i + 900), 24)
        ref = knot.query("sticky.test", ecs=ecs).mx()
        for q in ("STICKY.TEST", "StIcKy.tEsT", "sticky.TEST."):
            assert knot.query(q, ecs=ecs).mx() == ref, "qname case changed the sticky choice"


def test_sticky_tcp_same_as_udp(knot):
    for i in range(20):
        ecs = (subnet(i + 1200), 24)
        assert knot.query("sticky.test", ecs=ecs, tcp=True).mx() == knot.query("sticky.test", ecs=ecs).mx()
    assert knot.query("sticky.test", tcp=True).mx() == knot.query("sticky.test").mx()


def _nokey():
    inst = instances()
    for v in inst.values():
        v.pop("sticky-key", None)
    return inst


def test_default_key_random_per_process(module_so):
    """Without sticky-key each knotd process draws its own key: choices differ
    between processes, stay stable within one, also across a reload."""
    with Knot(ZONES, _nokey(), ZMODS, ecs=True) as a, Knot(ZONES, _nokey(), ZMODS, ecs=True) as b:
        ca = {i: tuple(a.query("sticky.test", ecs=(subnet(i), 24)).mx()) for i in range(300)}
        cb = {i: tuple(b.query("sticky.test", ecs=(subnet(i), 24)).mx()) for i in range(300)}
        diff = sum(1 for i in ca if ca[i] != cb[i])
        assert diff > 60, "two processes without sticky-key agree on %d of 300 choices" % (300 - diff)
        again = {i: tuple(a.query("sticky.test", ecs=(subnet(i), 24)).mx()) for i in range(300)}
        assert again == ca
        a.reload()
        time.sleep(0.5)
        after = {i: tuple(a.query("sticky.test", ecs=(subnet(i), 24)).mx()) for i in range(300)}
        moved = sum(1 for i in ca if after[i] != ca[i])
        assert moved == 0, "%d of 300 sticky choices moved after knotc reload (key is per process)" % moved
