# Copyright (C) 2026 knot-mxpolicy authors
# SPDX-License-Identifier: GPL-3.0-or-later
"""MX rotation modes (preference, order, none), tiers, weights, wildcard,
CNAME, null MX, ANY, TCP, EDNS/AA, against real knotd with the module."""

import random
import string
from collections import Counter

import pytest

from knotharness import (T_CNAME, T_MX, assert_shares, check_additional, check_preference_rotation,
                         rr_view, winner_of)

N_STAT = 3000

PREF_ZONE = """
@ MX 10 mx1
@ MX 10 mx2
@ MX 10 mx3
@ MX 20 backup
mx1 A 192.0.2.1
mx2 A 192.0.2.2
mx2 AAAA 2001:db8::2
mx3 A 192.0.2.3
backup A 192.0.2.20
eq MX 10 eq1
eq MX 10 eq2
eq MX 10 eq3
zero MX 10 z1
zero MX 10 z2
zero MX 10 z3
allzero MX 10 y1
allzero MX 10 y2
two MX 10 t1
two MX 10 t2
two MX 20 u1
two MX 20 u2
two MX 30 v
single MX 10 mx1
low MX 0 mx1
low MX 0 mx2
high MX 65535 mx1
high MX 65535 mx2
tight MX 10 mx1
tight MX 10 mx2
tight MX 11 mx3
full MX 0 mx1
full MX 0 mx2
full MX 1 mx3
*.wild MX 10 mx1
*.wild MX 10 mx2
*.wild MX 10 mx3
mailhost MX 10 mx1
mailhost MX 10 mx2
mailhost MX 10 mx3
alias CNAME mailhost
alias2 CNAME @
chain CNAME alias
ext CNAME mail.example.net.
deleg NS ns.deleg
ns.deleg A 192.0.2.53
deleg MX 10 mx1
deleg MX 10 mx2
nullmx MX 0 .
nullmix MX 0 .
nullmix MX 10 mx1
nullmix MX 10 mx2
anyhost MX 10 mx1
anyhost MX 10 mx2
anyhost MX 10 mx3
info TXT "hello"
"""

Z = "pref.test."
W = {"mx1." + Z: 60, "mx2." + Z: 30, "mx3." + Z: 10,
     "z1." + Z: 0, "z2." + Z: 5, "z3." + Z: 5,
     "y1." + Z: 0, "y2." + Z: 0,
     "t1." + Z: 3, "t2." + Z: 1, "u1." + Z: 1, "u2." + Z: 2}
APEX = [(10, "mx1"), (10, "mx2"), (10, "mx3"), (20, "backup")]
GLUE = {"mx1." + Z: [(1, "192.0.2.1")], "mx2." + Z: [(1, "192.0.2.2"), (28, "2001:db8::2")],
        "mx3." + Z: [(1, "192.0.2.3")], "backup." + Z: [(1, "192.0.2.20")]}

DW_ZONE = """
@ MX 10 mx1
@ MX 10 mx2
@ MX 10 mx3
"""

ORD_ZONE = """
@ MX 10 mx1
@ MX 10 mx2
@ MX 10 mx3
@ MX 10 mx4
@ MX 20 backup1
@ MX 20 backup2
mx1 A 192.0.2.1
mx4 A 192.0.2.4
"""
OZ = "ord.test."
OW = {"mx1." + OZ: 60, "mx2." + OZ: 30, "mx3." + OZ: 10, "mx4." + OZ: 0}

NONE_ZONE = PREF_ZONE


def weights_list(w):
    return ["%s %d" % (k, v) for k, v in w.items()]


ZONES = {"pref.test": PREF_ZONE, "dw.test": DW_ZONE, "ord.test": ORD_ZONE, "none.test": NONE_ZONE}
INSTANCES = {
    "pref": {"weight": weights_list(W)},
    # names in any case, without the trailing dot; unlisted get default-weight
    "dw": {"weight": ["MX1.Dw.Test 1"], "default-weight": 3},
    "ord": {"rotation": "order", "weight": weights_list(OW)},
    "none": {"rotation": "none", "weight": [s.replace("pref.test.", "none.test.") for s in weights_list(W)]},
}
ZMODS = {"pref.test": "pref", "dw.test": "dw", "ord.test": "ord", "none.test": "none"}


