"""The log lifecycle with real clients: retention by time and by size,
compaction (latest value per key, tombstones), DeleteRecords. The broker
runs housekeeping every 200 ms (log.retention.check.interval.ms in TOML)."""

from __future__ import annotations

import json
import time

import pytest
from confluent_kafka import KafkaError, TopicPartition
from confluent_kafka.admin import OffsetSpec

import clients
from clients import consume_all, create_topic, produce_all, wait_for

check_interval_ms = 200
wait_s_max = 30.0


@pytest.fixture
def lifecycle_broker(broker_factory, tmp_path):
    cfg = tmp_path / "lifecycle.toml"
    cfg.write_text(f"log.retention.check.interval.ms = {check_interval_ms}\n")
    return broker_factory(extra_args=["--config", str(cfg)])


def earliest(b, topic: str, partition: int = 0) -> int:
    a = clients.admin(b.bootstrap)
    tp = TopicPartition(topic, partition)
    return a.list_offsets({tp: OffsetSpec.earliest()}, request_timeout=20)[tp].result(timeout=30).offset


def settled_earliest(b, topic: str) -> int | None:
    """The earliest offset if it stays put over three retention checks."""
    first = earliest(b, topic)
    time.sleep(3 * check_interval_ms / 1000)
    return first if earliest(b, topic) == first and first > 0 else None


def segment_files(b, topic: str, partition: int = 0) -> list:
    return sorted((b.data_dir / f"{topic}-{partition}").glob("*.log"))


def test_retention_by_time_deletes_old_segments(lifecycle_broker):
    b = lifecycle_broker
    topic = "ret-time"
    create_topic(b.bootstrap, topic, 1, {"segment.bytes": "2048", "retention.ms": "600000"})
    now = int(time.time() * 1000)
    old = [(f"old{i}".encode(), b"o" * 100, 0, now - 3_600_000) for i in range(100)]
    new = [(f"new{i}".encode(), b"n" * 100, 0, now) for i in range(100)]
    for chunk in range(0, 100, 10):  # several batches: segments roll between them
        produce_all(b.bootstrap, topic, old[chunk:chunk + 10])
    for chunk in range(0, 100, 10):
        produce_all(b.bootstrap, topic, new[chunk:chunk + 10])
    wait_for("earliest offset to move", lambda: earliest(b, topic) or None, timeout_s=wait_s_max)
    # Retention may take the old segments over more than one pass: wait until
    # the log start stops moving before comparing it with what a consumer sees.
    start = wait_for("log start to settle", lambda: settled_earliest(b, topic), timeout_s=wait_s_max)
    assert 0 < start <= 100
    recs = consume_all(b.bootstrap, topic, [0])
    assert recs[0].offset == start
    assert [r.key for r in recs if r.key.startswith(b"new")] == [f"new{i}".encode() for i in range(100)]
    assert all(r.offset >= start for r in recs)
    assert segment_files(b, topic)[0].name == f"{start:020}.log"


def test_retention_by_time_can_empty_the_log(lifecycle_broker):
    b = lifecycle_broker
    topic = "ret-all"
    create_topic(b.bootstrap, topic, 1, {"retention.ms": "1000"})
    produce_all(b.bootstrap, topic, [(b"k", b"v") for _ in range(20)])
    wait_for("every record to expire", lambda: earliest(b, topic) == 20, timeout_s=wait_s_max)
    produce_all(b.bootstrap, topic, [(b"k", b"after")])
    assert [r.value for r in consume_all(b.bootstrap, topic, [0])] == [b"after"]


def test_retention_bytes_bounds_partition_size(lifecycle_broker):
    b = lifecycle_broker
    topic = "ret-bytes"
    segment, bound = 4096, 20_000
    create_topic(b.bootstrap, topic, 1, {"segment.bytes": str(segment), "retention.bytes": str(bound)})
    for _ in range(50):
        produce_all(b.bootstrap, topic, [(b"k", b"x" * 100) for _ in range(10)])

    # Files on disk: closed segments at their size, the active one
    # preallocated up to a block past its data.
    slack = segment + 4096

    def file_size(f) -> int:
        # Retention may delete a segment between listing and stat.
        try:
            return f.stat().st_size
        except FileNotFoundError:
            return 0

    def size():
        total = sum(file_size(f) for f in segment_files(b, topic))
        return total if total <= bound + slack else None

    wait_for("partition within retention.bytes + one segment", size, timeout_s=wait_s_max)
    start = earliest(b, topic)
    assert start > 0
    assert len(consume_all(b.bootstrap, topic, [0])) == 500 - start


