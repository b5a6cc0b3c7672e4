"""Partition replication (issue 21) on a three-node cluster of real
processes: replication factor 3, min.insync.replicas 2, acks=all.

Each test checks what a user relies on: every acknowledged record is on
the followers too (a follower that becomes leader serves it), a leader
SIGKILLed under load loses no acknowledged record and an idempotent
producer writes none twice, a returning broker catches up and rejoins the
ISR, and acks=all is refused (NOT_ENOUGH_REPLICAS) when too few replicas
are in sync while acks=1 still works.
"""

from __future__ import annotations

import time
import urllib.request
import uuid

import pytest
from confluent_kafka import KafkaException, Producer

import clients
import kafka_raw
from test_cluster import LEADER_WAIT_S, SESSION_TIMEOUT_MS, Cluster, leaders

# replica.lag.time.max.ms for the tests: a follower not caught up this long
# leaves the ISR (Kafka's default is 30 s; the tests cannot wait that long).
REPLICA_LAG_MS = 3_000
NOT_ENOUGH_REPLICAS = 19


@pytest.fixture
def cluster(broker_factory) -> Cluster:
    return Cluster(
        broker_factory,
        extra_args=["--replica-lag-time-max-ms", str(REPLICA_LAG_MS)],
    ).start()


def topic_name() -> str:
    return f"repl-{uuid.uuid4().hex[:8]}"


def isr(md: dict, topic: str) -> dict[int, list[int]]:
    [t] = [t for t in md["topics"] if t["name"] == topic]
    return {p["partition"]: sorted(p["isr"]) for p in t["partitions"]}


def create_rf3(cluster: Cluster, topic: str, partitions: int, min_insync: int = 2) -> dict[int, int]:
    clients.create_topic(
        cluster.bootstrap(1),
        topic,
        partitions,
        config={"min.insync.replicas": str(min_insync)},
        replication_factor=3,
    )
    md = cluster.wait_for(
        "every partition led with three in sync",
        lambda md: all(v == [1, 2, 3] for v in isr(md, topic).values())
        and -1 not in leaders(md, topic).values(),
        via=1,
        topics=[topic],
    )
    return leaders(md, topic)


def test_replication_rf3_acks_all_records_survive_leader_sigkill_exactly_once(cluster):
    topic = topic_name()
    placed = create_rf3(cluster, topic, 1)
    leader = placed[0]
    survivor = next(i for i in cluster.nodes if i != leader)
    first = [(f"k{i}".encode(), f"a{i}".encode(), 0) for i in range(300)]
    clients.produce_all(cluster.bootstrap(), topic, first, acks="all", **{"enable.idempotence": True})

    cluster.nodes[leader].kill9()
    md = cluster.wait_for(
        "another ISR member leads",
        lambda md: leaders(md, topic)[0] not in (-1, leader),
        via=survivor,
        topics=[topic],
        timeout_s=SESSION_TIMEOUT_MS / 1000 + LEADER_WAIT_S,
    )
    new_leader = leaders(md, topic)[0]
    assert leader not in isr(md, topic)[0], md
    # acks=all goes on with two of three in sync (min.insync.replicas=2)
    second = [(f"k{i}".encode(), f"b{i}".encode(), 0) for i in range(300, 500)]
    live = cluster.bootstrap(*(i for i in cluster.nodes if i != leader))
    clients.produce_all(live, topic, second, acks="all", **{"enable.idempotence": True})

    got = clients.consume_all(cluster.bootstrap(new_leader), topic, 1, expect=len(first) + len(second))
    values = [r.value for r in got]
    assert len(values) == len(set(values)), "a record was written twice"
    assert sorted(values) == sorted(v for _, v, _ in first + second)
    offsets = [r.offset for r in got]
    assert offsets == list(range(len(offsets))), "offsets are dense from 0"

    # the killed broker comes back, catches up and rejoins the ISR
    cluster.nodes[leader].start()
    cluster.wait_for(
        "the returning broker back in the ISR",
        lambda md: isr(md, topic)[0] == [1, 2, 3],
        via=survivor,
        topics=[topic],
        timeout_s=LEADER_WAIT_S,
    )


def test_replication_rf3_min_insync_refuses_acks_all_but_not_acks_1(cluster):
    topic = topic_name()
    placed = create_rf3(cluster, topic, 1, min_insync=3)
    leader = placed[0]
    follower = next(i for i in cluster.nodes if i != leader)
    with cluster.nodes[leader].raw() as c:
        ok = c.produce(topic, 0, kafka_raw.record_batch_v2([(b"k", b"all-three")]), acks=-1)
    assert ok["error_code"] == 0, ok

    cluster.nodes[follower].kill9()
    cluster.wait_for(
        "the dead follower out of the ISR",
        lambda md: follower not in isr(md, topic)[0],
        via=leader,
        topics=[topic],
        timeout_s=SESSION_TIMEOUT_MS / 1000 + LEADER_WAIT_S,
    )
    with cluster.nodes[leader].raw() as c:
        refused = c.produce(topic, 0, kafka_raw.record_batch_v2([(b"k", b"two")]), acks=-1)
        assert refused["error_code"] == NOT_ENOUGH_REPLICAS, refused
        one = c.produce(topic, 0, kafka_raw.record_batch_v2([(b"k", b"acks-1")]), acks=1)
        assert one["error_code"] == 0, one
    # the leader's /metrics shows the partition under-replicated
    text = urllib.request.urlopen(f"{cluster.nodes[leader].admin_url}/metrics", timeout=10).read().decode()
    labels = f'topic="{topic}",partition="0",shard="0"'
    assert f"corestream_partition_under_replicated{{{labels}}} 1" in text, text[-2000:]
    assert f'corestream_replica_lag_offsets{{{labels},replica="{follower}"}}' in text
