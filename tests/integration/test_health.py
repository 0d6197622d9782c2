# Copyright (C) 2026 knot-mxpolicy authors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Health-driven answers: operator states set through mxpolicyctl change the
MX answers of a real knotd at once.

down / up / drain / auto / weight; relay-safe tiers (tier-failover off keeps
a fully down best tier, on hands over to the next tier); every exchanger
down -> all-down (serve-all / servfail); TTL lowered to ttl-degraded while
degraded; glue of left-out exchangers gone; counters left-out / all-down /
renumbered / signed-limited; suspend / resume for MX and TXT; a signed zone
answering a DO query leaves nothing out.

Every answer is checked right after the command that changed the state
returned "ok": the issue promises the next query sees the change.
"""

import time

import dns.dnssec
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import pytest

from healthzone import W_ZONE, expect, glue, mail_zone, mx_names, reset, zone_mx
from knotharness import (T_A, T_MX, T_RRSIG, T_TXT, assert_shares, check_additional,
                         check_preference_rotation, winner_of)

N_STAT = 400


W_GLUE = {"a.w.test.": [(T_A, "192.0.2.11")], "b.w.test.": [(T_A, "192.0.2.12")],
          "c.w.test.": [(T_A, "192.0.2.13")]}

# Uses exchangers of another zone: the registry is server-wide.
EXT_ZONE = """
@ 300 MX 10 mx1.off.test.
@ 300 MX 10 mx3.off.test.
"""
W2_ZONE = """
@ 300 MX 10 a.w.test.
@ 300 MX 10 b.w.test.
"""

ZONES = {
    "off.test": mail_zone(),     # tier-failover off, ttl-max 120, ttl-degraded 60 (default)
    "on.test": mail_zone(),      # tier-failover on, ttl-degraded 30
    "sf.test": mail_zone(),      # all-down servfail, ttl-degraded 0 (no shortening)
    "ext.test": EXT_ZONE,
    "w.test": W_ZONE,
    "w2.test": W2_ZONE,
    "signed.test": mail_zone(),  # automatic signing
    "signoff.test": mail_zone(),  # automatic signing, sign: off
}
INSTANCES = {
    "off": {"ttl-max": "120"},
    "on": {"tier-failover": "on", "ttl-degraded": "30", "ttl-max": "120"},
    "sf": {"all-down": "servfail", "ttl-degraded": "0"},
    "w": {"weight": ["a.w.test. 1", "b.w.test. 1"]},
    "w2": {"weight": ["a.w.test. 1", "b.w.test. 9"]},
    "sig": {"ttl-max": "120"},
    "sigoff": {"ttl-max": "120", "sign": "off"},
}
ZMODS = {"off.test": "off", "on.test": "on", "sf.test": "sf", "ext.test": "off",
         "w.test": "w", "w2.test": "w2", "signed.test": "sig",
         "signoff.test": "sigoff"}


@pytest.fixture(scope="module")
def knot(module_so, mxpolicyctl, mknot_factory):
    return mknot_factory(ZONES, INSTANCES, ZMODS,
                         zone_extra={"signed.test": {"dnssec-signing": "on"},
                                     "signoff.test": {"dnssec-signing": "on"}})


@pytest.fixture(autouse=True)
def clean(knot):
    reset(knot)
    yield


def q_both(knot, name, rdtype="MX", **kw):
    """The same query over UDP and TCP."""
    return [knot.query(name, rdtype, **kw), knot.query(name, rdtype, tcp=True, **kw)]


def delta(before, after):
    return {k: after.get(k, 0) - before.get(k, 0) for k in set(before) | set(after)}


# ---------------------------------------------------------------------------


def test_baseline_unchanged(knot):
    """No operator state: equal weights, nothing to do; only ttl-max applies."""
    for z, ttl in (("off.test", 120), ("on.test", 120), ("sf.test", 300)):
        for r in q_both(knot, z):
            expect(r, zone_mx(z), ttl, glue(z))
    r = knot.query("ext.test")
    expect(r, [(10, "mx1.off.test."), (10, "mx3.off.test.")], 120, {})


def test_down_left_out_with_glue_then_auto(knot):
    """down (name without the trailing dot, any case) leaves the exchanger and
    its glue out of the very next answer, TTL lowered to ttl-degraded (60),
    counted in left-out and rewritten; auto brings it back."""
    z = "off.test"
    m1, m2, m3 = mx_names(z)
    base = knot.zone_stats(z)
    out = knot.ctl_ok("down", "MX1.Off.Test")
    assert m1 in out and "-> down" in out, out
    n = 0
    for _ in range(10):
        for r in q_both(knot, z):
            expect(r, [(10, m2), (20, m3)], 60, glue(z))
            assert not r.additional(owner=m1), "glue of the down exchanger kept:\n%s" % r
            n += 1
    d = delta(base, knot.zone_stats(z))
    assert d["left-out"] == n, "left-out counted %d for %d answers with one record left out" % (d["left-out"], n)
    assert d["rewritten"] == n, d
    assert d["all-down"] == 0, d

    knot.ctl_ok("auto", m1)
    for r in q_both(knot, z):
        expect(r, zone_mx(z), 120, glue(z))
    st = knot.ctl_json("status", m1)
    [e] = [e for e in st["exchangers"] if e["exchanger"] == m1]
    assert (e["operator"], e["effective"]) == ("auto", "up"), e


def test_up_is_not_degraded(knot):
    """up: operator state up, effective up; the answer is the healthy one."""
    z = "off.test"
    m1 = mx_names(z)[0]
    knot.ctl_ok("up", m1)  # with the trailing dot
    st = knot.ctl_json("status", m1)
    [e] = [e for e in st["exchangers"] if e["exchanger"] == m1]
    assert (e["operator"], e["effective"]) == ("up", "up"), e
    for r in q_both(knot, z):
        expect(r, zone_mx(z), 120, glue(z))
    # up after down: back at once
    knot.ctl_ok("down", m1)
    expect(knot.query(z), zone_mx(z)[1:], 60, glue(z))
    knot.ctl_ok("up", m1)
    expect(knot.query(z), zone_mx(z), 120, glue(z))


def test_down_is_server_wide(knot):
    """The same exchanger in another zone (out of that zone, no glue) is left
    out there too: one registry for every zone."""
    knot.ctl_ok("down", "mx1.off.test")
    expect(knot.query("ext.test"), [(10, "mx3.off.test.")], 60, {})
    expect(knot.query("off.test"), zone_mx("off.test")[1:], 60, glue("off.test"))
    # names of another zone that merely look alike are not affected
    expect(knot.query("on.test"), zone_mx("on.test"), 120, glue("on.test"))


def test_down_lower_tier(knot):
    """A down backup (worse tier) is left out: the best tier is intact."""
    z = "off.test"
    m1, m2, m3 = mx_names(z)
    knot.ctl_ok("down", m3)
    for r in q_both(knot, z):
        expect(r, [(10, m1), (10, m2)], 60, glue(z))


@pytest.mark.parametrize("z", ["off.test", "on.test"])
def test_down_one_of_tier(knot, z):
    """One of two best-tier exchangers down: left out with either tier-failover."""
    m1, m2, m3 = mx_names(z)
    knot.ctl_ok("down", m2)
    ttl = 60 if z == "off.test" else 30
    for r in q_both(knot, z):
        expect(r, [(10, m1), (20, m3)], ttl, glue(z))
        assert not r.additional(owner=m2)


def test_whole_tier_down_failover_off(knot):
    """tier-failover off: the whole best tier down is kept (a backup relay must
    never see itself as the best), TTL still degraded, nothing left out."""
    z = "off.test"
    m1, m2, m3 = mx_names(z)
    knot.ctl_ok("down", m1)
    knot.ctl_ok("down", m2)
    base = knot.zone_stats(z)
    for r in q_both(knot, z):
        expect(r, zone_mx(z), 60, glue(z))
    d = delta(base, knot.zone_stats(z))
    assert d["left-out"] == 0 and d["all-down"] == 0, d


def test_whole_tier_down_failover_on(knot):
    """tier-failover on: a fully down tier hands over to the next one."""
    z = "on.test"
    m1, m2, m3 = mx_names(z)
    knot.ctl_ok("down", m1)
    knot.ctl_ok("down", m2)
    base = knot.zone_stats(z)
    n = 0
    for _ in range(5):
        for r in q_both(knot, z):
            expect(r, [(20, m3)], 30, glue(z))
            n += 1
    d = delta(base, knot.zone_stats(z))
    assert d["left-out"] == 2 * n, d
    assert d["all-down"] == 0, d
    # and back
    knot.ctl_ok("auto", m1)
    expect(knot.query(z), [(10, m1), (20, m3)], 30, glue(z))


def test_drain(knot):
    """drain: after its tier mates, before the next tier; TTL degraded;
    counted as renumbered. A drained exchanger is alive for the relay rule."""
    z = "off.test"
    m1, m2, m3 = mx_names(z)
    knot.ctl_ok("drain", m1)
    base = knot.zone_stats(z)
    for r in q_both(knot, z):
        prefs = {e: p for p, e in r.mx()}
        assert set(prefs) == {m1, m2, m3}, r
        assert prefs[m2] == 10 and prefs[m3] == 20, r
        assert 10 < prefs[m1] < 20, "drained exchanger not last in its tier:\n%s" % r
        assert set(r.mx_ttls()) == {60}
        check_additional(r, glue(z))
    d = delta(base, knot.zone_stats(z))
    assert d["renumbered"] == 2 and d["left-out"] == 0, d

    # drain + down in one tier: the down one is left out (the drained one is alive)
    knot.ctl_ok("down", m2)
    for r in q_both(knot, z):
        expect(r, [(10, m1), (20, m3)], 60, glue(z))

    # the whole tier drained: both stay in the tier, before the backup
    knot.ctl_ok("drain", m2)
    for r in q_both(knot, z):
        expect(r, zone_mx(z), 60, glue(z), ordered=False)


def test_all_down_serve_all(knot):
    """Every exchanger down, all-down serve-all: every record served, TTL
    degraded, counted in all-down (nothing counted as left out)."""
    z = "off.test"
    for name in mx_names(z):
        knot.ctl_ok("down", name, "--force")
    base = knot.zone_stats(z)
    n = 0
    for _ in range(5):
        for r in q_both(knot, z):
            expect(r, zone_mx(z), 60, glue(z), ordered=False)
            n += 1
    d = delta(base, knot.zone_stats(z))
    assert d["all-down"] == n, d
    assert d["left-out"] == 0, d


def test_all_down_servfail(knot):
    """Every exchanger down, all-down servfail: SERVFAIL (never NODATA),
    counted; other types of the zone still answer; one up again -> answer."""
    z = "sf.test"
    m1, m2, m3 = mx_names(z)
    for name in mx_names(z):
        knot.ctl_ok("down", name, "--force")
    base = knot.zone_stats(z)
    for r in q_both(knot, z):
        assert r.rcode == dns.rcode.SERVFAIL, "expected SERVFAIL when all are down:\n%s" % r
        assert not r.mx(), r
    d = delta(base, knot.zone_stats(z))
    assert d["all-down"] == 2, d
    r = knot.query("_dmarc." + z, "TXT")
    assert r.rcode == dns.rcode.NOERROR and r.answer(T_TXT), r
    r = knot.query("mx1." + z, "A")
    assert r.rcode == dns.rcode.NOERROR and r.answer(T_A), r

    knot.ctl_ok("auto", m3)
    # tier-failover off: the fully down best tier is kept, mx3 alive: no all-down
    for r in q_both(knot, z):
        expect(r, zone_mx(z), 300, glue(z))


def test_ttl_degraded_settings(knot):
    """ttl-degraded applies to the whole degraded set (30 in on.test); 0 means
    do not shorten (sf.test keeps the zone's 300)."""
    knot.ctl_ok("down", "mx3.on.test")
    expect(knot.query("on.test"), zone_mx("on.test")[:2], 30, glue("on.test"))
    knot.ctl_ok("down", "mx3.sf.test")
    expect(knot.query("sf.test"), zone_mx("sf.test")[:2], 300, glue("sf.test"))
    knot.ctl_ok("drain", "mx1.sf.test")
    r = knot.query("sf.test")
    assert set(r.mx_ttls()) == {300}, r
    # a drain alone degrades too
    knot.ctl_ok("auto", "mx3.on.test")
    knot.ctl_ok("drain", "mx3.on.test")
    r = knot.query("on.test")
    assert set(r.mx_ttls()) == {30}, r


def test_weight_override(knot):
    """A runtime weight replaces the configured one (chi-square, alpha 0.001,
    df 1); in every zone using the exchanger; 'default' removes it."""
    zm = [(10, "a.w.test."), (10, "b.w.test."), (20, "c.w.test.")]
    # configured 1:1 -> nothing to rotate
    expect(knot.query("w.test"), zm, 300, W_GLUE)
    out = knot.ctl_ok("weight", "a.w.test", "4")
    assert "weight 4" in out, out
    wins = {"a.w.test.": 0, "b.w.test.": 0}
    for _ in range(N_STAT):
        r = knot.query("w.test")
        wt = check_preference_rotation(r.mx(), zm, {"a.w.test.": 4, "b.w.test.": 1})
        wins[wt[10]] += 1
    assert_shares(wins, {"a.w.test.": 4, "b.w.test.": 1}, "w.test with runtime weight a=4 (df=1)")

    # w2.test configures b=9; a runtime 0 for b replaces it there as well
    knot.ctl_ok("weight", "a.w.test", "default")
    knot.ctl_ok("weight", "b.w.test.", "0")
    for _ in range(50):
        assert winner_of(knot.query("w.test").mx()) == "a.w.test."
        assert winner_of(knot.query("w2.test").mx()) == "a.w.test."
    st = knot.ctl_json("status", "b.w.test")
    [e] = [e for e in st["exchangers"] if e["exchanger"] == "b.w.test."]
    assert e["weight"] == 0 and e["operator"] == "auto", e

    # default: w.test back to 1:1 (unchanged answer), w2.test back to its 1:9
    knot.ctl_ok("weight", "b.w.test", "default")
    r = knot.query("w.test")
    assert r.mx() == zm, r
    wins = {"a.w.test.": 0, "b.w.test.": 0}
    for _ in range(N_STAT):
        r = knot.query("w2.test")
        wt = check_preference_rotation(r.mx(), [(10, "a.w.test."), (10, "b.w.test.")],
                                       {"a.w.test.": 1, "b.w.test.": 9})
        wins[wt[10]] += 1
    assert_shares(wins, {"a.w.test.": 1, "b.w.test.": 9}, "w2.test configured 1:9 after 'default' (df=1)")


def test_weight_and_down_combined(knot):
    """A down exchanger stays out whatever its weight."""
    knot.ctl_ok("weight", "a.w.test", "65535")
    knot.ctl_ok("down", "a.w.test")
    for _ in range(20):
        r = knot.query("w.test")
        assert "a.w.test." not in [e for _, e in r.mx()], r
        assert sorted(r.mx()) == [(10, "b.w.test."), (20, "c.w.test.")], r


def test_next_query_sees_each_change(knot):
    """Many changes in a row: each answer right after "ok" follows it, over
    UDP and TCP (several knotd workers, each with its own cache)."""
    z = "off.test"
    m1 = mx_names(z)[0]
    for i in range(15):
        knot.ctl_ok("down", m1)
        for r in q_both(knot, z):
            assert r.mx() == zone_mx(z)[1:], "change %d (down) not seen:\n%s" % (i, r)
        knot.ctl_ok("auto", m1)
        for r in q_both(knot, z):
            assert r.mx() == zone_mx(z), "change %d (auto) not seen:\n%s" % (i, r)


def test_suspend_resume_mx_and_txt(knot):
    """suspend: every MX and TXT answer exactly as the zone has it (TTLs
    included, glue of a down exchanger too), nothing counted; resume: the
    policy again."""
    z = "off.test"
    m1 = mx_names(z)[0]
    knot.ctl_ok("down", m1)
    knot.ctl_ok("weight", "a.w.test", "4")
    r = knot.query("_dmarc." + z, "TXT")
    assert [rr.ttl for rr in r.answer(T_TXT)] == [120], r
    expect(knot.query(z), zone_mx(z)[1:], 60, glue(z))

    out = knot.ctl_ok("suspend", "--reason", "incident 42")
    assert "suspend" in out, out
    base = knot.zone_stats(z)
    bw = knot.zone_stats("w.test")
    for _ in range(5):
        for r in q_both(knot, z):
            expect(r, zone_mx(z), 300, glue(z))
            for rr in r.additional():
                assert rr.ttl == 300, "glue TTL changed while suspended:\n%s" % r
        r = knot.query("_dmarc." + z, "TXT")
        assert [rr.ttl for rr in r.answer(T_TXT)] == [3600], "TXT changed while suspended:\n%s" % r
        r = knot.query("w.test")
        assert r.mx() == [(10, "a.w.test."), (10, "b.w.test."), (20, "c.w.test.")], r
        r = knot.query("ext.test")
        expect(r, [(10, "mx1.off.test."), (10, "mx3.off.test.")], 300, {})
    d = delta(base, knot.zone_stats(z))
    assert all(v == 0 for v in d.values()), "counters moved while suspended: %r" % d
    assert all(v == 0 for v in delta(bw, knot.zone_stats("w.test")).values())
    st = knot.ctl_json("status")
    assert st["suspended"] is True, st

    knot.ctl_ok("resume")
    assert knot.ctl_json("status")["suspended"] is False
    log = knot.wait_log("resumed by uid 0")
    assert "suspended: answers pass unmodified by uid 0, reason: incident 42" in log, log
    expect(knot.query(z), zone_mx(z)[1:], 60, glue(z))
    r = knot.query("_dmarc." + z, "TXT")
    assert [rr.ttl for rr in r.answer(T_TXT)] == [120], r
    assert winner_of(knot.query("w.test").mx()) is not None


def test_suspend_with_all_down_servfail(knot):
    """Suspended: even an all-down servfail zone answers its records."""
    for name in mx_names("sf.test"):
        knot.ctl_ok("down", name, "--force")
    assert knot.query("sf.test").rcode == dns.rcode.SERVFAIL
    knot.ctl_ok("suspend")
    expect(knot.query("sf.test"), zone_mx("sf.test"), 300, glue("sf.test"))
    knot.ctl_ok("resume")
    assert knot.query("sf.test").rcode == dns.rcode.SERVFAIL


# --------------------------------------------------------------------------- signed


def zone_keys(knot, z):
    r = knot.query(z, "DNSKEY", want_dnssec=True)
    name = dns.name.from_text(z)
    rrset = r.msg.find_rrset(r.msg.answer, name, dns.rdataclass.IN, dns.rdatatype.DNSKEY)
    return {name: rrset}


@pytest.fixture(scope="module")
def signed_keys(knot):
    keys = zone_keys(knot, "signed.test")
    keys.update(zone_keys(knot, "signoff.test"))
    return keys


def validate_mx(r, keys, z="signed.test"):
    msg = r.msg
    name = dns.name.from_text(z)
    rrset = msg.find_rrset(msg.answer, name, dns.rdataclass.IN, dns.rdatatype.MX)
    rrsig = msg.find_rrset(msg.answer, name, dns.rdataclass.IN, dns.rdatatype.RRSIG, dns.rdatatype.MX)
    try:
        dns.dnssec.validate(rrset, rrsig, keys, now=time.time())
    except dns.dnssec.ValidationFailure as e:
        raise AssertionError("MX set does not validate (%s):\n%s" % (e, r))
    sig_ttls = {rr.ttl for rr in r.answer(T_RRSIG) if rr.data["covered"] == T_MX}
    assert sig_ttls == set(r.mx_ttls()), "RRSIG TTL %r != MX TTL %r\n%s" % (sig_ttls, r.mx_ttls(), r)
    assert {rr.data["orig_ttl"] for rr in r.answer(T_RRSIG) if rr.data["covered"] == T_MX} == {300}


def introduce(knot, z):
    """One DO answer hands the set to the signer; a state change then signs
    its variants before it answers ok (the signer takes the set within ms)."""
    knot.query(z, want_dnssec=True)
    time.sleep(0.1)


def test_signed_do_left_out_and_valid(knot, signed_keys):
    """Signed zone + DO: a down exchanger is left out as without DO, with a
    signature made for the new set (validates, TTL lowered, Original TTL
    kept); every such answer is a signed-variant cache hit, none limited."""
    z = "signed.test"
    m1, m2, m3 = mx_names(z)
    introduce(knot, z)
    knot.ctl_ok("down", m1)
    base = knot.zone_stats(z)
    n = 0
    for _ in range(5):
        for r in q_both(knot, z, want_dnssec=True):
            expect(r, [(10, m2), (20, m3)], 60, glue(z))
            validate_mx(r, signed_keys)
            n += 1
    d = delta(base, knot.zone_stats(z))
    assert d["signed-variant[cache-hit]"] == n, d
    assert d["signed-limited"] == 0 and d["left-out"] == n, d

    base = knot.zone_stats(z)
    for r in q_both(knot, z):
        expect(r, [(10, m2), (20, m3)], 60, glue(z))
    d = delta(base, knot.zone_stats(z))
    assert d["left-out"] == 2 and d["signed-limited"] == 0, d


def test_signed_do_drain_and_all_down(knot, signed_keys):
    """Signed + DO: drain renumbers as without DO (signed); all down
    (serve-all) serves the zone's set; both validate."""
    z = "signed.test"
    m1 = mx_names(z)[0]
    introduce(knot, z)
    knot.ctl_ok("drain", m1)
    plain = knot.query(z)
    base = knot.zone_stats(z)
    r = knot.query(z, want_dnssec=True)
    assert sorted(r.mx()) == sorted(plain.mx()) != sorted(zone_mx(z)), (r, plain)
    validate_mx(r, signed_keys)
    d = delta(base, knot.zone_stats(z))
    assert d["signed-limited"] == 0 and d["renumbered"] == 1, d
    assert d["signed-variant[cache-hit]"] == 1, d

    for name in mx_names(z):
        knot.ctl_ok("down", name, "--force")
    base = knot.zone_stats(z)
    r = knot.query(z, want_dnssec=True)
    assert sorted(r.mx()) == sorted(zone_mx(z)) and set(r.mx_ttls()) == {60}, r
    validate_mx(r, signed_keys)
    d = delta(base, knot.zone_stats(z))
    assert d["all-down"] == 1, d


def test_signed_sign_off_limited(knot, signed_keys):
    """sign: off: DO answers of a signed zone keep every record and the
    zone's preferences (only the TTL is lowered), counted in signed-limited;
    the set validates with the zone's own signature."""
    z = "signoff.test"
    m1, m2, m3 = mx_names(z)
    knot.ctl_ok("down", m1)
    base = knot.zone_stats(z)
    n = 0
    for _ in range(3):
        for r in q_both(knot, z, want_dnssec=True):
            assert sorted(r.mx()) == sorted(zone_mx(z)), "sign: off changed rdata:\n%s" % r
            assert set(r.mx_ttls()) == {60}, r
            validate_mx(r, signed_keys, z)
            n += 1
    d = delta(base, knot.zone_stats(z))
    assert d["signed-limited"] == n and d["left-out"] == 0, d
    assert d.get("signed-variant[cache-hit]", 0) == 0, d
    knot.ctl_ok("drain", m1)
    r = knot.query(z, want_dnssec=True)
    assert sorted(r.mx()) == sorted(zone_mx(z)), r
    validate_mx(r, signed_keys, z)
