"""Compaction of compressed batches (issue 5): 100,000 updates over 1,000
keys produced by confluent-kafka with each codec, some keys tombstoned.
After cleaning, a read from earliest yields exactly the latest value per
key at its original offset, the cleaned batches keep their codec, the log
shrank, and tombstones go once delete.retention.ms has passed since they
were first cleaned (KIP-534 delete horizon). Read by a read_uncommitted
confluent consumer and by kafka-python.

kafka-python needs python-snappy, lz4 and zstandard for these codecs
(tests/requirements.txt)."""

from __future__ import annotations

import struct
import time

import pytest
from kafka import KafkaConsumer, TopicPartition as KTopicPartition

from clients import consume_all, create_topic, produce_all

check_interval_ms = 200
keys, updates, tombstoned = 1_000, 100_000, 50
delete_retention_ms = 8_000
codec_ids = {"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


@pytest.fixture
def cleaner_broker(broker_factory, tmp_path):
    cfg = tmp_path / "cleaner.toml"
    cfg.write_text(f"log.retention.check.interval.ms = {check_interval_ms}\n")
    return broker_factory(extra_args=["--config", str(cfg)])


def wait_for(what: str, check, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def segments(b, topic: str) -> list:
    return sorted((b.data_dir / f"{topic}-0").glob("*.log"))


def closed_bytes(b, topic: str) -> int:
    """Bytes of the closed segments (the active one is preallocated)."""
    return sum(f.stat().st_size for f in segments(b, topic)[:-1])


def batch_codecs(b, topic: str) -> set[int]:
    """Codec bits of every non-empty batch in the closed segments."""
    seen = set()
    for f in segments(b, topic)[:-1]:
        data, pos = f.read_bytes(), 0
        while pos + 61 <= len(data):
            length = struct.unpack_from(">i", data, pos + 8)[0]
            if length <= 0:
                break
            attributes = struct.unpack_from(">h", data, pos + 21)[0]
            count = struct.unpack_from(">i", data, pos + 57)[0]
            if count > 0:
                seen.add(attributes & 7)
            pos += length + 12
    return seen


def kafka_python_read(b, topic: str, expect: int) -> dict[bytes, tuple[int, bytes | None]]:
    c = KafkaConsumer(bootstrap_servers=b.bootstrap, enable_auto_commit=False, consumer_timeout_ms=3000)
    try:
        tp = KTopicPartition(topic, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        end = c.end_offsets([tp])[tp]
        out: dict[bytes, tuple[int, bytes | None]] = {}
        deadline = time.monotonic() + 60
        while c.position(tp) < end and time.monotonic() < deadline:
            for msgs in c.poll(timeout_ms=1000).values():
                for m in msgs:
                    assert m.key not in out, f"{m.key!r} twice"
                    out[m.key] = (m.offset, m.value)
        assert len(out) == expect, f"kafka-python read {len(out)} of {expect}"
        return out
    finally:
        c.close()


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compaction_compressed_latest_per_key(cleaner_broker, codec):
    b = cleaner_broker
    topic = f"compact-{codec}"
    create_topic(
        b.bootstrap,
        topic,
        1,
        {
            "cleanup.policy": "compact",
            "segment.bytes": "131072",
            "segment.ms": "1000",
            "min.cleanable.dirty.ratio": "0.01",
            "min.compaction.lag.ms": "5000",
            "delete.retention.ms": str(delete_retention_ms),
        },
    )
    recs = [(f"key{i % keys:04d}".encode(), f"value-{i}-{codec}".encode(), 0) for i in range(updates)]
    acked = produce_all(b.bootstrap, topic, recs, **{"compression.type": codec, "linger.ms": 20})
    assert len(acked) == updates
    # Deliveries of one partition arrive in produce order.
    latest: dict[bytes, tuple[int, bytes | None]] = {}
    for (_, offset, value), rec in zip(acked, recs):
        assert value == rec[1]
        latest[rec[0]] = (offset, value)
    dead = [f"key{i:04d}".encode() for i in range(0, keys, keys // tombstoned)]
    acked_t = produce_all(b.bootstrap, topic, [(k, None, 0) for k in dead], **{"compression.type": codec})
    tombstones_at = time.monotonic()
    for k, (_, offset, _) in zip(dead, acked_t):
        latest[k] = (offset, None)
    time.sleep(1.2)  # past segment.ms: the sentinel rolls, closing the rest
    (_, sentinel_offset, _), = produce_all(b.bootstrap, topic, [(b"sentinel", b"s", 0)])
    latest[b"sentinel"] = (sentinel_offset, b"s")
    before = closed_bytes(b, topic)

    read_uncommitted = {"isolation.level": "read_uncommitted"}

    def cleaned():
        got = consume_all(b.bootstrap, topic, [0], **read_uncommitted)
        return got if len(got) == len(latest) else None

    got = wait_for("compaction to one record per key", cleaned)
    assert {r.key: (r.offset, r.value) for r in got} == latest, "latest value per key at its offset"
    assert batch_codecs(b, topic) == {codec_ids[codec]}, "rewritten with the original codec"
    after = closed_bytes(b, topic)
    # `before` is measured once the data is in closed segments; with
    # min.compaction.lag.ms the cleaner has normally not started yet.
    assert after < before / 3, f"log shrank: {before} -> {after} bytes"

    # Tombstones go delete.retention.ms after their first cleaning, with
    # no new data needed to trigger the pass.
    alive = {k: v for k, v in latest.items() if v[1] is not None}

    def without_tombstones():
        got = consume_all(b.bootstrap, topic, [0], **read_uncommitted)
        return got if len(got) == len(alive) else None

    got = wait_for("tombstones removed", without_tombstones, timeout_s=delete_retention_ms / 1000 + 30)
    # Cleaning came after the tombstones were written, and they go no
    # sooner than delete.retention.ms after that cleaning.
    assert time.monotonic() - tombstones_at >= delete_retention_ms / 1000
    assert {r.key: (r.offset, r.value) for r in got} == alive
    assert kafka_python_read(b, topic, len(alive)) == alive
