# Copyright (C) 2026 knot-mxpolicy authors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Rewritten answers whose glue does not all fit: every EDNS buffer size from
512 to 1232 gives a well-formed response (no compression pointer into
discarded bytes, no worker stuck in a pointer loop), as much glue as plain
knotd keeps, and the server keeps answering."""

import pytest

from knotharness import T_A, T_AAAA

N = 10


def zone(prefix):
    lines = []
    for i in range(N):
        lines.append("@ MX 10 %s%d" % (prefix, i))
        lines.append("%s%d A 192.0.2.%d" % (prefix, i, i + 1))
        lines.append("%s%d AAAA 2001:db8::%x" % (prefix, i, i + 1))
    return "\n".join(lines) + "\n"


ZONES = {"ovf.test": zone("mail"), "ovf2.test": zone("exchanger-with-a-longer-name-")}
INSTANCES = {"o": {"rotation": "order"}}
ZMODS = {"ovf.test": "o", "ovf2.test": "o"}
SIZES = range(512, 1233, 4)


@pytest.fixture(scope="module")
def knot(module_so, mknot_factory):
    return mknot_factory(ZONES, INSTANCES, ZMODS, udp_max_payload=4096)


@pytest.fixture(scope="module")
def plain(mknot_factory):
    return mknot_factory(ZONES, with_module=False, udp_max_payload=4096)


def glue(r):
    return [rr for rr in r.additional() if rr.rtype in (T_A, T_AAAA)]


@pytest.mark.parametrize("name", ["ovf.test.", "ovf2.test."])
def test_every_buffer_size_is_well_formed(knot, plain, name):
    for size in SIZES:
        # query() fails the test on any response that does not parse strictly
        r = knot.query(name, payload=size, timeout=2.0)
        ref = plain.query(name, payload=size)
        answer = {e for _, e in r.mx()}
        assert answer == {e for _, e in ref.mx()}, (size, r)
        for rr in glue(r):
            assert rr.owner in answer, "glue of a name not in the answer at %d:\n%s" % (size, r)
        assert len(glue(r)) >= len(glue(ref)), \
            "payload %d: %d glue records, plain knotd keeps %d\n%s\n---\n%s" % (
                size, len(glue(r)), len(glue(ref)), r, ref)
    # the workers are not stuck: plain queries still get quick answers
    for _ in range(20):
        assert knot.query(name, rdtype="SOA", timeout=1.0).msg.answer


def test_down_exchanger_never_served_tc_instead(knot, plain, mxpolicyctl):
    """A down exchanger at every buffer size: over UDP an answer either
    leaves it out or has TC (where knotd had no room to rewrite, the client
    must retry over TCP); over TCP it is always left out. Both happen."""
    name = "ovf2.test."
    down = "exchanger-with-a-longer-name-3.ovf2.test."
    knot.ctl_ok("down", down)
    try:
        base = knot.zone_stats(name)
        tc = left_out = 0
        for size in SIZES:
            r = knot.query(name, payload=size, timeout=2.0)
            answer = {e for _, e in r.mx()}
            if r.tc:
                tc += 1
            else:
                assert down not in answer, "down exchanger served at %d:\n%s" % (size, r)
                left_out += 1
        r = knot.query(name, tcp=True)
        assert down not in {e for _, e in r.mx()} and len(r.mx()) == N - 1, r
        assert tc > 0 and left_out > 0, (tc, left_out)
        d = knot.zone_stats(name)["truncated"] - base.get("truncated", 0)
        assert d == tc, (d, tc)
    finally:
        knot.ctl_ok("auto", down)