@pytest.fixture(scope="module")
def knot(module_so, mknot_factory):
    return mknot_factory(ZONES, INSTANCES, ZMODS)


@pytest.fixture(scope="module")
def plain(mknot_factory):
    """The same zones served by knotd without the module."""
    return mknot_factory(ZONES, with_module=False)


def zmx(recs, zone=Z):
    return [(p, e + "." + zone if not e.endswith(".") else e) for p, e in recs]


def rand_label(rng, n=10):
    return "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(n))


# ----------------------------------------------------------------- preference

def test_preference_weighted_shares(knot):
    """60/30/10 weights: one winner per answer at pref 10, the others at 11,
    the backup tier after them; winner counts follow the weights (df=2)."""
    zone = zmx(APEX)
    wins = Counter()
    for i in range(N_STAT):
        r = knot.query(Z, "MX")
        assert r.rcode == 0 and r.aa
        mx = r.mx()
        win = check_preference_rotation(mx, zone, W)
        assert win[20] is None
        prefs = dict((e, p) for p, e in mx)
        losers = [prefs[e] for e in prefs if e != win[10] and e != "backup." + Z]
        assert losers == [11, 11], "losers not at 11: %r" % mx
        assert prefs["backup." + Z] == 20
        assert set(r.mx_ttls()) == {300}, "MX TTL changed without a TTL policy: %r" % r.mx_ttls()
        if i % 100 == 0:
            check_additional(r, GLUE)
        wins[win[10]] += 1
    assert_shares(wins, {"mx1." + Z: 60, "mx2." + Z: 30, "mx3." + Z: 10}, "preference winners")


def test_preference_equal_weights_unchanged(knot, plain):
    """Equal-weight tiers are left exactly as the zone has them."""
    ref = rr_view(plain.query("eq.pref.test", "MX"))
    for _ in range(50):
        r = knot.query("eq.pref.test", "MX")
        assert [p for p, _ in r.mx()] == [10, 10, 10]
        assert rr_view(r) == ref, "equal-weight answer changed:\n%s" % r


def test_preference_all_zero_tier_unchanged(knot, plain):
    """A tier whose members all have weight 0 has equal weights: unchanged."""
    ref = rr_view(plain.query("allzero.pref.test", "MX"))
    for _ in range(30):
        assert rr_view(knot.query("allzero.pref.test", "MX")) == ref


def test_preference_single_record_unchanged(knot, plain):
    ref = rr_view(plain.query("single.pref.test", "MX"))
    for _ in range(20):
        assert rr_view(knot.query("single.pref.test", "MX")) == ref


def test_preference_weight_zero_never_wins(knot):
    """z1 has weight 0, z2/z3 weight 5: z1 never wins, z2/z3 share 50/50 (df=1)."""
    zone = zmx([(10, "z1"), (10, "z2"), (10, "z3")])
    wins = Counter()
    for _ in range(600):
        win = check_preference_rotation(knot.query("zero.pref.test", "MX").mx(), zone, W)
        wins[win[10]] += 1
    assert_shares(wins, {"z1." + Z: 0, "z2." + Z: 5, "z3." + Z: 5}, "weight-0 tier")


def test_preference_two_rotated_tiers(knot):
    """Two tiers rotated independently, the single-record third tier kept; tier order kept."""
    zone = zmx([(10, "t1"), (10, "t2"), (20, "u1"), (20, "u2"), (30, "v")])
    w10, w20 = Counter(), Counter()
    for _ in range(800):
        r = knot.query("two.pref.test", "MX")
        win = check_preference_rotation(r.mx(), zone, W)
        assert win[30] is None
        w10[win[10]] += 1
        w20[win[20]] += 1
    assert_shares(w10, {"t1." + Z: 3, "t2." + Z: 1}, "tier 10")
    assert_shares(w20, {"u1." + Z: 1, "u2." + Z: 2}, "tier 20")


