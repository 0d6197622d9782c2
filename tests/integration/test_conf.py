# Copyright (C) 2026 knot-mxpolicy authors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Configuration checks: knotc conf-check, knotd start and reload with bad values."""

import subprocess
import time
from collections import Counter

import pytest

from knotharness import KNOTD, _free_port, assert_shares, check_preference_rotation, winner_of

ZONE = """
@ MX 10 mx1
@ MX 10 mx2
mx1 A 192.0.2.1
mx2 A 192.0.2.2
"""

GOOD = {
    "rotation": "preference",
    "weight": ["mx1.example.com. 60", "mx2.example.com 0", "elsewhere.example.net. 65535"],
    "default-weight": 5,
    "sticky": "off",
    "sticky-key": "a fixed key",
    "ttl-min": "60",
    "ttl-max": "1h",
    "ttl-degraded": "30",
    "txt": "email",
    "all-down": "serve-all",
    "tier-failover": "off",
    "bypass": ["127.0.0.1", "192.0.2.0/24", "2001:db8::/32", "198.51.100.1-198.51.100.9"],
}


def make(items, knot_factory):
    return knot_factory({"example.com": ZONE}, {"p": items}, {"example.com": "p"}, start=False)


def test_good_config_passes(module_so, knot_factory):
    k = make(GOOD, knot_factory)
    rc, out = k.conf_check()
    assert rc == 0 and "Configuration is valid" in out, out


@pytest.mark.parametrize("item", ["order", "none"])
def test_good_rotation_values(module_so, knot_factory, item):
    rc, out = make({"rotation": item}, knot_factory).conf_check()
    assert rc == 0, out


# (items, words that the error output must contain: the item and the value)
BAD = [
    ({"weight": ["mx1.example.com abc"]}, ["weight", "abc"]),
    ({"weight": ["not..a..name 5"]}, ["weight", "not..a..name"]),
    ({"weight": ["mx1.example.com 70000"]}, ["weight", "70000"]),
    ({"weight": ["mx1.example.com -1"]}, ["weight", "-1"]),
    ({"weight": ["mx1.example.com"]}, ["weight", "mx1.example.com"]),
    ({"weight": ["mx1.example.com 5 7"]}, ["weight", "mx1.example.com 5 7"]),
    ({"weight": ["mx1.example.com 10", "mx2.example.com x"]}, ["weight", "mx2.example.com x"]),
    ({"ttl-min": "600", "ttl-max": "60"}, ["ttl-min", "ttl-max", "600"]),
    ({"rotation": "bogus"}, ["rotation", "bogus"]),
    ({"default-weight": "0"}, ["default-weight", "0"]),
    ({"default-weight": "65536"}, ["default-weight", "65536"]),
    ({"txt": "bogus"}, ["txt", "bogus"]),
    ({"all-down": "bogus"}, ["all-down", "bogus"]),
    ({"tier-failover": "maybe"}, ["tier-failover", "maybe"]),
    ({"sticky": "maybe"}, ["sticky", "maybe"]),
    ({"ttl-max": "forever"}, ["ttl-max", "forever"]),
    ({"bypass": ["notanet"]}, ["bypass", "notanet"]),
    ({"bypass": ["192.0.2.0/33"]}, ["bypass", "192.0.2.0/33"]),
    ({"frobnicate": "1"}, ["frobnicate"]),
]


@pytest.mark.parametrize("items,words", BAD, ids=[repr(b[0]) for b in BAD])
def test_bad_value_rejected(module_so, knot_factory, items, words):
    k = make(items, knot_factory)
    rc, out = k.conf_check()
    assert rc != 0, "conf-check accepted %r:\n%s" % (items, out)
    low = out.lower()
    for w in words:
        assert w.lower() in low, "conf-check error does not name %r:\n%s" % (w, out)


