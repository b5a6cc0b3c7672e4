"""Follower lag in time (issue 21 item 7) on three real processes.

A follower paused with SIGSTOP stops fetching; once the leader has a
record it lacks, the leader's /metrics shows that partition's lag in
seconds growing (`corestream_partition_replica_lag_seconds`, and the
shard's `corestream_replica_lag_seconds_max`); after SIGCONT the follower
fetches up to the leader's end and the lag is 0 again.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.request

import clients
from test_replication import cluster, create_rf3, sample, topic_name  # noqa: F401

# Long enough for the lag to pass a couple of seconds on a loaded machine.
PAUSE_LAG_S_MIN = 2.0
CATCH_UP_WAIT_S = 60.0


def scrape(cluster, node: int) -> str:
    # Only the leader: a paused node would not answer its /metrics.
    url = f"{cluster.nodes[node].admin_url}/metrics"
    return urllib.request.urlopen(url, timeout=10).read().decode()


def lag_seconds(cluster, node: int, topic: str) -> float | None:
    text = scrape(cluster, node)
    return sample(
        text,
        "corestream_partition_replica_lag_seconds",
        f'topic="{topic}",partition="0",shard="0"',
    )


def poll_lag(cluster, node: int, topic: str, check, what: str, timeout_s: float) -> float:
    deadline = time.monotonic() + timeout_s
    seen = None
    while time.monotonic() < deadline:
        seen = lag_seconds(cluster, node, topic)
        if seen is not None and check(seen):
            return seen
        time.sleep(0.2)
    raise AssertionError(f"{what}: last lag seen {seen}")


def test_replication_lag_seconds_grows_for_a_paused_follower_and_is_zero_after_catch_up(cluster):
    topic = topic_name()
    leader = create_rf3(cluster, topic, 1)[0]
    follower = next(i for i in cluster.nodes if i != leader)
    clients.produce_all(cluster.bootstrap(), topic, [(b"k", b"before", 0)] * 10, acks="all")
    # Every follower holds the leader's end: no lag.
    poll_lag(cluster, leader, topic, lambda s: s == 0, "lag 0 with every follower caught up", CATCH_UP_WAIT_S)

    pid = cluster.nodes[follower].proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        # A record the paused follower lacks (acks=1: the ISR may still
        # hold it until replica.lag.time.max.ms passes).
        clients.produce_all(cluster.bootstrap(leader), topic, [(b"k", b"during", 0)] * 10, acks="1")
        first = poll_lag(
            cluster, leader, topic, lambda s: s >= PAUSE_LAG_S_MIN, "lag growing past 2 s", CATCH_UP_WAIT_S
        )
        later = poll_lag(
            cluster, leader, topic, lambda s: s >= first + 1.0, "lag still growing", CATCH_UP_WAIT_S
        )
        text = scrape(cluster, leader)
        shard_max = sample(text, "corestream_replica_lag_seconds_max", 'shard="0"')
        assert shard_max is not None and shard_max >= later, (shard_max, later)
    finally:
        os.kill(pid, signal.SIGCONT)

    # Resumed, it fetches up to the leader's end: lag 0 again.
    poll_lag(cluster, leader, topic, lambda s: s == 0, "lag 0 after SIGCONT and catch-up", CATCH_UP_WAIT_S)
    got = clients.consume_all(cluster.bootstrap(follower), topic, 1, expect=20)
    assert len(got) == 20
