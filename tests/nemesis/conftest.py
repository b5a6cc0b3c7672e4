"""Fixtures for the nemesis tests: a three-node cluster in network
namespaces, torn down (network included) even when the test fails, and a
run seed taken from $NEMESIS_SEED (replay) or drawn at random and printed.
"""

from __future__ import annotations

import os
import random

import pytest

from nemesis import netns
from nemesis.cluster import NetnsCluster


@pytest.fixture
def seed() -> int:
    value = int(os.environ["NEMESIS_SEED"]) if os.environ.get("NEMESIS_SEED") else random.randrange(2**32)
    print(f"nemesis seed {value} (replay: NEMESIS_SEED={value})")
    return value


@pytest.fixture
def netns_cluster(request, tmp_path):
    reason = netns.unavailable_reason()
    if reason:
        pytest.fail(f"the nemesis cluster needs network namespaces: {reason}", pytrace=False)
    cluster = NetnsCluster(tmp_path / "cluster")
    request.node._corestream_brokers = []  # conftest's report hook attaches their logs on failure
    try:
        cluster.start()
        request.node._corestream_brokers = list(cluster.nodes.values())
        yield cluster
    finally:
        errors = cluster.stop()
        request.node._corestream_brokers = list(cluster.nodes.values())
    if errors:
        pytest.fail("cluster did not stop cleanly:\n" + "\n".join(errors), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test's report carries every node's stderr (as
    tests/integration/conftest.py does for its brokers)."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for b in getattr(item, "_corestream_brokers", []):
            rep.sections.append((f"corestreamd stderr: {b.name}", b.log_tail()))
