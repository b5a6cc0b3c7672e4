"""ListOffsets: earliest, latest and by timestamp, through three clients."""

from __future__ import annotations

import time

from confluent_kafka import TopicPartition
from confluent_kafka.admin import OffsetSpec

import clients
import kafka_raw
from clients import create_topic, produce_all

# Record i of the fixture topic has timestamp T0 + i * STEP_MS.
STEP_MS = 1000
COUNT = 10


def seed(broker, topic: str, separate_batches: bool) -> int:
    """COUNT records with increasing CreateTime timestamps in partition 0 of a
    2-partition topic (partition 1 stays empty). Returns T0."""
    create_topic(broker.bootstrap, topic, 2)
    t0 = int(time.time() * 1000) - 3_600_000
    recs = [(b"k", f"v{i}".encode(), 0, t0 + i * STEP_MS) for i in range(COUNT)]
    if separate_batches:
        for r in recs:  # one flush per record: one batch per record
            produce_all(broker.bootstrap, topic, [r])
    else:
        produce_all(broker.bootstrap, topic, recs, **{"linger.ms": 1000})
    return t0


def admin_list_offsets(broker, topic: str, partition: int, spec) -> tuple[int, int]:
    a = clients.admin(broker.bootstrap)
    tp = TopicPartition(topic, partition)
    res = a.list_offsets({tp: spec}, request_timeout=20)[tp].result(timeout=30)
    return res.offset, res.timestamp


def test_list_offsets_earliest_latest_confluent(broker):
    topic = "lo-earliest-latest"
    seed(broker, topic, separate_batches=True)
    assert admin_list_offsets(broker, topic, 0, OffsetSpec.earliest())[0] == 0
    assert admin_list_offsets(broker, topic, 0, OffsetSpec.latest())[0] == COUNT
    assert admin_list_offsets(broker, topic, 1, OffsetSpec.earliest())[0] == 0
    assert admin_list_offsets(broker, topic, 1, OffsetSpec.latest())[0] == 0
    assert clients.watermarks(broker.bootstrap, topic, 0) == (0, COUNT)
    assert clients.watermarks(broker.bootstrap, topic, 1) == (0, 0)


def check_by_timestamp_confluent(broker, topic: str, t0: int) -> None:
    c = clients.consumer(broker.bootstrap)
    try:
        queries = {
            t0 - 50_000: 0,  # before everything: first record
            t0: 0,
            t0 + 1: 1,  # first record with timestamp >= query
            t0 + 3 * STEP_MS: 3,
            t0 + 3 * STEP_MS + 500: 4,
            t0 + (COUNT - 1) * STEP_MS: COUNT - 1,
            t0 + COUNT * STEP_MS: -1,  # after everything: no offset
        }
        for ts, want in queries.items():
            (got,) = c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=20)
            assert got.error is None, got.error
            assert got.offset == want, f"offsets_for_times(t0{ts - t0:+d} ms) = {got.offset}, want {want}"
        (empty,) = c.offsets_for_times([TopicPartition(topic, 1, t0)], timeout=20)
        assert empty.offset == -1
    finally:
        c.close()
    off, ts = admin_list_offsets(broker, topic, 0, OffsetSpec.for_timestamp(t0 + 3 * STEP_MS + 1))
    assert (off, ts) == (4, t0 + 4 * STEP_MS)


def test_list_offsets_by_timestamp_confluent(broker):
    topic = "lo-by-time-batches"
    t0 = seed(broker, topic, separate_batches=True)
    check_by_timestamp_confluent(broker, topic, t0)


def test_list_offsets_by_timestamp_within_batch(broker):
    """All records in one batch: the answer is the first *record* whose
    timestamp is >= the query (Kafka semantics), not the batch's base offset."""
    topic = "lo-by-time-one-batch"
    t0 = seed(broker, topic, separate_batches=False)
    recs = clients.consume_all(broker.bootstrap, topic, [0], expect=COUNT)
    assert [r.timestamp_ms for r in recs] == [t0 + i * STEP_MS for i in range(COUNT)]
    check_by_timestamp_confluent(broker, topic, t0)


def test_list_offsets_kafka_python(broker):
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP

    topic = "lo-kafka-python"
    t0 = seed(broker, topic, separate_batches=True)
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tp0, tp1 = KTP(topic, 0), KTP(topic, 1)
        assert c.beginning_offsets([tp0, tp1]) == {tp0: 0, tp1: 0}
        assert c.end_offsets([tp0, tp1]) == {tp0: COUNT, tp1: 0}
        got = c.offsets_for_times({tp0: t0 + 2 * STEP_MS + 1, tp1: t0})
        assert got[tp0].offset == 3 and got[tp0].timestamp == t0 + 3 * STEP_MS
        assert got[tp1] is None
        assert c.offsets_for_times({tp0: t0 + COUNT * STEP_MS})[tp0] is None
    finally:
        c.close()


