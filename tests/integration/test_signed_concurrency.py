# Copyright (C) 2026 knot-mxpolicy authors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Signed zones under concurrency: many knotd workers answering DO queries
from several client threads while the operator flips exchanger states;
every MX answer's signature verifies against the zone's DNSKEY and the
answers follow the states (the module's signed variants are served, not
only the zone's set)."""

import threading
import time

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdatatype
import pytest

ZONE = """
@ 300 MX 10 mx1
@ 300 MX 10 mx2
@ 300 MX 10 mx3
@ 300 MX 20 backup
mx1 300 A 192.0.2.1
mx2 300 A 192.0.2.2
mx3 300 A 192.0.2.3
backup 300 A 192.0.2.20
*.w 300 MX 10 mx1
*.w 300 MX 10 mx2
"""
Z = "conc.test"
POLICY = """
policy:
  - id: repro
    algorithm: ecdsap256sha256
    reproducible-signing: on
"""


@pytest.fixture(scope="module")
def knot(module_so, mxpolicyctl, mknot_factory):
    return mknot_factory(
        {Z: ZONE},
        {"c": {"weight": ["mx1.%s. 50" % Z, "mx2.%s. 30" % Z, "mx3.%s. 20" % Z]}},
        {Z: "c"},
        server_extra={"udp-workers": 8, "tcp-workers": 4, "background-workers": 2},
        zone_extra={Z: {"dnssec-signing": "on", "dnssec-policy": "repro"}},
        extra_conf=POLICY)


def keys_of(knot):
    r = knot.query(Z, "DNSKEY", want_dnssec=True)
    name = dns.name.from_text(Z)
    return {name: r.msg.find_rrset(r.msg.answer, name, dns.rdataclass.IN, dns.rdatatype.DNSKEY)}


def verify(r, keys):
    """The MX set of the answer validates with its RRSIG; returns the set."""
    msg = r.msg
    qname = msg.question[0].name
    rrset = msg.find_rrset(msg.answer, qname, dns.rdataclass.IN, dns.rdatatype.MX)
    rrsig = msg.find_rrset(msg.answer, qname, dns.rdataclass.IN, dns.rdatatype.RRSIG,
                           dns.rdatatype.MX)
    dns.dnssec.validate(rrset, rrsig, keys, now=time.time())
    return frozenset((rr.preference, rr.exchange.to_text().lower()) for rr in rrset)


def test_concurrent_states_every_signature_verifies(knot):
    keys = keys_of(knot)
    names = ["mx1.%s." % Z, "mx2.%s." % Z, "mx3.%s." % Z]
    # Hand both sets (apex, wildcard) to the signer before the flipping starts.
    knot.query(Z, want_dnssec=True)
    knot.query("a.w.%s" % Z, want_dnssec=True)
    time.sleep(0.2)
    base = knot.zone_stats(Z)

    stop = threading.Event()
    failures, sets = [], set()
    counts = {"answers": 0}
    lock = threading.Lock()

    def client(idx):
        n = 0
        while not stop.is_set():
            q = Z if n % 3 else "c%d-%d.w.%s" % (idx, n, Z)
            try:
                r = knot.query(q, want_dnssec=True, tcp=(n % 5 == 0), timeout=5.0)
                s = verify(r, keys)
                with lock:
                    counts["answers"] += 1
                    sets.add(s)
            except Exception as e:  # every failure is reported with its answer
                with lock:
                    failures.append("%s: %s" % (q, e))
            n += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    flips = [("down", names[0]), ("drain", names[1]), ("auto", names[0]), ("down", names[2]),
             ("auto", names[1]), ("drain", names[0]), ("auto", names[2]), ("auto", names[0])]
    try:
        for _ in range(3):
            for op, name in flips:
                knot.ctl_ok(op, name)
                time.sleep(0.15)
    finally:
        stop.set()
        for t in threads:
            t.join()

    assert not failures, "%d of %d answers failed:\n%s" % (
        len(failures), counts["answers"] + len(failures), "\n".join(failures[:10]))
    print("answers %d, distinct sets %d" % (counts["answers"], len(sets)))
    assert counts["answers"] > 300, counts
    d = {k: v - base.get(k, 0) for k, v in knot.zone_stats(Z).items()}
    # The module's variants were served: sets with a record left out or drained.
    assert d.get("left-out", 0) > 0 and d.get("signed-variant[cache-hit]", 0) > 100, d
    assert any(len(s) == 3 for s in sets) and any(len(s) == 4 for s in sets), sets
    # Variants of each new state were signed before the state was published:
    # misses are at most the first answers of a set after knotd's own events.
    assert d.get("signed-variant[cache-miss]", 0) <= 4, d
    print("counters", d)
    signing = knot.ctl_json("stats")["signing"]
    assert signing["signed"] >= len(sets) - 4 and signing["cached"] > 0, signing
    assert all(v == 0 for k, v in signing.items() if k.startswith("failed_")), signing
    assert knot.alive()