def test_compaction_keeps_latest_value_per_key(lifecycle_broker):
    b = lifecycle_broker
    topic = "compacted"
    config = {
        "cleanup.policy": "compact",
        "segment.bytes": "16384",
        "segment.ms": "1000",
        "min.cleanable.dirty.ratio": "0",
        "delete.retention.ms": "3000",
    }
    create_topic(b.bootstrap, topic, 1, config)
    keys, updates = 100, 5000
    recs = [(f"key{i % keys}".encode(), f"value{i}".encode(), 0) for i in range(updates)]
    acked = produce_all(b.bootstrap, topic, recs)
    latest = {}
    for (_, offset, value), rec in zip(sorted(acked, key=lambda a: a[1]), recs):
        latest[rec[0]] = (offset, value)
    tombstoned = [f"key{i}".encode() for i in range(10)]
    acked_t = produce_all(b.bootstrap, topic, [(k, None, 0) for k in tombstoned])
    for k, (_, offset, _) in zip(tombstoned, acked_t):
        latest[k] = (offset, None)
    time.sleep(1.2)  # past segment.ms: the next batch rolls
    produce_all(b.bootstrap, topic, [(b"sentinel", b"s", 0)])
    latest[b"sentinel"] = (updates + len(tombstoned), b"s")

    def compacted():
        got = consume_all(b.bootstrap, topic, [0])
        return got if len(got) == len(latest) else None

    got = wait_for("compaction to one record per key", compacted, timeout_s=wait_s_max)
    assert {r.key: (r.offset, r.value) for r in got} == latest
    assert len({r.key for r in got}) == len(got)
    assert earliest(b, topic) == 0

    # Tombstones go once older than delete.retention.ms, at the next cleaning.
    time.sleep(3.2)
    produce_all(b.bootstrap, topic, [(b"sentinel2", b"s2", 0)])
    time.sleep(1.2)
    produce_all(b.bootstrap, topic, [(b"sentinel3", b"s3", 0)])

    def without_tombstones():
        got = consume_all(b.bootstrap, topic, [0])
        return got if not any(r.key in tombstoned for r in got) else None

    got = wait_for("tombstones removed", without_tombstones, timeout_s=wait_s_max)
    values = {r.key: r.value for r in got}
    assert values[b"key50"] == latest[b"key50"][1]
    assert b"key5" not in values

    # The cleaner's progress is in the partition checkpoint, written after
    # each pass and kept across restarts (a restart does not clean the
    # whole log again).
    mark = cleaner_mark(b, topic)
    assert 0 < mark <= updates + len(tombstoned) + 3, f"clean_offset {mark}"
    b.kill9()
    b.start()
    assert cleaner_mark(b, topic) >= mark, "the mark survives a crash"
    b.restart()
    assert cleaner_mark(b, topic) >= mark, "and a clean restart"
    got = consume_all(b.bootstrap, topic, [0])
    assert {r.key: r.value for r in got} == values


def cleaner_mark(b, topic: str) -> int:
    """The cleaner's dirty mark in the partition checkpoint."""
    raw = (b.data_dir / f"{topic}-0" / "partition.checkpoint").read_text()
    return json.loads(raw).get("clean_offset", 0)


def test_delete_records_moves_earliest(lifecycle_broker):
    b = lifecycle_broker
    topic = "del-records"
    create_topic(b.bootstrap, topic, 2, {"segment.bytes": "2048"})
    for chunk in range(10):
        produce_all(b.bootstrap, topic, [(b"k", f"v{chunk}-{i}".encode() * 10, 0) for i in range(10)])
    a = clients.admin(b.bootstrap)
    tp = TopicPartition(topic, 0, 42)
    res = a.delete_records([tp], request_timeout=20)[tp].result(timeout=30)
    assert res.low_watermark == 42
    assert earliest(b, topic) == 42
    recs = consume_all(b.bootstrap, topic, [0])
    assert recs[0].offset == 42 and len(recs) == 58
    assert segment_files(b, topic)[0].name <= f"{42:020}.log"
    # Below the log start: OFFSET_OUT_OF_RANGE (librdkafka reports it as an
    # auto-offset-reset failure when the reset policy is 'error').
    c = clients.consumer(b.bootstrap, **{"auto.offset.reset": "error"})
    try:
        c.assign([TopicPartition(topic, 0, 10)])
        def out_of_range():
            for m in c.consume(10, timeout=0.5):
                if m.error() is not None and m.error().code() != KafkaError._PARTITION_EOF:
                    return m.error()
            return None
        err = wait_for("an out-of-range error", out_of_range, timeout_s=wait_s_max)
        assert err.code() in (KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE), err
    finally:
        c.close()
    # Past the high watermark: refused; -1 (high watermark) empties it.
    tp = TopicPartition(topic, 0, 1000)
    with pytest.raises(Exception):
        a.delete_records([tp], request_timeout=20)[tp].result(timeout=30)
    b.restart()
    assert earliest(b, topic) == 42
    a = clients.admin(b.bootstrap)  # fresh metadata after the restart
    tp = TopicPartition(topic, 0, -1)
    assert a.delete_records([tp], request_timeout=20)[tp].result(timeout=30).low_watermark == 100
