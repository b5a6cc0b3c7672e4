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

import kafka_raw
from clients import batch_headers, consume_all, create_topic, produce_all, wait_for
from test_fetch_paths import batch_spans, fetch_v11

check_interval_ms = 200
keys, updates, tombstoned = 1_000, 100_000, 50
delete_retention_ms = 8_000
codec_ids = {"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


@pytest.fixture
def cleaner_broker(broker_factory, tmp_path):
    cfg = tmp_path / "cleaner.toml"
    cfg.write_text(f"log.retention.check.interval.ms = {check_interval_ms}\n")
    return broker_factory(extra_args=["--config", str(cfg)])


def segments(b, topic: str) -> list:
    return sorted((b.data_dir / f"{topic}-0").glob("*.log"))


def closed_bytes(b, topic: str) -> int:
    """Bytes of the closed segments (the active one is preallocated)."""
    return sum(f.stat().st_size for f in segments(b, topic)[:-1])


def batch_codecs(b, topic: str) -> set[int]:
    """Codec bits of every non-empty batch in the closed segments."""
    seen = set()
    for f in segments(b, topic)[:-1]:
        for attributes, count in batch_headers(f.read_bytes()):
            if count > 0:
                seen.add(attributes & 7)
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
    # librdkafka sends a batch uncompressed when compressing would not make
    # it smaller (a batch of one or two records, on a loaded machine), so
    # the codecs to keep are those the closed segments hold before cleaning.
    codecs_before = batch_codecs(b, topic)
    assert codec_ids[codec] in codecs_before, codecs_before

    read_uncommitted = {"isolation.level": "read_uncommitted"}

    def cleaned():
        got = consume_all(b.bootstrap, topic, [0], **read_uncommitted)
        return got if len(got) == len(latest) else None

    got = wait_for("compaction to one record per key", cleaned)
    assert {r.key: (r.offset, r.value) for r in got} == latest, "latest value per key at its offset"
    codecs_after = batch_codecs(b, topic)
    assert codec_ids[codec] in codecs_after and codecs_after <= codecs_before, (
        f"rewritten with the original codecs: {codecs_before} -> {codecs_after}"
    )
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


def test_fetch_v11_steps_over_segments_the_cleaner_emptied(cleaner_broker):
    """Twenty segments, each rewriting the same keys: after cleaning all
    but the newest closed segment hold one empty batch. librdkafka counts a
    response with no message as too small and reports MSG_SIZE_TOO_LARGE
    after ten, so a fetch landing on an emptied segment reads on to the
    records that follow (shard/partition/read.rs)."""
    b = cleaner_broker
    topic = "compact-emptied"
    create_topic(
        b.bootstrap,
        topic,
        1,
        {
            "cleanup.policy": "compact",
            "segment.bytes": "2048",
            "min.cleanable.dirty.ratio": "0.01",
            "min.compaction.lag.ms": "0",
        },
    )
    rounds, round_keys = 20, 5
    latest: dict[bytes, tuple[int, bytes]] = {}
    for r in range(rounds):
        recs = [(f"k{i}".encode(), f"v{r}".encode() * 80, 0) for i in range(round_keys)]
        # One batch per round (linger), about 1 KiB: each round rolls a segment.
        for (_, offset, value), rec in zip(produce_all(b.bootstrap, topic, recs, **{"linger.ms": 50}), recs):
            latest[rec[0]] = (offset, value)

    def emptied():
        files = segments(b, topic)[:-1]
        empty = [f for f in files if f.stat().st_size == 61]
        return empty if len(empty) >= 10 else None

    empty = wait_for("the cleaner to empty at least ten segments", emptied)
    got = consume_all(b.bootstrap, topic, [0], **{"isolation.level": "read_uncommitted"})
    assert {r.key: (r.offset, r.value) for r in got} == latest

    # A raw fetch at the first emptied segment returns its empty batch and
    # the batches after it, up to the first one holding records.
    first = int(empty[0].stem)
    with kafka_raw.RawConn(b.host, b.port) as conn:
        d = fetch_v11(conn, topic, [(0, first, 1 << 20)])[0]
    assert d["error_code"] == 0
    counts = [struct.unpack_from(">i", d["records"], start + 57)[0] for start in batch_starts(d["records"])]
    assert counts[0] == 0, "starts with the emptied batch"
    assert any(c > 0 for c in counts), f"records follow the emptied batches: {counts}"


def batch_starts(records: bytes) -> list[int]:
    starts, pos = [], 0
    for _, _, total in batch_spans(records):
        starts.append(pos)
        pos += total
    return starts
