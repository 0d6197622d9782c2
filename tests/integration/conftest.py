# Copyright (C) 2026 knot-mxpolicy authors
# SPDX-License-Identifier: GPL-3.0-or-later
"""pytest fixtures for the mod-mxpolicy integration tests."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import knotharness  # noqa: E402
import resolver  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: long observation tests (a minute or more; run by default, "
        "deselect with -m 'not slow')")


def _module_problem():
    so = knotharness.module_path()
    if not so.exists():
        return "skip", "module not built: %s does not exist (set MXPOLICY_MODULE)" % so
    inst = knotharness.installed_copy()
    if inst is not None:
        return "fail", ("an installed copy of the module exists at %s: Debian's knotd auto-loads "
                        "it, so loading %s too fails with 'duplicate module' (or tests the wrong "
                        "copy). Remove the installed copy to run the integration tests." % (inst, so))
    return None, None


@pytest.fixture(scope="session")
def module_so():
    """Path of the built module; skips when not built, fails on an installed copy."""
    kind, why = _module_problem()
    if kind == "skip":
        pytest.skip(why)
    if kind == "fail":
        pytest.fail(why, pytrace=False)
    return knotharness.module_path()


@pytest.fixture(scope="session")
def mxpolicyctl(module_so):
    """Path of the built mxpolicyctl (MXPOLICYCTL); skips when not built."""
    ctl = knotharness.mxpolicyctl_path()
    if not os.access(ctl, os.X_OK):
        pytest.skip("mxpolicyctl not built: %s is not executable (set MXPOLICYCTL)" % ctl)
    return ctl


def _knots():
    """Create Knot instances; yields the factory, then stops and removes them."""
    made = []

    def make(*args, start=True, **kwargs):
        k = knotharness.Knot(*args, **kwargs)
        made.append(k)
        if start:
            k.start()
        return k

    yield make
    for k in made:
        k.cleanup()


@pytest.fixture
def knot_factory(request):
    """Create Knot instances that are always stopped and removed afterwards."""
    yield from _knots()


@pytest.fixture(scope="module")
def mknot_factory(request):
    """Module-scoped variant of knot_factory."""
    yield from _knots()


@pytest.fixture(scope="session")
def unbound_bin():
    """Path of unbound; skips when it cannot be run."""
    why = resolver.unbound_problem()
    if why:
        pytest.skip("unbound not installed: %s" % why)
    return resolver.UNBOUND


def _unbounds():
    """Create Unbound instances; yields the factory, then kills and removes them."""
    made = []

    def make(*args, start=True, **kwargs):
        u = resolver.Unbound(*args, **kwargs)
        made.append(u)
        if start:
            u.start()
        return u

    yield make
    for u in made:
        u.cleanup()


@pytest.fixture
def unbound_factory(unbound_bin):
    """Create validating resolvers (resolver.Unbound) that are always stopped
    and removed afterwards."""
    yield from _unbounds()


@pytest.fixture(scope="module")
def munbound_factory(unbound_bin):
    """Module-scoped variant of unbound_factory."""
    yield from _unbounds()
