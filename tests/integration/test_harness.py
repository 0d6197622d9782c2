# Copyright (C) 2026 knot-mxpolicy authors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Self-tests of the harness against plain knotd (no module loaded).

They prove the harness (start/stop, queries, strict wire walker, kdig,
TSIG, ECS, TC) so that a failure in the module tests points at the module.
"""

import struct

import pytest

from knotharness import (Knot, T_A, T_AAAA, WireError, tsig_secret, walk, chi_square,
                         CHI2_CRIT_001)

ZONE = """
@ MX 10 mx1
@ MX 10 mx2
@ MX 20 backup.example.net.
mx1 A 192.0.2.1
mx2 A 192.0.2.2
mx2 AAAA 2001:db8::2
"""


@pytest.fixture(scope="module")
def plain(mknot_factory):
    return mknot_factory({"example.com": ZONE}, with_module=False, ecs=True,
                         tsig_keys={"tkey": tsig_secret()})


def test_plain_knotd_answers_mx_with_glue(plain):
    r = plain.query("example.com", "MX")
    assert r.aa and r.rcode == 0
    assert sorted(r.mx()) == [(10, "mx1.example.com."), (10, "mx2.example.com."),
                              (20, "backup.example.net.")]
    add = sorted((rr.owner, rr.rtype, rr.data) for rr in r.additional())
    assert add == [("mx1.example.com.", T_A, "192.0.2.1"), ("mx2.example.com.", T_A, "192.0.2.2"),
                   ("mx2.example.com.", T_AAAA, "2001:db8::2")]
    r = plain.query("example.com", "MX", tcp=True)
    assert len(r.mx()) == 3
    plain.kdig("example.com", "MX")
    plain.kdig("example.com", "MX", "+tcp")


def test_plain_tsig_and_ecs(plain):
    r = plain.query("example.com", "MX", tsig=("tkey", tsig_secret()))
    assert r.msg.had_tsig
    r = plain.query("example.com", "MX", ecs=("198.51.100.0", 24))
    assert r.ecs() is not None and r.ecs().scopelen == 0


def test_walker_rejects_dangling_pointer():
    # header, question example.com MX, one answer whose owner is a pointer into
    # the middle of a label (offset 13 = inside "example"): must be rejected.
    q = b"\x07example\x03com\x00" + struct.pack("!HH", 15, 1)
    hdr = struct.pack("!HHHHHH", 1, 0x8400, 1, 1, 0, 0)
    rr = b"\xc0\x0d" + struct.pack("!HHIH", 1, 1, 60, 4) + b"\x01\x02\x03\x04"
    with pytest.raises(WireError):
        walk(hdr + q + rr)
    ok = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + b"\x01\x02\x03\x04"
    walk(hdr + q + ok)


def test_chi_square_helper():
    stat, df, crit = chi_square({"a": 600, "b": 300, "c": 100}, {"a": 6, "b": 3, "c": 1})
    assert stat == 0 and df == 2 and crit == CHI2_CRIT_001[2]
    stat, df, crit = chi_square({"a": 500, "b": 500}, {"a": 9, "b": 1})
    assert stat > crit


def test_stop_leaves_no_process():
    k = Knot({"example.com": ZONE}, with_module=False)
    try:
        k.start()
        pid = k.proc.pid
        assert k.query("example.com", "SOA").aa
        k.stop()
        assert k.proc.poll() is not None, "knotd %d still running" % pid
    finally:
        k.cleanup()


def test_installed_copy_detected(monkeypatch, tmp_path):
    """An mxpolicy.so in knotd's module_instdir is found (the suite then fails
    instead of testing the wrong copy or hitting 'duplicate module')."""
    import conftest
    import knotharness

    class Out:
        stdout = str(tmp_path) + "\n"

    monkeypatch.setattr(knotharness.subprocess, "run", lambda *a, **k: Out())
    assert knotharness.installed_copy() is None
    (tmp_path / "mxpolicy.so").write_bytes(b"")
    assert knotharness.installed_copy() == tmp_path / "mxpolicy.so"
    monkeypatch.setenv("MXPOLICY_MODULE", "/bin/sh")  # any existing file
    kind, why = conftest._module_problem()
    assert kind == "fail" and str(tmp_path) in why
    monkeypatch.setenv("MXPOLICY_MODULE", str(tmp_path / "nonexistent.so"))
    assert conftest._module_problem()[0] == "skip"