def test_knotd_start_with_bad_weight(module_so, knot_factory):
    """knotd started with a bad weight must not crash: it either refuses the
    configuration cleanly (exit status, no signal) or serves the zone
    unmodified; either way the log names the bad value."""
    k = make({"weight": ["mx1.example.com abc"]}, knot_factory)
    k.port = _free_port()
    k.write(k.port)
    with open(k.logfile, "ab") as log:
        k.proc = subprocess.Popen([KNOTD, "-c", str(k.conf)], stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        served = None
        while time.monotonic() < deadline and k.proc.poll() is None:
            try:
                served = k.query("example.com", "MX", timeout=0.3)
                break
            except (OSError, AssertionError):
                time.sleep(0.1)
        rc = k.proc.poll()
        if rc is not None:
            assert rc > 0, "knotd died from signal %d with a bad weight:\n%s" % (-rc, k.log_tail())
        else:
            assert served is not None, "knotd neither exited nor answered:\n%s" % k.log_tail()
            assert sorted(served.mx()) == [(10, "mx1.example.com."), (10, "mx2.example.com.")]
            assert k.alive()
    assert "abc" in k.log(), "log does not name the bad value:\n%s" % k.log_tail()


def test_reload_with_bad_value_keeps_running(module_so, knot_factory):
    """A reload with a bad value is refused; the running policy stays."""
    k = knot_factory({"example.com": ZONE}, {"p": {"weight": ["mx1.example.com 9", "mx2.example.com 1"]}},
                     {"example.com": "p"})
    zone = [(10, "mx1.example.com."), (10, "mx2.example.com.")]
    w = {"mx1.example.com.": 9, "mx2.example.com.": 1}
    check_preference_rotation(k.query("example.com").mx(), zone, w)
    k.instances["p"] = {"weight": ["mx1.example.com abc"]}
    k.write(k.port)
    rc, out = k.knotc("reload")
    time.sleep(0.5)
    assert k.alive(), "knotd died on reload with a bad value:\n%s" % k.log_tail()
    assert rc != 0 or "abc" in k.log(), "bad reload neither refused nor logged:\n%s\n%s" % (out, k.log_tail())
    for _ in range(20):
        r = k.query("example.com")
        assert r.rcode == 0
        check_preference_rotation(r.mx(), zone, w)


def test_reload_applies_new_weights(module_so, knot_factory):
    """knotc reload with changed weights: the new policy applies, knotd survives."""
    k = knot_factory({"example.com": ZONE}, {"p": {"weight": ["mx1.example.com 99", "mx2.example.com 1"]}},
                     {"example.com": "p"})
    zone = [(10, "mx1.example.com."), (10, "mx2.example.com.")]
    w1 = {"mx1.example.com.": 99, "mx2.example.com.": 1}
    wins = Counter(check_preference_rotation(k.query("example.com").mx(), zone, w1)[10] for _ in range(300))
    assert_shares(wins, w1, "before reload")
    w2 = {"mx1.example.com.": 1, "mx2.example.com.": 99}
    k.instances["p"] = {"weight": ["mx1.example.com 1", "mx2.example.com 99"]}
    for _ in range(3):  # reload repeatedly: old instances unloaded, new loaded
        k.reload()
        time.sleep(0.3)
        assert k.alive()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if winner_of(k.query("example.com").mx()) == "mx2.example.com.":
            break
    wins = Counter(check_preference_rotation(k.query("example.com").mx(), zone, w2)[10] for _ in range(300))
    assert_shares(wins, w2, "after reload")
    assert "error" not in k.log().lower().replace("errors", ""), k.log_tail()


def test_template_and_shared_instance(module_so, knot_factory):
    """An instance referenced from a template applies to every zone using it."""
    zones = {"a.test": ZONE, "b.test": ZONE}
    w = {"mx1.a.test 9": None, "mx1.b.test 9": None}
    k = knot_factory(zones, {"t": {"weight": list(w)}}, {},
                     extra_conf='\ntemplate:\n  - id: "default"\n    module: "mod-mxpolicy/t"\n')
    for z in ("a.test.", "b.test."):
        zone = [(10, "mx1." + z), (10, "mx2." + z)]
        wins = Counter(check_preference_rotation(k.query(z).mx(), zone, {"mx1." + z: 9, "mx2." + z: 1})[10]
                       for _ in range(200))
        assert_shares(wins, {"mx1." + z: 9, "mx2." + z: 1}, z)