def test_preference_bounds_low(knot):
    """Tier at 0: the winner keeps 0, the other gets a higher value."""
    zone = zmx([(0, "mx1"), (0, "mx2")])
    for _ in range(50):
        check_preference_rotation(knot.query("low.pref.test", "MX").mx(), zone, W)


def test_preference_bounds_high(knot):
    """Tier at 65535: the winner cannot keep the value; it alone moves to 65534."""
    zone = zmx([(65535, "mx1"), (65535, "mx2")])
    seen = set()
    for _ in range(60):
        mx = knot.query("high.pref.test", "MX").mx()
        check_preference_rotation(mx, zone, W, exact=False)
        prefs = sorted(p for p, _ in mx)
        assert prefs == [65534, 65535], "not renumbered with a single change: %r" % mx
        seen.add(winner_of(mx))
    assert seen == {"mx1." + Z, "mx2." + Z}


@pytest.mark.parametrize("owner,recs", [
    ("tight", [(10, "mx1"), (10, "mx2"), (11, "mx3")]),
    ("full", [(0, "mx1"), (0, "mx2"), (1, "mx3")]),
])
def test_preference_no_room_keeps_order(knot, owner, recs):
    """Adjacent tiers leave no free value: renumbering still keeps every tier
    after the previous one, one winner per rotated tier, values in range."""
    zone = zmx(recs)
    seen = set()
    for _ in range(60):
        mx = knot.query(owner + ".pref.test", "MX").mx()
        win = check_preference_rotation(mx, zone, W, exact=False)
        seen.add(win[recs[0][0]])
    assert seen == {"mx1." + Z, "mx2." + Z}


def test_default_weight_and_name_case(knot):
    """dw instance: 'MX1.Dw.Test 1' (any case, no trailing dot), others get
    default-weight 3: shares 1/3/3 (df=2)."""
    zone = zmx([(10, "mx1"), (10, "mx2"), (10, "mx3")], "dw.test.")
    w = {"mx1.dw.test.": 1, "mx2.dw.test.": 3, "mx3.dw.test.": 3}
    wins = Counter()
    for _ in range(1400):
        win = check_preference_rotation(knot.query("dw.test", "MX").mx(), zone, w)
        wins[win[10]] += 1
    assert_shares(wins, w, "default-weight")


# ---------------------------------------------------------------------- order

def test_order_mode(knot):
    """Preferences untouched; tiers in order; first-in-wire share per weight
    (df=2); the weight-0 exchanger after all positive ones; equal-weight
    tier 20 shuffled 50/50 (df=1)."""
    zone_set = {(10, "mx1." + OZ), (10, "mx2." + OZ), (10, "mx3." + OZ), (10, "mx4." + OZ),
                (20, "backup1." + OZ), (20, "backup2." + OZ)}
    first, first20 = Counter(), Counter()
    for i in range(N_STAT):
        r = knot.query(OZ, "MX")
        mx = r.mx()
        assert len(mx) == 6 and set(mx) == zone_set, "order mode changed the set: %r" % mx
        prefs = [p for p, _ in mx]
        assert prefs == sorted(prefs), "tiers out of order: %r" % mx
        tier10 = [e for p, e in mx if p == 10]
        assert tier10[-1] == "mx4." + OZ, "weight-0 exchanger not last in its tier: %r" % mx
        first[tier10[0]] += 1
        first20[[e for p, e in mx if p == 20][0]] += 1
        if i % 200 == 0:
            check_additional(r, {"mx1." + OZ: [(1, "192.0.2.1")], "mx4." + OZ: [(1, "192.0.2.4")]})
    assert_shares(first, {"mx1." + OZ: 60, "mx2." + OZ: 30, "mx3." + OZ: 10, "mx4." + OZ: 0},
                  "order mode first position")
    assert_shares(first20, {"backup1." + OZ: 1, "backup2." + OZ: 1}, "order mode equal tier")


# ----------------------------------------------------------------------- none

@pytest.mark.parametrize("owner", ["", "two.", "zero.", "eq."])
def test_none_mode_is_zone_order(knot, plain, owner):
    """rotation none: the answer equals plain knotd's, record for record."""
    ref = rr_view(plain.query(owner + "none.test", "MX"))
    for _ in range(30):
        r = knot.query(owner + "none.test", "MX")
        assert rr_view(r) == ref, "none mode changed the answer:\n%s" % r


