# Copyright (C) 2026 knot-mxpolicy authors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Long run of signed zones with suppression active, through validating
unbound: one zone re-signed by knotd every 30 s (RRSIGs valid for 40 s),
served for more than three signature lifetimes; one zone whose ZSK knotd
rolls over mid-run. No reload. Every answer stays secure; the down
exchanger stays out of the answers except for the first answer after each
of knotd's re-signings (served with the zone's set while the signer signs
the new variants)."""

import time

import pytest

import resolver as rs
from knotharness import fqdn

RESIGN = "lr-resign.test"
ROLL = "lr-roll.test"
RESIGN_PERIOD = 30
ROLL_KW = dict(lifetime=30, propagation_delay=1, ttl=5)
RUN = 130  # seconds: > 3 RRSIG lifetimes (40 s) and a whole ZSK rollover

BODY = """
@ {t} MX 10 mx1
@ {t} MX 10 mx2
@ {t} MX 10 mx3
@ {t} MX 20 backup
mx1 {t} A 192.0.2.1
mx2 {t} A 192.0.2.2
mx3 {t} A 192.0.2.3
backup {t} A 192.0.2.20
"""


@pytest.mark.slow
def test_suppression_validates_across_resigning_and_zsk_rollover(module_so, mxpolicyctl,
                                                                 knot_factory, unbound_factory):
    zones = (RESIGN, ROLL)
    policies = rs.policy_section(
        rs.policy_entry("resign", **rs.fast_resign(RESIGN_PERIOD)),
        rs.policy_entry("roll", **rs.fast_zsk_rollover(**ROLL_KW)))
    weights = ["mx%d.%s %d" % (i, fqdn(z), w) for z in zones for i, w in ((1, 50), (2, 30), (3, 20))]
    # TTLs within the policies' zone-max-ttl, as knotd's timing assumes.
    k = knot_factory({RESIGN: rs.short_ttl_zone(BODY.format(t=10), 10),
                      ROLL: rs.short_ttl_zone(BODY.format(t=ROLL_KW["ttl"]), ROLL_KW["ttl"])},
                     {"w": {"weight": weights}}, {RESIGN: "w", ROLL: "w"}, extra_conf=policies,
                     zone_extra={RESIGN: rs.signing("resign"), ROLL: rs.signing("roll")})
    ub = unbound_factory({z: (k.port, rs.ksk_ds(k, z)) for z in zones})
    down = {z: "mx1.%s" % fqdn(z) for z in zones}
    for z in zones:
        k.query(z, want_dnssec=True)  # Hands the sets to the signer.
    time.sleep(0.3)
    for z in zones:
        k.ctl_ok("down", down[z])
    base = {z: k.zone_stats(z) for z in zones}

    t0 = time.monotonic()
    sig_changes = {z: [] for z in zones}   # (time, (tag, inception, expiration))
    served_down = {z: [] for z in zones}   # times the down exchanger was in an answer
    zsks = []
    answers = 0
    while time.monotonic() - t0 < RUN:
        now = time.monotonic() - t0
        for z in zones:
            m = ub.query(z, tcp=(answers % 4 == 3))
            answers += 1
            assert ub.is_secure(m), "%s at %.1f s not secure:\n%s" % (z, now, ub.explain(m))
            st = rs.sig_times(m, z)
            if not sig_changes[z] or sig_changes[z][-1][1] != st[0]:
                sig_changes[z].append((now, st[0]))
            exchangers = {e for _, e in rs.mx_set(m, z)}
            assert len(exchangers) >= 3, m
            if down[z] in exchangers:
                served_down[z].append(now)
        tags = tuple(rs.key_tags(rs.zone_dnskeys(k, ROLL), 256))
        if not zsks or zsks[-1][1] != tags:
            zsks.append((now, tags))
        time.sleep(0.25)

    report = "\n".join(["%s: RRSIGs %s; down served at %s" % (
        z, [(round(t, 1), s) for t, s in sig_changes[z]], [round(t, 1) for t in served_down[z]])
        for z in zones] + ["ZSKs %s" % [(round(t, 1), s) for t, s in zsks]])
    print("%d answers, all secure\n%s" % (answers, report))

    # knotd did re-sign and roll while we watched, with no reload.
    assert len(sig_changes[RESIGN]) >= 4, report   # > 3 lifetimes
    assert len({s[0] for _, s in sig_changes[ROLL]}) >= 2, report  # signed by a new ZSK
    assert any(len(t) == 2 for _, t in zsks), report
    # The down exchanger: only in the first answer(s) right after a change
    # of the zone's signature (at most two per change, each within 2 s).
    for z in zones:
        changes = [t for t, _ in sig_changes[z][1:]]
        assert len(served_down[z]) <= 2 * len(changes) + 1, report
        for t in served_down[z]:
            assert t < 2 or any(0 <= t - c <= 2 for c in changes), \
                "%s: down exchanger served at %.1f s, not right after a re-signing\n%s" % (z, t, report)
        d = {key: v - base[z].get(key, 0) for key, v in k.zone_stats(z).items()}
        assert d["signed-variant[cache-hit]"] >= 0.9 * (answers / 2), (z, d)
        assert d["signed-variant[fallback-expiring]"] == 0, (z, d)
    assert "reload" not in k.logfile.read_text().lower()


def test_expiring_signature_falls_back(module_so, mxpolicyctl, knot_factory):
    """A zone whose MX TTL (300 s) outlives knotd's signatures (40 s): a
    variant would be cached by resolvers beyond its signature, so DO
    answers keep the zone's set (validating), counted as fallback-expiring
    and logged once; answers without DO follow the policy."""
    z = "lr-expiring.test"
    policies = rs.policy_section(rs.policy_entry("resign", **rs.fast_resign(RESIGN_PERIOD)))
    k = knot_factory({z: rs.short_ttl_zone(BODY.format(t=300), 10)},
                     {"w": {"weight": ["mx1.%s 50" % fqdn(z), "mx2.%s 30" % fqdn(z)]}}, {z: "w"},
                     extra_conf=policies, zone_extra={z: rs.signing("resign")})
    k.query(z, want_dnssec=True)
    time.sleep(0.3)
    k.ctl_ok("down", "mx1.%s" % fqdn(z))
    base = k.zone_stats(z)
    for i in range(10):
        r = k.query(z, want_dnssec=True, tcp=(i % 2 == 0))
        assert "mx1.%s" % fqdn(z) in {e for _, e in r.mx()}, r
    d = {key: v - base.get(key, 0) for key, v in k.zone_stats(z).items()}
    assert d["signed-variant[fallback-expiring]"] == 10 and d["signed-limited"] == 10, d
    assert "mx1.%s" % fqdn(z) not in {e for _, e in k.query(z).mx()}
    assert k.logfile.read_text().count("cannot sign changed MX sets (expiring") == 1