def test_list_offsets_after_more_produce(broker):
    """latest moves with every acknowledged produce, across both shards."""
    topic = "lo-moving"
    create_topic(broker.bootstrap, topic, 4)
    for round_ in range(1, 4):
        produce_all(broker.bootstrap, topic, [(None, b"x", p) for p in range(4) for _ in range(5)])
        for p in range(4):
            assert admin_list_offsets(broker, topic, p, OffsetSpec.latest())[0] == 5 * round_
            assert admin_list_offsets(broker, topic, p, OffsetSpec.earliest())[0] == 0


# ------------------------------------------- MAX_TIMESTAMP, EARLIEST_LOCAL

MAX_TIMESTAMP = -3
EARLIEST_LOCAL = -4
LIST_OFFSETS = 2


def raw_list_offset(broker, version: int, topic: str, partition: int, timestamp: int) -> tuple[int, int, int]:
    """One-partition ListOffsets at `version` (flexible from v6), hand
    encoded: (error_code, offset, timestamp)."""
    flexible = version >= 6
    w = kafka_raw.Writer().int32(-1).int8(0)  # replica_id, isolation_level

    def name(s: str) -> None:
        if flexible:
            w.uvarint(len(s) + 1).raw(s.encode())
        else:
            w.string(s)

    def count(n: int) -> None:
        w.uvarint(n + 1) if flexible else w.int32(n)

    count(1)
    name(topic)
    count(1)
    w.int32(partition).int32(-1).int64(timestamp)  # current_leader_epoch (v4+)
    if flexible:
        w.uvarint(0).uvarint(0).uvarint(0)  # partition, topic, request tags
    with broker.raw() as conn:
        cid = conn.send_request(LIST_OFFSETS, version, w.bytes(), flexible_header=flexible)
        r = kafka_raw.Reader(conn.recv_response(cid, flexible_header=flexible))
    r.int32()  # throttle_time_ms
    r.uvarint() if flexible else r.int32()  # one topic
    r._take(r.uvarint() - 1) if flexible else r.string()
    r.uvarint() if flexible else r.int32()  # one partition
    assert r.int32() == partition
    error = r.int16()
    ts = r.int64()
    offset = r.int64()
    return error, offset, ts


def test_list_offsets_v7_max_timestamp_confluent(broker):
    """MAX_TIMESTAMP (-3): the record with the largest timestamp, wherever it
    sits (in its own batch or inside one); -1/-1 on an empty partition."""
    topic = "lo-max-ts"
    create_topic(broker.bootstrap, topic, 3)
    t0 = int(time.time() * 1000) - 3_600_000
    stamps = [t0, t0 + 5_000, t0 + 2_000, t0 + 5_000, t0 + 1_000]
    for ts in stamps:  # partition 0: one batch per record
        produce_all(broker.bootstrap, topic, [(b"k", b"v", 0, ts)])
    produce_all(broker.bootstrap, topic, [(b"k", b"v", 1, ts) for ts in stamps], **{"linger.ms": 1000})
    for partition in (0, 1):
        got = admin_list_offsets(broker, topic, partition, OffsetSpec.max_timestamp())
        assert got == (1, t0 + 5_000), (partition, got)
    assert admin_list_offsets(broker, topic, 2, OffsetSpec.max_timestamp()) == (-1, -1)
    assert raw_list_offset(broker, 7, topic, 0, MAX_TIMESTAMP) == (0, 1, t0 + 5_000)


def test_list_offsets_v8_earliest_local_and_sentinel_versions(broker):
    """EARLIEST_LOCAL (-4, v8+) is the log start offset here (no tiered
    storage); a sentinel below its version is INVALID_REQUEST."""
    topic = "lo-earliest-local"
    create_topic(broker.bootstrap, topic, 1)
    produce_all(broker.bootstrap, topic, [(b"k", b"v", 0) for _ in range(3)])
    a = clients.admin(broker.bootstrap)
    a.delete_records([TopicPartition(topic, 0, 2)])[TopicPartition(topic, 0, 2)].result(timeout=30)
    error, offset, _ = raw_list_offset(broker, 8, topic, 0, EARLIEST_LOCAL)
    assert (error, offset) == (0, 2)
    assert raw_list_offset(broker, 7, topic, 0, EARLIEST_LOCAL)[0] == kafka_raw.INVALID_REQUEST
    assert raw_list_offset(broker, 6, topic, 0, MAX_TIMESTAMP)[0] == kafka_raw.INVALID_REQUEST
    assert raw_list_offset(broker, 5, topic, 0, -2) == (0, 2, -1)
