# Copyright (C) 2026 knot-mxpolicy authors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The mail zone the health and control-socket tests share: two exchangers
at preference 10, one at 20, with their glue; the check of an answer
against an expected MX set, TTL and glue; and the reset to no operator
state between tests that share one knotd."""

import dns.rcode

from knotharness import T_A, T_AAAA, check_additional


def mail_zone(ttl=300):
    return """
@ {t} MX 10 mx1
@ {t} MX 10 mx2
@ {t} MX 20 mx3
mx1 {t} A 192.0.2.1
mx2 {t} A 192.0.2.2
mx2 {t} AAAA 2001:db8::2
mx3 {t} A 192.0.2.3
_dmarc 3600 TXT "v=DMARC1; p=none"
""".format(t=ttl)


W_ZONE = """
@ 300 MX 10 a
@ 300 MX 10 b
@ 300 MX 20 c
a 300 A 192.0.2.11
b 300 A 192.0.2.12
c 300 A 192.0.2.13
"""


def mx_names(z):
    return ["mx1.%s." % z, "mx2.%s." % z, "mx3.%s." % z]


def zone_mx(z):
    m1, m2, m3 = mx_names(z)
    return [(10, m1), (10, m2), (20, m3)]


def glue(z):
    m1, m2, m3 = mx_names(z)
    return {m1: [(T_A, "192.0.2.1")], m2: [(T_A, "192.0.2.2"), (T_AAAA, "2001:db8::2")],
            m3: [(T_A, "192.0.2.3")]}


def expect(r, mx, ttl, glue_map, ordered=True):
    """The answer holds exactly mx (wire order if ordered), all with TTL ttl,
    and exactly the glue of the exchangers it holds."""
    assert r.rcode == dns.rcode.NOERROR, "rcode %s\n%s" % (dns.rcode.to_text(r.rcode), r)
    got = r.mx() if ordered else sorted(r.mx())
    want = mx if ordered else sorted(mx)
    assert got == want, "MX answer %r, expected %r\n%s" % (r.mx(), mx, r)
    assert set(r.mx_ttls()) == {ttl}, "MX TTLs %r, expected %d\n%s" % (r.mx_ttls(), ttl, r)
    check_additional(r, glue_map)


def reset(knot):
    """Back to no operator state at all (tests share one knotd)."""
    st = knot.ctl_json("status")
    if st["suspended"]:
        knot.ctl_ok("resume")
    for e in st["exchangers"]:
        if e["operator"] != "auto":
            knot.ctl_ok("auto", e["exchanger"])
        if e["weight"] is not None:
            knot.ctl_ok("weight", e["exchanger"], "default")
    st = knot.ctl_json("status")
    assert not st["suspended"]
    assert all(e["operator"] == "auto" and e["weight"] is None for e in st["exchangers"]), st
