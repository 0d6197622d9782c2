# Copyright (C) 2026 knot-mxpolicy authors
# SPDX-License-Identifier: GPL-3.0-or-later
"""TTL policy: MX set clamp, additional A/AAAA never outlive the MX set,
email TXT classes clamped per `txt:`."""

import pytest

from knotharness import T_A, T_AAAA, T_TXT, check_additional, rr_view

MX_ZONE = """
@ 300 MX 10 mx1
@ 300 MX 10 mx2
short 60 MX 10 mx1
big 7200 MX 10 mx1
long 86400 MX 10 mx1
long 86400 MX 10 mx2
nullmx 300 MX 0 .
mx1 3600 A 192.0.2.1
mx2 30 A 192.0.2.2
mx2 3600 AAAA 2001:db8::2
"""

TXT_ZONE = """
@ 3600 TXT "v=spf1 mx -all"
@ 3600 MX 10 mx1
mx1 3600 A 192.0.2.1
_dmarc 3600 TXT "v=DMARC1; p=reject"
_dmarc.sub 3600 TXT "v=DMARC1; p=none"
sel._domainkey 10 TXT "v=DKIM1; k=rsa; p=MIGf"
a.b._domainkey 3600 TXT "v=DKIM1; p="
_mta-sts 3600 TXT "v=STSv1; id=1"
_smtp._tls 3600 TXT "v=TLSRPTv1; rua=mailto:r@example.org"
default._bimi 3600 TXT "v=BIMI1; l=https://example.org/l.svg"
spfsub 3600 TXT "v=spf1 -all"
info 3600 TXT "hello world"
info2 10 TXT "just text"
"""

# owner -> (zone TTL, email class?)
TXT_CASES = {
    "": (3600, True), "_dmarc.": (3600, True), "_dmarc.sub.": (3600, True),
    "sel._domainkey.": (10, True), "a.b._domainkey.": (3600, True), "_mta-sts.": (3600, True),
    "_smtp._tls.": (3600, True), "default._bimi.": (3600, True), "spfsub.": (3600, True),
    "info.": (3600, False), "info2.": (10, False),
}

ZONES = {"tmax.test": MX_ZONE, "tmin.test": MX_ZONE, "nonettl.test": MX_ZONE, "email.test": TXT_ZONE, "all.test": TXT_ZONE,
         "none.test": TXT_ZONE, "dflt.test": TXT_ZONE}
INSTANCES = {
    "tmax": {"ttl-max": "120", "weight": ["mx1.tmax.test 3", "mx2.tmax.test 1"]},
    "tmin": {"ttl-min": "10m", "ttl-max": "1h", "weight": ["mx1.tmin.test 3", "mx2.tmin.test 1"]},
    "nonettl": {"rotation": "none", "ttl-max": "120", "weight": ["mx1.nonettl.test 3", "mx2.nonettl.test 1"]},
    "email": {"ttl-min": "60", "ttl-max": "120", "txt": "email"},
    "all": {"ttl-min": "60", "ttl-max": "120", "txt": "all"},
    "none": {"ttl-min": "60", "ttl-max": "120", "txt": "none"},
    "dflt": {"ttl-min": "60", "ttl-max": "120"},
}
ZMODS = {z: z.split(".")[0] for z in ZONES}


@pytest.fixture(scope="module")
def knot(module_so, mknot_factory):
    return mknot_factory(ZONES, INSTANCES, ZMODS)


@pytest.fixture(scope="module")
def plain(mknot_factory):
    return mknot_factory(ZONES, with_module=False)


def clamp(ttl, lo, hi):
    if lo and ttl < lo:
        ttl = lo
    if hi and ttl > hi:
        ttl = hi
    return ttl


def glue(z):
    return {"mx1.%s." % z: [(T_A, "192.0.2.1")], "mx2.%s." % z: [(T_A, "192.0.2.2"), (T_AAAA, "2001:db8::2")]}


ORIG_GLUE_TTL = {("mx1", T_A): 3600, ("mx2", T_A): 30, ("mx2", T_AAAA): 3600}