# ------------------------------------------------------------------- wildcard

def test_wildcard_rotated(knot):
    """*.wild MX: random names get rotated answers with owner = qname."""
    rng = random.Random(7)
    zone = zmx([(10, "mx1"), (10, "mx2"), (10, "mx3")])
    wins = Counter()
    for _ in range(600):
        q = rand_label(rng) + ".wild." + Z
        r = knot.query(q, "MX")
        assert r.rcode == 0 and r.aa
        assert {rr.owner for rr in r.answer()} == {q}, "owner is not the qname:\n%s" % r
        win = check_preference_rotation(r.mx(), zone, W)
        wins[win[10]] += 1
        check_additional(r, GLUE)
    assert_shares(wins, {"mx1." + Z: 60, "mx2." + Z: 30, "mx3." + Z: 10}, "wildcard winners")
    knot.kdig(rand_label(rng) + ".wild." + Z, "MX")


# ---------------------------------------------------------------------- CNAME

@pytest.mark.parametrize("alias,target,recs", [
    ("alias.pref.test.", "mailhost.pref.test.", [(10, "mx1"), (10, "mx2"), (10, "mx3")]),
    ("alias2.pref.test.", "pref.test.", APEX),
])
def test_cname_to_mx_owner(knot, alias, target, recs):
    """CNAME inside the zone to an MX owner: CNAME first, then the target's MX
    set either rotated (valid) or untouched -- never corrupted."""
    zone = zmx(recs)
    modes = Counter()
    for _ in range(200):
        r = knot.query(alias, "MX")
        assert r.rcode == 0 and r.aa
        ans = r.answer()
        assert ans[0].rtype == T_CNAME and ans[0].owner == alias and ans[0].data == target, str(r)
        assert all(rr.owner == target for rr in ans[1:] if rr.rtype == T_MX), str(r)
        assert [rr.rtype for rr in ans] == [T_CNAME] + [T_MX] * len(recs), str(r)
        mx = r.mx(target)
        if sorted(mx) == sorted(zone):
            modes["untouched"] += 1
        else:
            check_preference_rotation(mx, zone, W)
            modes["rotated"] += 1
        check_additional(r, GLUE, target)
    assert len(modes) == 1, "CNAME answers mix rotated and untouched: %r" % modes
    knot.kdig(alias, "MX")


def test_cname_chain(knot):
    """chain -> alias -> mailhost: both CNAMEs, then the MX set, valid."""
    zone = zmx([(10, "mx1"), (10, "mx2"), (10, "mx3")])
    for _ in range(100):
        r = knot.query("chain.pref.test", "MX")
        ans = r.answer()
        assert [(rr.owner, rr.rtype) for rr in ans[:2]] == [("chain." + Z, T_CNAME), ("alias." + Z, T_CNAME)], str(r)
        assert [rr.rtype for rr in ans[2:]] == [T_MX] * 3, str(r)
        mx = r.mx("mailhost." + Z)
        if sorted(mx) != sorted(zone):
            check_preference_rotation(mx, zone, W)
        check_additional(r, GLUE, "mailhost." + Z)


@pytest.mark.parametrize("name", ["ext.pref.test", "deleg.pref.test", "x.deleg.pref.test"])
def test_cname_out_and_referral_untouched(knot, plain, name):
    """CNAME leaving the zone and referrals (MX below a zone cut) are not
    answers of this zone's MX sets: byte-for-byte the same records as plain knotd."""
    ref = plain.query(name, "MX")
    for _ in range(20):
        r = knot.query(name, "MX")
        assert (r.rcode, r.aa) == (ref.rcode, ref.aa)
        assert rr_view(r) == rr_view(ref), "changed:\n%s\nplain:\n%s" % (r, ref)


# -------------------------------------------------------------- null MX, ANY

@pytest.mark.parametrize("owner", ["nullmx.pref.test", "nullmix.pref.test"])
def test_null_mx_untouched(knot, plain, owner):
    ref = rr_view(plain.query(owner, "MX"))
    for _ in range(40):
        r = knot.query(owner, "MX")
        assert rr_view(r) == ref, "null MX set changed:\n%s" % r


