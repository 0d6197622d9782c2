# Copyright (C) 2026 knot-mxpolicy authors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Signed zones (knotd automatic signing, the module loaded) validate through
a real validating resolver (unbound), and the resolver harness is proven:
validation is really on (a wrong trust anchor and a broken MX set are
bogus), every query reaches knotd, and knotd's fast re-signing and ZSK
rollover policies do what resolver.py says (slow test)."""

import time

import dns.dnssec
import dns.flags
import dns.rcode
import dns.rdatatype
import pytest

import resolver as rs
from knotharness import check_preference_rotation, fqdn, winner_of

EXCH = ("mx1", "mx2", "mx3")


def zone_body(z):
    return """
@ MX 10 mx1
@ MX 10 mx2
@ MX 10 mx3
@ MX 20 backup
mx1 A 192.0.2.1
mx2 A 192.0.2.2
mx3 AAAA 2001:db8::3
backup A 192.0.2.20
_dmarc 3600 TXT "v=DMARC1; p=none"
"""


def zone_mx(z):
    z = fqdn(z)
    return sorted([(10, "mx1." + z), (10, "mx2." + z), (10, "mx3." + z), (20, "backup." + z)])


# zone -> policy keywords (resolver.policy_entry)
VARIANTS = {
    "ecdsa-nsec.test": dict(algorithm="ecdsap256sha256", nsec3=False),
    "ecdsa-nsec3.test": dict(algorithm="ecdsap256sha256", nsec3=True),
    "rsa-nsec.test": dict(algorithm="rsasha256", nsec3=False, ksk_size=2048, zsk_size=2048),
    "rsa-nsec3.test": dict(algorithm="rsasha256", nsec3=True, ksk_size=2048, zsk_size=2048),
    "ed25519-nsec.test": dict(algorithm="ed25519", nsec3=False),
    "ed25519-nsec3.test": dict(algorithm="ed25519", nsec3=True),
    "csk-nsec3.test": dict(algorithm="ecdsap256sha256", nsec3=True, single_type_signing=True),
}
ALG_NUMBER = {"ecdsap256sha256": 13, "rsasha256": 8, "ed25519": 15}
CHANGE = "change.test"  # changed by test_changes_visible_at_once only
ZONES = list(VARIANTS) + [CHANGE]


def policy_id(z):
    return "p-" + z.split(".")[0]


# Weights so that the module would renumber (it does without DO); the rest
# of the instance is default.  All exchangers up.
WEIGHTS = ["%s.%s. %d" % (e, z, w) for z in ZONES for e, w in zip(EXCH, (60, 30, 10))]


@pytest.fixture(scope="module")
def knot(module_so, mknot_factory):
    policies = rs.policy_section(*[rs.policy_entry(policy_id(z), **VARIANTS.get(z, {})) for z in ZONES])
    return mknot_factory({z: zone_body(z) for z in ZONES}, {"w": {"weight": WEIGHTS}},
                         {z: ["mod-mxpolicy/w", rs.STATS_REF] for z in ZONES},
                         extra_conf=rs.STATS_CONF + policies,
                         zone_extra={z: rs.signing(policy_id(z)) for z in ZONES})


@pytest.fixture(scope="module")
def anchors(knot):
    return {z: rs.ksk_ds(knot, z) for z in ZONES}


@pytest.fixture(scope="module")
def ub(knot, anchors, munbound_factory):
    """The validating resolver, default settings (max_ttl=0)."""
    return munbound_factory({z: (knot.port, anchors[z]) for z in ZONES})


def test_signing_policies_applied(knot):
    """The policy section comes before the zones and each zone is signed as
    its policy says (algorithm, KSK+ZSK or CSK, NSEC or NSEC3)."""
    conf = knot.conf.read_text()
    assert conf.index("\npolicy:") < conf.index("\nzone:"), conf
    rc, out = knot.knotc("conf-check")
    assert rc == 0, out
    for z, v in VARIANTS.items():
        keys = rs.zone_dnskeys(knot, z)
        assert {k.algorithm for k in keys} == {ALG_NUMBER[v["algorithm"]]}, (z, keys)
        flags = sorted(k.flags for k in keys)
        assert flags == ([257] if v.get("single_type_signing") else [256, 257]), (z, flags)
        r = knot.query(z, "NSEC3PARAM", want_dnssec=True)
        assert bool(r.answer(51)) == v["nsec3"], "NSEC3PARAM presence wrong for %s:\n%s" % (z, r)


def test_module_renumbers_without_do(knot):
    """Sanity: the module is loaded and would change these answers (non-DO)."""
    z = "ecdsa-nsec.test"
    renumbered = sum(1 for _ in range(20) if sorted(knot.query(z).mx()) != zone_mx(z))
    assert renumbered > 0, "the module never renumbered a non-DO answer"


def weights_of(z):
    return {"%s.%s" % (e, fqdn(z)): w for e, w in zip(EXCH, (60, 30, 10))}


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize("zone", list(VARIANTS))
def test_secure_mx(knot, ub, zone, tcp):
    """MX answers of every signed zone are secure (AD) through unbound and
    follow the policy with DO too (weighted winner renumbered, as without
    DO), each answered by knotd through the module with a signature made
    for the renumbered set (signed-variant cache hit)."""
    n = 5
    knot.query(zone, want_dnssec=True)  # Hands the set to the signer.
    time.sleep(0.3)
    s0, c0 = knot.zone_stats(zone), rs.qtype_counts(knot, zone)
    start = ub.log_size()
    for _ in range(n):
        m = ub.query(zone, tcp=tcp)
        assert ub.is_secure(m), "MX %s not secure:\n%s" % (zone, ub.explain(m, start))
        assert not m.flags & dns.flags.TC, m
        check_preference_rotation(rs.mx_set(m, zone), zone_mx(zone), weights_of(zone))
        assert rs.sig_times(m, zone), "no RRSIG MX in the answer:\n%s" % m
    s1, c1 = knot.zone_stats(zone), rs.qtype_counts(knot, zone)
    # >= n: nothing came from a cache (a retransmission by unbound would be
    # one more; see infra-cache-min-rtt in resolver.py).
    asked = c1["MX"] - c0["MX"]
    assert n <= asked <= n + 1, "knotd answered %d MX queries for %d queries to unbound" % (asked, n)
    # With RSA-2048 the last glue RRSIGs do not fit knotd's 1232-byte UDP
    # limit and knotd skips the ADDITIONAL stage; the module then patches
    # preferences and signatures in place at the END stage, all the same.
    assert s1["signed-variant[cache-hit]"] - s0["signed-variant[cache-hit]"] == asked, (s0, s1)
    assert s1["renumbered"] - s0["renumbered"] == asked, (s0, s1)
    assert s1["signed-limited"] == s0["signed-limited"], (s0, s1)
    assert not ub.bogus_reason(start)


@pytest.mark.parametrize("zone", list(VARIANTS))
def test_secure_denial(ub, zone):
    """NXDOMAIN and NODATA are proven (AD) with NSEC or NSEC3 as configured."""
    want = dns.rdatatype.NSEC3 if VARIANTS[zone]["nsec3"] else dns.rdatatype.NSEC
    for qname, rcode in (("nonexistent." + zone, dns.rcode.NXDOMAIN), ("mx1." + zone, dns.rcode.NOERROR)):
        m = ub.query(qname, "MX")
        assert m.rcode() == rcode and m.flags & dns.flags.AD, ub.explain(m)
        assert not m.answer, m
        types = {rr.rdtype for rr in m.authority}
        assert want in types and dns.rdatatype.SOA in types, m


def test_every_query_reaches_knotd(knot, ub):
    """No answer comes from unbound's cache: a burst of 40 queries is 40
    queries at knotd, and the DNSKEY set is fetched again in every new
    second (cache-max-ttl 0)."""
    z = "ecdsa-nsec.test"
    c0 = rs.qtype_counts(knot, z)
    for i in range(40):
        assert ub.is_secure(ub.query(z, tcp=(i % 3 == 0)))
    c1 = rs.qtype_counts(knot, z)
    assert 40 <= c1["MX"] - c0["MX"] <= 41, (c0["MX"], c1["MX"])  # +1: one retransmission
    for _ in range(4):
        time.sleep(1.1)
        assert ub.is_secure(ub.query(z))
    c2 = rs.qtype_counts(knot, z)
    assert 4 <= c2["MX"] - c1["MX"] <= 5
    assert 4 <= c2["DNSKEY"] - c1["DNSKEY"] <= 5, "DNSKEY not re-fetched once per query >1 s apart: %d" \
        % (c2["DNSKEY"] - c1["DNSKEY"])


def test_weighted_winner_passes_through(ub):
    """Each answer is knotd's own: the exchanger the module made the best
    preference of a DO answer (weighted, random) reaches the client."""
    z = "ecdsa-nsec.test"
    winners = {}
    for _ in range(40):
        m = ub.query(z)
        assert ub.is_secure(m), ub.explain(m)
        w = winner_of(rs.mx_set(m, z))
        winners[w] = winners.get(w, 0) + 1
    assert len(winners) >= 2, "always the same winner through unbound: %r" % winners
    assert set(winners) <= {"%s.%s" % (e, fqdn(z)) for e in EXCH}, winners


def test_changes_visible_at_once(knot, ub):
    """A zone change (re-signed by knotd) is seen and validated by the very
    next query; the earlier NXDOMAIN of the new name is not remembered."""
    z = CHANGE
    m = ub.query("new." + z, "A")
    assert m.rcode() == dns.rcode.NXDOMAIN and m.flags & dns.flags.AD, ub.explain(m)
    assert rs.mx_set(ub.query(z), z) == zone_mx(z)
    knot.zone_reload(z, zone_body(z) + "@ MX 30 new\nnew A 192.0.2.30\n")
    m = ub.query(z)
    assert ub.is_secure(m), ub.explain(m)
    assert rs.mx_set(m, z) == sorted(zone_mx(z) + [(30, "new." + fqdn(z))]), m
    m = ub.query("new." + z, "A")
    assert ub.is_secure(m) and [r.address for r in m.answer[0]] == ["192.0.2.30"], ub.explain(m)


def test_ttls_passed_through_and_key_cache(knot, anchors, unbound_factory):
    """max_ttl=None: clients see knotd's TTLs, every query still reaches
    knotd, the DNSKEY set is cached (for its TTL) and flush() drops it."""
    z = "ed25519-nsec.test"
    u = unbound_factory({z: (knot.port, anchors[z])}, max_ttl=None)
    direct = knot.query(z, "MX", want_dnssec=True)
    want = {(rr.rtype, rr.ttl) for rr in direct.rrs if rr.section == 0}
    c0 = rs.qtype_counts(knot, z)
    for _ in range(3):
        m = u.query(z)
        assert u.is_secure(m), u.explain(m)
        assert {(rr.rdtype, rr.ttl) for rr in m.answer} == want, (want, m)
        time.sleep(1.1)
    c1 = rs.qtype_counts(knot, z)
    assert 3 <= c1["MX"] - c0["MX"] <= 4
    # 1 (+1 retransmission at most) instead of 3: the key set was cached.
    assert 1 <= c1["DNSKEY"] - c0["DNSKEY"] <= 2, "DNSKEY fetched %d times" % (c1["DNSKEY"] - c0["DNSKEY"])
    u.flush()
    assert u.is_secure(u.query(z))
    assert rs.qtype_counts(knot, z)["DNSKEY"] - c1["DNSKEY"] >= 1, "flush() did not drop the key cache"


@pytest.fixture(scope="module")
def wrong_ub(knot, munbound_factory):
    """A resolver whose trust anchors are the DS of unrelated fresh keys (of
    each zone's own algorithm)."""
    return munbound_factory({z: (knot.port, rs.unrelated_ds(z, v["algorithm"])) for z, v in VARIANTS.items()})


@pytest.mark.parametrize("zone", list(VARIANTS))
def test_wrong_trust_anchor_is_bogus(knot, wrong_ub, zone):
    """Validation is on: with a DS matching none of the zone's keys the very
    same answers are SERVFAIL, with the reason in unbound's log and an EDE."""
    c0 = rs.qtype_counts(knot, zone)
    start = wrong_ub.log_size()
    for tcp in (False, True):
        m = wrong_ub.query(zone, tcp=tcp)
        assert m.rcode() == dns.rcode.SERVFAIL and not m.flags & dns.flags.AD, wrong_ub.explain(m, start)
        assert not m.answer, m
        codes = {c for c, _ in wrong_ub.ede(m)}
        assert codes & {rs.EDE_DNSSEC_BOGUS, rs.EDE_DNSKEY_MISSING}, wrong_ub.explain(m, start)
    reasons = wrong_ub.bogus_reason(start, qname=zone)
    assert any("validation failure" in l for l in reasons), wrong_ub.log_tail()
    # The DS has the zone's own algorithm: no key of the zone matches it.
    alg = dns.dnssec.algorithm_to_text(ALG_NUMBER[VARIANTS[zone]["algorithm"]])
    assert any("no keys have a DS with algorithm %s" % alg in l for l in reasons), reasons
    assert rs.qtype_counts(knot, zone)["DNSKEY"] > c0["DNSKEY"], \
        "unbound never fetched the DNSKEY set: the failure is not a validation failure"


def test_trust_anchor_refresh(knot, anchors, unbound_factory):
    """set_anchors() + restart() replaces a zone's trust anchor."""
    z = "ecdsa-nsec3.test"
    u = unbound_factory({z: (knot.port, rs.unrelated_ds(z))})
    assert u.query(z).rcode() == dns.rcode.SERVFAIL
    u.set_anchors(z, rs.ksk_dnskeys(knot, z))  # the KSK itself as the anchor this time
    u.restart()
    m = u.query(z)
    assert u.is_secure(m), u.explain(m)


@pytest.mark.parametrize("zone", ["ecdsa-nsec.test", "rsa-nsec3.test", "ed25519-nsec.test"])
def test_broken_mx_set_is_bogus(knot, anchors, knot_factory, unbound_factory, zone):
    """A copy of the signed zone served by a knotd without keys validates;
    the same copy with one MX record removed (RRSIG MX unchanged) gives a
    bogus MX answer, while the rest of that zone still validates."""
    lines = rs.zone_dump(knot, zone)
    owner = fqdn(zone)
    victim = [l for l in lines if l.split()[0] == owner and l.split()[2] == "MX"
              and l.split()[-1] == "mx3." + owner]
    assert len(victim) == 1, lines
    copies = {"intact": lines, "broken": [l for l in lines if l != victim[0]]}
    for what, text in copies.items():
        static = knot_factory({zone: "\n".join(text) + "\n"}, with_module=False)
        direct = static.query(zone, "MX", want_dnssec=True)
        assert len(direct.mx()) == (4 if what == "intact" else 3) and direct.section(0, 46), direct
        u = unbound_factory({zone: (static.port, anchors[zone])})
        for qname, rdtype in ((zone, "SOA"), ("mx1." + zone, "A"), (zone, "DNSKEY")):
            m = u.query(qname, rdtype)
            assert u.is_secure(m), "%s copy: %s %s\n%s" % (what, qname, rdtype, u.explain(m))
        start = u.log_size()
        m = u.query(zone, "MX")
        if what == "intact":
            assert u.is_secure(m) and rs.mx_set(m, zone) == zone_mx(zone), u.explain(m)
            continue
        assert m.rcode() == dns.rcode.SERVFAIL and not m.flags & dns.flags.AD, u.explain(m, start)
        assert rs.EDE_DNSSEC_BOGUS in {c for c, _ in u.ede(m)}, u.explain(m, start)
        reasons = u.bogus_reason(start, qname=zone)
        assert any("validation failure" in l and "MX" in l for l in reasons), u.log_tail()


# --------------------------------------------------------------------------
# Slow: knotd re-signing and ZSK rollover, observed through the resolver
# --------------------------------------------------------------------------

RESIGN = "resign.test"
ROLL = "roll.test"
RESIGN_PERIOD = 30
ROLL_KW = dict(lifetime=30, propagation_delay=1, ttl=5)
OBSERVE = 50  # seconds: one re-sign (30 s) and one full rollover (30/36/42 s)


@pytest.mark.slow
def test_slow_resign_and_zsk_rollover_validate(module_so, knot_factory, unbound_factory):
    """fast_resign(30): the MX RRSIG is replaced about every 30 s; fast_zsk_rollover(30, 1, 5):
    a new ZSK is published, takes over the signatures, and the old one
    leaves, all within ~45 s, with no reload.  Every answer through
    unbound (with and without DNSKEY caching) stays secure all along."""
    body = "@ MX 10 mx1\n@ MX 10 mx2\n@ MX 20 mx3\nmx1 A 192.0.2.1\nmx2 A 192.0.2.2\n"
    policies = rs.policy_section(
        rs.policy_entry("resign", **rs.fast_resign(RESIGN_PERIOD)),
        rs.policy_entry("roll", **rs.fast_zsk_rollover(**ROLL_KW)))
    weights = ["mx1.%s. 60" % z for z in (RESIGN, ROLL)] + ["mx2.%s. 40" % z for z in (RESIGN, ROLL)]
    k = knot_factory({RESIGN: rs.short_ttl_zone(body, 10), ROLL: rs.short_ttl_zone(body, ROLL_KW["ttl"])},
                     {"w": {"weight": weights}}, {RESIGN: "w", ROLL: "w"}, extra_conf=policies,
                     zone_extra={RESIGN: rs.signing("resign"), ROLL: rs.signing("roll")})
    t0 = time.monotonic()
    stubs = {z: (k.port, rs.ksk_ds(k, z)) for z in (RESIGN, ROLL)}
    resolvers = {"max_ttl=0": unbound_factory(stubs), "max_ttl=None": unbound_factory(stubs, max_ttl=None)}
    sigs = {RESIGN: [], ROLL: []}      # (time, (tag, inception, expiration)) on change
    dnskeys = []                       # (time, ZSK tags) on change
    n = 0
    while time.monotonic() - t0 < OBSERVE:
        now = time.monotonic() - t0
        for z in (RESIGN, ROLL):
            for name, u in resolvers.items():
                m = u.query(z)
                n += 1
                assert u.is_secure(m), "%s at %.1f s via %s:\n%s" % (z, now, name, u.explain(m))
                st = rs.sig_times(m, z)
                assert len(st) == 1, m
                if not sigs[z] or sigs[z][-1][1] != st[0]:
                    sigs[z].append((now, st[0]))
        zsks = tuple(rs.key_tags(rs.zone_dnskeys(k, ROLL), 256))
        if not dnskeys or dnskeys[-1][1] != zsks:
            dnskeys.append((now, zsks))
        time.sleep(0.5)

    report = ["%s: MX RRSIG (tag, inception, expiration) at %s" % (z, [(round(t, 1), s) for t, s in v])
              for z, v in sigs.items()]
    report.append("%s: ZSK tags at %s" % (ROLL, [(round(t, 1), s) for t, s in dnskeys]))
    print("\n".join(report))
    text = "\n".join(report)

    # Re-signing: new inception and expiration, same key, ~RESIGN_PERIOD apart.
    rsg = sigs[RESIGN]
    assert len(rsg) >= 2, text
    assert len({s[0] for _, s in rsg}) == 1, text
    for (t1, s1), (t2, s2) in zip(rsg, rsg[1:]):
        assert s2[1] > s1[1] and s2[2] > s1[2], text
        assert abs((s2[1] - s1[1]) - RESIGN_PERIOD) <= 2, text
    assert 0 < rsg[1][0] <= RESIGN_PERIOD + 3, text
    life = rsg[0][1][2] - rsg[0][1][1]  # expiration - inception: lifetime + 90 min back-dating
    assert life == RESIGN_PERIOD + 10 + 5400, text

    # ZSK rollover: one ZSK -> two (new one published) -> signatures by the
    # new one -> the old one gone.
    first = dnskeys[0][1]
    assert len(first) == 1, text
    assert any(len(tags) == 2 for _, tags in dnskeys), text
    old = first[0]
    rolled = [s for _, s in sigs[ROLL] if s[0] != old]
    assert rolled, text
    new = rolled[0][0]
    assert dnskeys[-1][1] == (new,) or (new in dnskeys[-1][1] and old not in dnskeys[-1][1]), text
    t_pub = next(t for t, tags in dnskeys if new in tags)
    t_sig = next(t for t, s in sigs[ROLL] if s[0] == new)
    t_gone = next(t for t, tags in dnskeys if new in tags and old not in tags)
    assert t_pub <= ROLL_KW["lifetime"] + 3, text
    assert t_pub + ROLL_KW["propagation_delay"] + ROLL_KW["ttl"] - 1 <= t_sig, text
    assert t_sig < t_gone, text
    print("%d answers, all secure; rollover: published %.1f s, signing %.1f s, old gone %.1f s"
          % (n, t_pub, t_sig, t_gone))
