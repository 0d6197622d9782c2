# Copyright (C) 2026 knot-mxpolicy authors
# SPDX-License-Identifier: GPL-3.0-or-later
"""TSIG-signed queries, and robustness against garbage packets."""

import random
import socket
import struct
import time
from collections import Counter

import dns.edns
import dns.message
import dns.query
import dns.rcode
import dns.tsig
import dns.tsigkeyring
import pytest

from knotharness import WireError, walk, assert_shares, check_additional, check_preference_rotation, tsig_secret

ZONE = """
@ MX 10 mx1
@ MX 10 mx2
@ MX 10 mx3
@ MX 20 backup
mx1 A 192.0.2.1
mx2 A 192.0.2.2
mx3 A 192.0.2.3
_dmarc 3600 TXT "v=DMARC1; p=reject"
"""
Z = "proto.test."
W = {"mx1." + Z: 60, "mx2." + Z: 30, "mx3." + Z: 10}
APEX = [(10, "mx1." + Z), (10, "mx2." + Z), (10, "mx3." + Z), (20, "backup." + Z)]
GLUE = {"mx1." + Z: [(1, "192.0.2.1")], "mx2." + Z: [(1, "192.0.2.2")], "mx3." + Z: [(1, "192.0.2.3")]}
SECRET = tsig_secret()
KEYNAME = "test-key."


@pytest.fixture(scope="module")
def knot(module_so, mknot_factory):
    inst = {
        "p": {"weight": ["%s %d" % kv for kv in W.items()], "ttl-max": "120"},
        "s": {"weight": ["%s %d" % (k.replace(Z, "sticky.proto."), v) for k, v in W.items()],
              "sticky": "on", "sticky-key": "k"},
    }
    return mknot_factory({"proto.test": ZONE, "sticky.proto": ZONE}, inst,
                         {"proto.test": "p", "sticky.proto": "s"}, ecs=True, tsig_keys={KEYNAME: SECRET},
                         server_extra={"nsid": "mxpolicy-test"})


@pytest.mark.parametrize("tcp", [False, True])
def test_tsig_signed_query(knot, tcp):
    """TSIG-signed queries get a TSIG-signed response that verifies, with the
    policy applied (rotated, TTL clamped)."""
    wins = Counter()
    for _ in range(300):
        r = knot.query(Z, tsig=(KEYNAME, SECRET), tcp=tcp)
        assert r.msg.had_tsig, "response not TSIG-signed:\n%s" % r
        assert r.msg.tsig_error == 0
        assert r.aa and r.rcode == 0
        wins[check_preference_rotation(r.mx(), APEX, W)[10]] += 1
        assert set(r.mx_ttls()) == {120}
        check_additional(r, GLUE)
    assert_shares(wins, W, "TSIG winners")


def test_tsig_dnspython_own_path(knot):
    """Cross-check with dnspython's own query path (it validates the response TSIG)."""
    keyring = dns.tsigkeyring.from_text({KEYNAME: SECRET})
    for tcp in (False, True):
        q = dns.message.make_query(Z, "MX")
        q.use_tsig(keyring, keyname=KEYNAME, algorithm=dns.tsig.HMAC_SHA256)
        f = dns.query.tcp if tcp else dns.query.udp
        r = f(q, "127.0.0.1", port=knot.port, timeout=3)
        assert r.had_tsig and r.rcode() == 0
        q = dns.message.make_query("_dmarc." + Z, "TXT")
        q.use_tsig(keyring, keyname=KEYNAME, algorithm=dns.tsig.HMAC_SHA256)
        r = f(q, "127.0.0.1", port=knot.port, timeout=3)
        assert r.had_tsig and r.answer[0].ttl == 120


def test_tsig_txt_clamped_and_signed(knot):
    r = knot.query("_dmarc." + Z, "TXT", tsig=(KEYNAME, SECRET))
    assert r.msg.had_tsig and [rr.ttl for rr in r.answer()] == [120]


def test_tsig_bad_key_rejected_cleanly(knot):
    """A query signed with a wrong secret gets knotd's NOTAUTH, which parses."""
    q = knot.make_query(Z, "MX", tsig=(KEYNAME, tsig_secret("wrong")))
    wire = knot._exchange(q.to_wire(), False, None, 3)
    walk(wire)
    assert wire[3] & 0x0F == dns.rcode.NOTAUTH, wire.hex()
    with pytest.raises(dns.tsig.PeerBadSignature):
        dns.message.from_wire(wire, keyring=q.keyring, request_mac=q.mac)
    assert knot.alive()


@pytest.mark.parametrize("tcp", [False, True])
def test_nsid_and_edns_options_survive(knot, tcp):
    """EDNS options knotd adds after the module ran (NSID) are intact."""
    seen = set()
    for _ in range(40):
        r = knot.query(Z, tcp=tcp, options=[dns.edns.GenericOption(dns.edns.NSID, b"")])
        nsid = [o for o in r.msg.options if o.otype == dns.edns.NSID]
        assert nsid and nsid[0].to_wire() == b"mxpolicy-test", "NSID lost:\n%s" % r
        seen.add(check_preference_rotation(r.mx(), APEX, W)[10])
    assert len(seen) >= 2


