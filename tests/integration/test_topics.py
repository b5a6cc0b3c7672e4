"""Topic lifecycle and cluster metadata: auto-create, CreateTopics,
CreatePartitions, DeleteTopics, Metadata, DescribeCluster."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewPartitions, NewTopic

import clients
import kafka_raw
from clients import assert_dense, consume_all, create_topic, produce_all


# ---------------------------------------------------------------- auto-create


def test_auto_create_on_produce(broker):
    topic = "auto-created"
    assert clients.partition_count(broker.bootstrap, topic) is None
    produce_all(broker.bootstrap, topic, [(b"k", f"v{i}".encode()) for i in range(10)])
    assert clients.partition_count(broker.bootstrap, topic) == 1  # --default-partitions default
    recs = consume_all(broker.bootstrap, topic, 1, expect=10)
    assert [r.value for r in recs] == [f"v{i}".encode() for i in range(10)]


def test_auto_create_default_partitions_flag(broker_factory):
    b = broker_factory(extra_args=["--default-partitions", "5"])
    produce_all(b.bootstrap, "auto-five", [(f"k{i}".encode(), b"v") for i in range(50)])
    assert clients.partition_count(b.bootstrap, "auto-five") == 5
    assert len(consume_all(b.bootstrap, "auto-five", 5, expect=50)) == 50


def test_auto_create_disabled(broker_factory):
    b = broker_factory(extra_args=["--auto-create-topics", "false"])
    topic = "not-auto-created"
    # raw: Metadata asking for auto-creation must not create it
    with b.raw() as c:
        md = c.metadata([topic], allow_auto_create=True)
        (t,) = md["topics"]
        assert t["name"] == topic and t["error_code"] == kafka_raw.UNKNOWN_TOPIC_OR_PARTITION
        resp = c.produce(topic, 0, kafka_raw.record_batch_v2([(b"k", b"v")]))
        assert resp["error_code"] == kafka_raw.UNKNOWN_TOPIC_OR_PARTITION
    # librdkafka: the delivery report carries the error
    p = clients.producer(b.bootstrap, **{"topic.metadata.propagation.max.ms": 2000, "message.timeout.ms": 10000})
    errors = []
    p.produce(topic, b"v", on_delivery=lambda err, msg: errors.append(err))
    assert p.flush(30) == 0
    assert len(errors) == 1 and errors[0] is not None, f"produce to unknown topic succeeded: {errors}"
    assert errors[0].code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC), errors[0]
    assert clients.partition_count(b.bootstrap, topic) is None
    # explicit creation still works
    create_topic(b.bootstrap, topic, 2)
    produce_all(b.bootstrap, topic, [(b"k", b"v", 1)])
    assert [r.value for r in consume_all(b.bootstrap, topic, 2, expect=1)] == [b"v"]


# ---------------------------------------------------------------- CreateTopics


def test_create_topics_already_exists(broker):
    create_topic(broker.bootstrap, "dup", 2)
    a = clients.admin(broker.bootstrap)
    fs = a.create_topics([NewTopic("dup", 3, 1)], request_timeout=20)
    with pytest.raises(KafkaException) as ei:
        fs["dup"].result(timeout=30)
    assert ei.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS
    assert clients.partition_count(broker.bootstrap, "dup") == 2


def test_create_topics_invalid_partition_count(broker):
    with broker.raw() as c:
        res = c.create_topics([("zero-parts", 0, 1), ("neg-parts", -5, 1)])
    codes = {r["name"]: r["error_code"] for r in res}
    assert codes["zero-parts"] == kafka_raw.INVALID_PARTITIONS
    assert codes["neg-parts"] == kafka_raw.INVALID_PARTITIONS
    assert clients.partition_count(broker.bootstrap, "zero-parts") is None


def test_create_topics_validate_only(broker):
    with broker.raw() as c:
        (res,) = c.create_topics([("validated", 3, 1)], validate_only=True)
    assert res["error_code"] == kafka_raw.NONE
    assert clients.partition_count(broker.bootstrap, "validated") is None


# ---------------------------------------------------------------- CreatePartitions


def test_create_partitions(broker):
    topic = "grows"
    create_topic(broker.bootstrap, topic, 1)
    produce_all(broker.bootstrap, topic, [(None, f"old{i}".encode(), 0) for i in range(100)])
    a = clients.admin(broker.bootstrap)
    a.create_partitions([NewPartitions(topic, 4)], request_timeout=20)[topic].result(timeout=30)
    clients.wait_for_partitions(broker.bootstrap, topic, 4)
    produce_all(broker.bootstrap, topic, [(None, f"new{p}-{i}".encode(), p) for p in range(4) for i in range(10)])
    recs = consume_all(broker.bootstrap, topic, 4, expect=140)
    assert_dense(recs)
    parts = clients.by_partition(recs)
    assert [r.value for r in parts[0]] == [f"old{i}".encode() for i in range(100)] + [
        f"new0-{i}".encode() for i in range(10)
    ]
    for p in (1, 2, 3):
        assert [r.value for r in parts[p]] == [f"new{p}-{i}".encode() for i in range(10)]
    # shrinking is refused
    fs = a.create_partitions([NewPartitions(topic, 2)], request_timeout=20)
    with pytest.raises(KafkaException) as ei:
        fs[topic].result(timeout=30)
    assert ei.value.args[0].code() == KafkaError.INVALID_PARTITIONS
    # unknown topic is refused
    fs = a.create_partitions([NewPartitions("no-such-topic", 3)], request_timeout=20)
    with pytest.raises(KafkaException) as ei:
        fs["no-such-topic"].result(timeout=30)
    assert ei.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert clients.partition_count(broker.bootstrap, topic) == 4


# ---------------------------------------------------------------- DeleteTopics


def delete_topic(bootstrap: str, topic: str) -> None:
    a = clients.admin(bootstrap)
    a.delete_topics([topic], operation_timeout=20, request_timeout=20)[topic].result(timeout=30)
    deadline = time.monotonic() + 20
    while clients.partition_count(bootstrap, topic) is not None:
        assert time.monotonic() < deadline, f"{topic} still in metadata 20 s after delete"
        time.sleep(0.1)


def test_delete_topic(broker):
    topic = "doomed"
    create_topic(broker.bootstrap, topic, 3)
    produce_all(broker.bootstrap, topic, [(f"k{i}".encode(), b"old" * 100) for i in range(300)])
    create_topic(broker.bootstrap, "survivor", 1)
    produce_all(broker.bootstrap, "survivor", [(None, b"keep")])
    delete_topic(broker.bootstrap, topic)
    # deleting again: unknown
    a = clients.admin(broker.bootstrap)
    with pytest.raises(KafkaException) as ei:
        a.delete_topics([topic], request_timeout=20)[topic].result(timeout=30)
    assert ei.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    # recreate with the same name, fewer partitions: empty, offsets from 0
    create_topic(broker.bootstrap, topic, 2)
    for p in (0, 1):
        assert clients.watermarks(broker.bootstrap, topic, p) == (0, 0)
    assert consume_all(broker.bootstrap, topic, 2) == []
    produce_all(broker.bootstrap, topic, [(None, b"new", 0)])
    (r,) = consume_all(broker.bootstrap, topic, 2, expect=1)
    assert (r.partition, r.offset, r.value) == (0, 0, b"new")
    # old data does not come back after a restart; the other topic is untouched
    broker.restart()
    assert clients.partition_count(broker.bootstrap, topic) == 2
    (r,) = consume_all(broker.bootstrap, topic, 2, expect=1)
    assert (r.partition, r.offset, r.value) == (0, 0, b"new")
    assert [x.value for x in consume_all(broker.bootstrap, "survivor", 1, expect=1)] == [b"keep"]
    assert not (broker.data_dir / f"{topic}-2").exists(), "partition 2 of the deleted topic left on disk"


# ---------------------------------------------------------------- Metadata / DescribeCluster


def test_metadata_brokers_and_topics(broker_factory):
    b = broker_factory(node_id=7)
    create_topic(b.bootstrap, "md-a", 3)
    create_topic(b.bootstrap, "md-b", 1)
    md = clients.admin(b.bootstrap).list_topics(timeout=20)
    assert list(md.brokers) == [7]
    assert (md.brokers[7].host, md.brokers[7].port) == (b.host, b.port)
    assert md.controller_id == 7
    assert {"md-a", "md-b"} <= set(md.topics)
    for name, n in (("md-a", 3), ("md-b", 1)):
        t = md.topics[name]
        assert t.error is None
        assert sorted(t.partitions) == list(range(n))
        for p in t.partitions.values():
            assert p.error is None
            assert (p.leader, list(p.replicas), list(p.isrs)) == (7, [7], [7])
    # the raw view agrees
    with b.raw() as c:
        raw = c.metadata(["md-a"])
    assert [(x["node_id"], x["host"], x["port"]) for x in raw["brokers"]] == [(7, b.host, b.port)]
    (t,) = raw["topics"]
    assert t["error_code"] == 0 and not t["is_internal"]
    assert sorted(p["partition"] for p in t["partitions"]) == [0, 1, 2]


def test_metadata_advertised_addr(broker_factory):
    b = broker_factory(start=False)
    b.extra_args = ["--advertised-addr", f"localhost:{b.port}"]
    b.start()
    md = clients.admin(b.bootstrap).list_topics(timeout=20)
    (node,) = md.brokers.values()
    assert (node.host, node.port) == ("localhost", b.port)
    # clients follow the advertised address and still work
    produce_all(b.bootstrap, "via-advertised", [(None, b"x")])
    assert len(consume_all(b.bootstrap, "via-advertised", 1, expect=1)) == 1


def test_metadata_unknown_topic_no_autocreate(broker):
    with broker.raw() as c:
        md = c.metadata(["never-made"], allow_auto_create=False)
        (t,) = md["topics"]
        assert t["error_code"] == kafka_raw.UNKNOWN_TOPIC_OR_PARTITION
        md = c.metadata(None)
        assert "never-made" not in {x["name"] for x in md["topics"]}


def test_metadata_all_topics(broker):
    names = [f"all-{i}" for i in range(6)]
    for i, n in enumerate(names):
        create_topic(broker.bootstrap, n, i + 1)
    with broker.raw() as c:
        md = c.metadata(None)
    got = {t["name"]: len(t["partitions"]) for t in md["topics"]}
    assert {n: got.get(n) for n in names} == {n: i + 1 for i, n in enumerate(names)}


def test_describe_cluster(broker_factory):
    b = broker_factory(node_id=3)
    a = clients.admin(b.bootstrap)
    desc = a.describe_cluster(request_timeout=20).result(timeout=30)
    assert desc.cluster_id, "empty cluster id"
    assert [n.id for n in desc.nodes] == [3]
    assert (desc.nodes[0].host, desc.nodes[0].port) == (b.host, b.port)
    assert desc.controller is not None and desc.controller.id == 3
    # the cluster id is stable across restarts (it lives in the data dir)
    b.restart()
    a = clients.admin(b.bootstrap)  # referenced until the future resolves
    again = a.describe_cluster(request_timeout=20).result(timeout=30)
    assert again.cluster_id == desc.cluster_id
