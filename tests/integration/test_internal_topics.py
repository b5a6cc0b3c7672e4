"""Internal topics (`__consumer_offsets`, `__transaction_state`) take writes
only from the coordinators: a client's Produce gets INVALID_TOPIC_EXCEPTION
(17) as in Kafka, and DeleteTopics, DeleteRecords, CreatePartitions,
CreateTopics and config changes that would damage them are refused
(src/metadata/internal_topics.rs)."""

from __future__ import annotations

import struct
import subprocess

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

import clients
import kafka_raw
from clients import create_topic

OFFSETS_TOPIC = "__consumer_offsets"
TXN_TOPIC = "__transaction_state"
INVALID_CONFIG = 40
admin_wait_s = 30
kcat_wait_s = 60


def group_consumer(bootstrap: str, group: str) -> Consumer:
    return clients.consumer(bootstrap, **{"group.id": group, "enable.auto.commit": False})


def commit(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    c = group_consumer(bootstrap, group)
    try:
        c.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)
    finally:
        c.close()


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    c = group_consumer(bootstrap, group)
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=20)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def java_string_hash(s: str) -> int:
    h = 0
    for unit in struct.unpack(f">{len(s.encode('utf-16-be')) // 2}H", s.encode("utf-16-be")):
        h = (31 * h + unit) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def offset_commit_record(group: str, topic: str, partition: int, offset: int) -> tuple[bytes, bytes]:
    """A well-formed `__consumer_offsets` offset commit (key v1, value v3),
    as the group coordinator itself writes it."""

    def string(s: str) -> bytes:
        return struct.pack(">h", len(s)) + s.encode()

    key = struct.pack(">h", 1) + string(group) + string(topic) + struct.pack(">i", partition)
    value = struct.pack(">hqi", 3, offset, -1) + string("") + struct.pack(">q", 0)
    return key, value


def error_code(future) -> int:
    with pytest.raises(KafkaException) as ei:
        future.result(timeout=admin_wait_s)
    return ei.value.args[0].code()


def test_produce_internal_topic_kcat_refused_broker_keeps_running(broker):
    create_topic(broker.bootstrap, "t", 1)
    commit(broker.bootstrap, "g-kcat-victim", "t", {0: 3})
    run = subprocess.run(
        ["kcat", "-b", broker.bootstrap, "-t", OFFSETS_TOPIC, "-P", "-X", "message.timeout.ms=10000"],
        input=b"garbage that is no offsets record\n",
        capture_output=True,
        timeout=kcat_wait_s,
    )
    stderr = run.stderr.decode(errors="replace")
    assert "Invalid topic" in stderr, f"kcat exit {run.returncode}, stderr: {stderr}"
    broker.assert_alive()
    assert committed(broker.bootstrap, "g-kcat-victim", "t", 1) == {0: 3}


@pytest.mark.parametrize("topic", [OFFSETS_TOPIC, TXN_TOPIC])
def test_produce_v3_plus_internal_topic_raw_invalid_topic_exception(broker, topic):
    with broker.raw() as c:
        resp = c.produce(topic, 0, kafka_raw.record_batch_v2([(b"k", b"v")]))
    assert resp["error_code"] == kafka_raw.INVALID_TOPIC_EXCEPTION, resp
    assert resp["base_offset"] == -1, resp
    if resp["version"] >= 8:
        assert resp["error_message"] == f"Cannot append to internal topic {topic}", resp
    broker.assert_alive()


def test_produce_internal_topic_does_not_auto_create_it(broker):
    with broker.raw() as c:
        resp = c.produce(TXN_TOPIC, 0, kafka_raw.record_batch_v2([(b"k", b"v")]))
        assert resp["error_code"] == kafka_raw.INVALID_TOPIC_EXCEPTION, resp
        (t,) = c.metadata([TXN_TOPIC], allow_auto_create=False)["topics"]
    assert t["error_code"] == kafka_raw.UNKNOWN_TOPIC_OR_PARTITION, t