def _valid_after(knot):
    assert knot.alive(), "knotd died:\n%s" % knot.log_tail()
    for tcp in (False, True):
        r = knot.query(Z, tcp=tcp)
        check_preference_rotation(r.mx(), APEX, W)
        r = knot.query("sticky.proto", ecs=("192.0.2.0", 24), tcp=tcp)
        assert r.rcode == 0 and r.ecs().scopelen == 24
        check_preference_rotation(r.mx(), [(p, e.replace(Z, "sticky.proto.")) for p, e in APEX],
                                  {k.replace(Z, "sticky.proto."): v for k, v in W.items()})


def _query_wire(name, rtype=15, qdcount=1, flags=0, extra=b"", arcount=0, qid=0x4242):
    q = b"".join(bytes([len(l)]) + l.encode() for l in name.strip(".").split(".")) + b"\x00"
    q += struct.pack("!HH", rtype, 1)
    return struct.pack("!HHHHHH", qid, flags, qdcount, 0, 0, arcount) + q * max(qdcount, 1) + extra


def _ecs_opt(family, srclen, scope, addr):
    data = struct.pack("!HBB", family, srclen, scope) + addr
    opt = struct.pack("!HH", 8, len(data)) + data
    return b"\x00" + struct.pack("!HHIH", 41, 1232, 0, len(opt)) + opt


GARBAGE = [
    b"",
    b"\x00",
    b"\x12\x34\x01",
    b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00",  # 11-byte header
    _query_wire(Z, qdcount=2),
    _query_wire(Z, qdcount=0),
    _query_wire(Z)[:-3],  # question cut short
    _query_wire(Z) + b"\xde\xad\xbe\xef",  # trailing garbage
    _query_wire(Z, flags=0x8000),  # QR set
    _query_wire(Z, flags=0x2800),  # opcode UPDATE
    _query_wire(Z, flags=0x2000),  # opcode NOTIFY
    _query_wire(Z, flags=0x1000),  # opcode STATUS
    _query_wire(Z, rtype=255),
    _query_wire("sticky.proto", arcount=1, extra=_ecs_opt(1, 33, 0, b"\xc0\x00\x02\x00\x01")),
    _query_wire("sticky.proto", arcount=1, extra=_ecs_opt(1, 24, 0, b"\xc0\x00\x02\x00\x00\x00")),
    _query_wire("sticky.proto", arcount=1, extra=_ecs_opt(2, 129, 0, b"\x20\x01" * 9)),
    _query_wire("sticky.proto", arcount=1, extra=_ecs_opt(3, 8, 0, b"\x01")),
    _query_wire("sticky.proto", arcount=1, extra=_ecs_opt(1, 24, 24, b"\xc0\x00\x02")),
    _query_wire("sticky.proto", arcount=1, extra=_ecs_opt(1, 24, 0, b"\xc0\x00")),
    _query_wire("sticky.proto", arcount=1, extra=b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 9) + b"\x00\x08\x00\x05"),
    _query_wire(Z, arcount=2, extra=_ecs_opt(1, 24, 0, b"\xc0\x00\x02") * 2),
    _query_wire(Z, arcount=1, extra=b"\x00" + struct.pack("!HHIH", 41, 1232, 0x00018000, 0)),  # EDNS version 1
    b"\x12\x34\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x0f\x00\x01",  # pointer loop in question
]


def test_garbage_packets(knot):
    rng = random.Random(1234)
    packets = list(GARBAGE)
    for _ in range(300):
        packets.append(bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 600))))
    # random bit flips of a valid MX query
    base = bytearray(_query_wire(Z, arcount=1, extra=_ecs_opt(1, 24, 0, b"\xc0\x00\x02")))
    for _ in range(300):
        p = bytearray(base)
        for _ in range(rng.randrange(1, 4)):
            p[rng.randrange(len(p))] ^= 1 << rng.randrange(8)
        packets.append(bytes(p))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    answers = []
    try:
        for i, p in enumerate(packets):
            sock.sendto(p, ("127.0.0.1", knot.port))
            if i % 20 == 19:
                time.sleep(0.002)
        sock.settimeout(0.5)
        while True:
            try:
                answers.append(sock.recv(65535))
            except socket.timeout:
                break
    finally:
        sock.close()
    for ans in answers:
        # knotd's answers to garbage (FORMERR, NOTIMPL...) must still be
        # well-formed DNS messages (opcode-independent strict walk)
        try:
            walk(ans)
        except WireError as e:
            raise AssertionError("malformed answer %s to garbage: %s" % (ans.hex(), e))
    assert answers, "knotd answered none of the garbage (not even FORMERR)"
    _valid_after(knot)
    for p in GARBAGE + packets[-50:]:
        knot.send_raw(p, tcp=True, timeout=0.2)
    _valid_after(knot)