@pytest.mark.parametrize("tcp", [False, True])
@pytest.mark.parametrize("owner", ["anyhost.pref.test", "mailhost.pref.test"])
def test_any_untouched(knot, plain, owner, tcp):
    ref = rr_view(plain.query(owner, "ANY", tcp=tcp))
    for _ in range(40):
        r = knot.query(owner, "ANY", tcp=tcp)
        assert rr_view(r) == ref, "ANY answer changed:\n%s\nplain knotd:\n%s" % (r, ref)


def test_other_types_untouched(knot, plain):
    for name, t in (("info.pref.test", "TXT"), ("mx1.pref.test", "A"), ("pref.test", "NS"),
                    ("pref.test", "SOA"), ("nothere.pref.test", "MX"), ("mx1.pref.test", "MX")):
        ref = plain.query(name, t)
        r = knot.query(name, t)
        assert r.rcode == ref.rcode and rr_view(r) == rr_view(ref), "%s %s changed:\n%s" % (name, t, r)


# ------------------------------------------------------------------- TCP/EDNS

def test_tcp_rotation(knot):
    """Same behaviour over TCP (600 queries, df=2)."""
    zone = zmx(APEX)
    wins = Counter()
    for _ in range(600):
        r = knot.query(Z, "MX", tcp=True)
        assert r.aa and not r.tc
        wins[check_preference_rotation(r.mx(), zone, W)[10]] += 1
        check_additional(r, GLUE)
    assert_shares(wins, {"mx1." + Z: 60, "mx2." + Z: 30, "mx3." + Z: 10}, "TCP winners")


@pytest.mark.parametrize("kw", [dict(edns=False), dict(edns=True), dict(want_dnssec=True),
                                dict(payload=4096), dict(edns=True, tcp=True)])
def test_edns_variants_rotated(knot, kw):
    """Without EDNS, with EDNS, with DO (unsigned zone): AA set, OPT only when
    asked, answers rotated and valid."""
    zone = zmx(APEX)
    seen = set()
    for _ in range(60):
        r = knot.query(Z, "MX", **kw)
        assert r.aa and r.rcode == 0
        want_opt = kw.get("edns", True)
        assert (r.msg.edns >= 0) == want_opt, "OPT presence wrong:\n%s" % r
        if kw.get("want_dnssec"):
            assert r.msg.ednsflags & 0x8000, "DO bit not echoed"
        seen.add(check_preference_rotation(r.mx(), zone, W)[10])
        check_additional(r, GLUE)
    assert len(seen) >= 2, "no rotation seen in 60 answers"


def test_kdig_parses_answers(knot):
    for args in ((), ("+tcp",), ("+edns",), ("+dnssec",), ("+nsid",)):
        out = knot.kdig(Z, "MX", *args)
        assert "status: NOERROR" in out and "aa" in out.split("Flags:")[1].split(";")[0]
    knot.kdig("alias.pref.test", "MX")
    knot.kdig("two.pref.test", "MX", "+tcp")


def test_mixed_case_qname(knot):
    """Resolvers randomise qname case (0x20): answers stay rotated and valid."""
    rng = random.Random(3)
    zone = zmx(APEX)
    seen = set()
    for _ in range(200):
        q = "".join(c.upper() if rng.random() < 0.5 else c for c in "pref.test.")
        r = knot.query(q, "MX")
        assert r.questions[0][0] == Z
        assert {rr.owner for rr in r.answer()} == {Z}
        seen.add(check_preference_rotation(r.mx(), zone, W)[10])
        check_additional(r, GLUE)
    assert len(seen) == 3
    q = "".join(c.upper() if rng.random() < 0.5 else c for c in rand_label(rng) + ".wild.pref.test.")
    r = knot.query(q, "MX")
    assert {rr.owner for rr in r.answer()} == {q.lower()}
    check_preference_rotation(r.mx(), zmx([(10, "mx1"), (10, "mx2"), (10, "mx3")]), W)
    knot.kdig("PrEf.TeSt.", "MX")