def test_produce_well_formed_offset_commit_refused_offsets_intact_after_restart(broker):
    topic, group = "t-victim", "g-victim"
    create_topic(broker.bootstrap, topic, 1)
    commit(broker.bootstrap, group, topic, {0: 5})
    with broker.raw() as c:
        (meta,) = c.metadata([OFFSETS_TOPIC])["topics"]
        assert meta["is_internal"], meta
        partition = (java_string_hash(group) & 0x7FFFFFFF) % len(meta["partitions"])
        key, value = offset_commit_record(group, topic, 0, 999)
        resp = c.produce(OFFSETS_TOPIC, partition, kafka_raw.record_batch_v2([(key, value)]))
    assert resp["error_code"] == kafka_raw.INVALID_TOPIC_EXCEPTION, resp
    broker.restart()
    assert committed(broker.bootstrap, group, topic, 1) == {0: 5}


def test_delete_topics_internal_topic_invalid_request(broker):
    create_topic(broker.bootstrap, "x", 1)
    commit(broker.bootstrap, "g-del", "x", {0: 1})
    a = clients.admin(broker.bootstrap)
    code = error_code(a.delete_topics([OFFSETS_TOPIC], request_timeout=20)[OFFSETS_TOPIC])
    assert code == KafkaError.INVALID_REQUEST
    assert clients.partition_count(broker.bootstrap, OFFSETS_TOPIC) is not None
    assert committed(broker.bootstrap, "g-del", "x", 1) == {0: 1}


def test_delete_records_internal_topic_invalid_topic_exception(broker):
    create_topic(broker.bootstrap, "y", 1)
    commit(broker.bootstrap, "g-dr", "y", {0: 2})
    a = clients.admin(broker.bootstrap)
    tp = TopicPartition(OFFSETS_TOPIC, 0, -1)
    code = error_code(a.delete_records([tp], request_timeout=20)[tp])
    assert code == KafkaError.TOPIC_EXCEPTION


def test_create_partitions_internal_topic_invalid_request(broker):
    create_topic(broker.bootstrap, "z", 1)
    commit(broker.bootstrap, "g-cp", "z", {0: 4})
    before = clients.partition_count(broker.bootstrap, OFFSETS_TOPIC)
    a = clients.admin(broker.bootstrap)
    for validate_only in (True, False):
        fs = a.create_partitions(
            [NewPartitions(OFFSETS_TOPIC, before + 1)], validate_only=validate_only, request_timeout=20
        )
        assert error_code(fs[OFFSETS_TOPIC]) == KafkaError.INVALID_REQUEST
    assert clients.partition_count(broker.bootstrap, OFFSETS_TOPIC) == before
    assert committed(broker.bootstrap, "g-cp", "z", 1) == {0: 4}


def test_create_topics_internal_name_invalid_topic_exception(broker):
    a = clients.admin(broker.bootstrap)
    fs = a.create_topics([NewTopic(TXN_TOPIC, num_partitions=3, replication_factor=1)], request_timeout=20)
    assert error_code(fs[TXN_TOPIC]) == KafkaError.TOPIC_EXCEPTION
    assert clients.partition_count(broker.bootstrap, TXN_TOPIC) is None


def test_alter_configs_internal_topic_cleanup_policy_must_stay_compact(broker):
    create_topic(broker.bootstrap, "w", 1)
    commit(broker.bootstrap, "g-ac", "w", {0: 6})
    a = clients.admin(broker.bootstrap)
    for policy in ("delete", "compact,delete"):
        entry = ConfigEntry("cleanup.policy", policy, incremental_operation=AlterConfigOpType.SET)
        resource = ConfigResource(ResourceType.TOPIC, OFFSETS_TOPIC, incremental_configs=[entry])
        (f,) = a.incremental_alter_configs([resource], request_timeout=20).values()
        assert error_code(f) == INVALID_CONFIG, policy
    # The legacy AlterConfigs replaces every override: leaving
    # cleanup.policy out would reset it to delete.
    resource = ConfigResource(ResourceType.TOPIC, OFFSETS_TOPIC, set_config={"retention.ms": "1000"})
    (f,) = a.alter_configs([resource], request_timeout=20).values()
    assert error_code(f) == INVALID_CONFIG
    # A change that keeps compaction is fine.
    entry = ConfigEntry("segment.ms", "3600000", incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ResourceType.TOPIC, OFFSETS_TOPIC, incremental_configs=[entry])
    (f,) = a.incremental_alter_configs([resource], request_timeout=20).values()
    f.result(timeout=admin_wait_s)
    broker.restart()
    assert committed(broker.bootstrap, "g-ac", "w", 1) == {0: 6}