@pytest.mark.parametrize("zone,lo,hi", [("tmax.test", 0, 120), ("tmin.test", 600, 3600)])
@pytest.mark.parametrize("owner,zttl", [("", 300), ("short.", 60), ("big.", 7200), ("long.", 86400)])
@pytest.mark.parametrize("tcp", [False, True])
def test_mx_ttl_clamped(knot, zone, lo, hi, owner, zttl, tcp):
    """MX TTL = clamp(zone TTL, ttl-min, ttl-max) on every record; additional
    A/AAAA get min(their TTL, MX TTL)."""
    want = clamp(zttl, lo, hi)
    for _ in range(5):
        r = knot.query(owner + zone, "MX", tcp=tcp)
        assert r.mx_ttls() and set(r.mx_ttls()) == {want}, \
            "MX TTLs %r, want clamp(%d, %d, %d) = %d\n%s" % (r.mx_ttls(), zttl, lo, hi, want, r)
        check_additional(r, glue(zone))
        for rr in r.additional():
            if rr.rtype in (T_A, T_AAAA):
                orig = ORIG_GLUE_TTL[(rr.owner.split(".")[0], rr.rtype)]
                assert rr.ttl == min(orig, want), ("additional %s TTL %d, want min(%d, %d)\n%s"
                                                   % (rr.owner, rr.ttl, orig, want, r))


@pytest.mark.parametrize("zone", ["tmax.test", "tmin.test"])
def test_null_mx_ttl_untouched(knot, plain, zone):
    """A null MX set is returned untouched, TTL included."""
    assert rr_view(knot.query("nullmx." + zone)) == rr_view(plain.query("nullmx." + zone))


def test_direct_address_queries_untouched(knot, plain):
    for name, t in (("mx1.tmax.test", "A"), ("mx2.tmax.test", "AAAA"), ("mx1.tmin.test", "A")):
        assert rr_view(knot.query(name, t)) == rr_view(plain.query(name, t))


@pytest.mark.parametrize("zone,mode", [("email.test", "email"), ("dflt.test", "email"),
                                       ("all.test", "all"), ("none.test", "none")])
@pytest.mark.parametrize("owner", list(TXT_CASES))
def test_txt_ttl(knot, plain, zone, mode, owner):
    """Email TXT classes (SPF, DMARC, DKIM, MTA-STS, TLS-RPT, BIMI) clamped to
    [60, 120] with txt: email (the default); every TXT with all; none with none."""
    zttl, email = TXT_CASES[owner]
    clamped = mode == "all" or (mode == "email" and email)
    want = clamp(zttl, 60, 120) if clamped else zttl
    for tcp in (False, True):
        r = knot.query(owner + zone, "TXT", tcp=tcp)
        txt = r.answer(T_TXT)
        assert txt, str(r)
        assert {rr.ttl for rr in txt} == {want}, ("TXT %s%s TTL %r, want %d (txt: %s)\n%s"
                                                 % (owner, zone, [rr.ttl for rr in txt], want, mode, r))
        ref = plain.query(owner + zone, "TXT", tcp=tcp)
        assert [rr.data for rr in txt] == [rr.data for rr in ref.answer(T_TXT)], "TXT rdata changed"


@pytest.mark.parametrize("owner", ["_dmarc.", "", "sel._domainkey."])
def test_txt_any_untouched(knot, plain, owner):
    """ANY is left alone, also where it returns an email TXT set."""
    for tcp in (False, True):
        assert rr_view(knot.query(owner + "email.test", "ANY", tcp=tcp)) == \
            rr_view(plain.query(owner + "email.test", "ANY", tcp=tcp))


def test_txt_zone_mx_clamped(knot):
    """The MX set in the TXT zones follows the same clamp (3600 -> 120)."""
    for z in ("email.test", "all.test", "none.test"):
        r = knot.query(z, "MX")
        assert set(r.mx_ttls()) == {120}, str(r)
        for rr in r.additional():
            assert rr.ttl <= 120, str(r)


def test_none_mode_ttl_policy(knot, plain):
    """rotation none still applies the TTL policy; records in zone order."""
    ref = plain.query("nonettl.test")
    for _ in range(20):
        r = knot.query("nonettl.test")
        assert r.mx() == ref.mx()
        assert set(r.mx_ttls()) == {120}
        check_additional(r, glue("nonettl.test"))
