"""Fetch served from the hot tail cache and from disk (cold, after a
restart empties the cache) returns byte-identical data; long-poll is woken
by appends; max_bytes / partition_max_bytes are respected.

Raw Fetch v11 requests compare the exact record bytes on the wire (the
broker serves stored batches untouched); confluent-kafka and kafka-python
consume the same data through their own decoders."""

from __future__ import annotations

import struct
import threading
import time

import clients
import kafka_raw
from kafka_raw import Reader, Writer

FETCH = 1
FETCH_V = 11  # last non-flexible version: simple to encode by hand
PARTITIONS = 3
VALUE_SIZES = (1, 100, 1000, 5000)
BATCH_BYTES_OVERHEAD_MAX = 100


def fetch_v11(
    conn: kafka_raw.RawConn,
    topic: str,
    wanted: list[tuple[int, int, int]],
    max_bytes: int = 50 * 1024 * 1024,
    min_bytes: int = 1,
    max_wait_ms: int = 0,
) -> dict[int, dict]:
    """One Fetch v11 of (partition, offset, partition_max_bytes); returns
    {partition: {error_code, high_watermark, log_start_offset, records}}."""
    w = Writer().int32(-1).int32(max_wait_ms).int32(min_bytes).int32(max_bytes)
    w.int8(0).int32(0).int32(-1)  # isolation, session id, session epoch (-1: no session)
    w.int32(1).string(topic).int32(len(wanted))
    for p, offset, pmax in wanted:
        w.int32(p).int32(-1).int64(offset).int64(-1).int32(pmax)
    w.int32(0).string("")  # forgotten topics, rack id
    r = Reader(conn.roundtrip(FETCH, FETCH_V, w.bytes()))
    r.int32()  # throttle
    assert r.int16() == 0, "top-level error"
    r.int32()  # session id
    out: dict[int, dict] = {}

    def partition(r: Reader) -> None:
        p = r.int32()
        d = {"error_code": r.int16(), "high_watermark": r.int64()}
        r.int64()  # last stable offset
        d["log_start_offset"] = r.int64()
        r.array(lambda r: (r.int64(), r.int64()))
        r.int32()  # preferred read replica
        d["records"] = r.bytes_() or b""
        out[p] = d

    topics = r.array(lambda r: (r.string(), r.array(partition)))
    assert topics and topics[0][0] == topic
    return out


def batch_spans(records: bytes) -> list[tuple[int, int, int]]:
    """(base offset, last offset, length) of each whole batch."""
    spans, pos = [], 0
    while pos + 12 <= len(records):
        base, length = struct.unpack_from(">qi", records, pos)
        total = 12 + length
        assert pos + total <= len(records), f"partial batch at {pos}"
        (last_delta,) = struct.unpack_from(">i", records, pos + 23)
        spans.append((base, base + last_delta, total))
        pos += total
    assert pos == len(records), "trailing bytes after the last batch"
    return spans


def read_partition(conn: kafka_raw.RawConn, topic: str, p: int, pmax: int = 64 * 1024) -> bytes:
    """Every byte of partition p, fetched from offset 0 in steps."""
    out, offset = bytearray(), 0
    while True:
        d = fetch_v11(conn, topic, [(p, offset, pmax)])[p]
        assert d["error_code"] == 0, d
        if offset >= d["high_watermark"]:
            return bytes(out)
        spans = batch_spans(d["records"])
        assert spans and spans[0][0] <= offset <= spans[0][1], f"fetch at {offset}: {spans[:1]}"
        out += d["records"]
        offset = spans[-1][1] + 1


def produce_mixed(bootstrap: str, topic: str, n: int) -> list[tuple]:
    recs = [
        (f"k{i}".encode(), bytes([i % 251]) * VALUE_SIZES[i % len(VALUE_SIZES)], i % PARTITIONS)
        for i in range(n)
    ]
    clients.produce_all(bootstrap, topic, recs, **{"linger.ms": 2, "batch.size": 16384})
    return recs


def consume_confluent(bootstrap: str, topic: str, n: int) -> list[tuple]:
    recs = clients.consume_all(bootstrap, topic, PARTITIONS, expect=n, **{"fetch.max.bytes": 1048576, "max.partition.fetch.bytes": 32768})
    return sorted((r.partition, r.offset, r.key, r.value) for r in recs)


def consume_kafka_python(bootstrap: str, topic: str, n: int) -> list[tuple]:
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_bytes=65536,
        max_partition_fetch_bytes=32768,
        check_crcs=True,
        consumer_timeout_ms=30000,
    )
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        out = []
        deadline = time.monotonic() + 60
        while len(out) < n and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=500).values():
                out += [(m.partition, m.offset, m.key, m.value) for m in recs]
        assert len(out) == n, f"kafka-python consumed {len(out)} of {n}"
        return sorted(out)
    finally:
        c.close()


def test_tail_and_cold_fetch_serve_identical_bytes(broker):
    topic = "fetch-paths"
    clients.create_topic(broker.bootstrap, topic, PARTITIONS)
    n = 2000
    produced = produce_mixed(broker.bootstrap, topic, n)
    expected_values = sorted((p, k, v) for k, v, p in produced)

    # Tail: everything was just written, so the cache serves it.
    with broker.raw() as conn:
        tail_bytes = {p: read_partition(conn, topic, p) for p in range(PARTITIONS)}
    tail_confluent = consume_confluent(broker.bootstrap, topic, n)
    tail_kpy = consume_kafka_python(broker.bootstrap, topic, n)
    assert tail_confluent == tail_kpy
    assert sorted((p, k, v) for p, _, k, v in tail_confluent) == expected_values

    # Cold: a restart empties the cache; the same bytes come from disk.
    broker.restart()
    with broker.raw() as conn:
        cold_bytes = {p: read_partition(conn, topic, p) for p in range(PARTITIONS)}
    for p in range(PARTITIONS):
        assert len(cold_bytes[p]) == len(tail_bytes[p]), f"partition {p} size differs"
        assert cold_bytes[p] == tail_bytes[p], f"partition {p}: cold bytes differ from tail bytes"
    assert consume_confluent(broker.bootstrap, topic, n) == tail_confluent
    assert consume_kafka_python(broker.bootstrap, topic, n) == tail_kpy

    # After the restart, new appends are tail-served again next to cold data.
    more = produce_mixed(broker.bootstrap, topic, 300)
    recs = consume_confluent(broker.bootstrap, topic, n + len(more))
    assert len(recs) == n + len(more)
    assert set(tail_confluent) <= set(recs), "cold records changed after new appends"
    for p in range(PARTITIONS):
        offsets = [o for q, o, _, _ in recs if q == p]
        assert offsets == list(range(len(offsets))), f"partition {p} offsets not dense"


def test_long_poll_woken_by_append(broker):
    topic = "fetch-long-poll"
    clients.create_topic(broker.bootstrap, topic, 1)
    with broker.raw(timeout_s=30) as conn:
        hw = fetch_v11(conn, topic, [(0, 0, 1 << 20)])[0]["high_watermark"]
        assert hw == 0
        result: dict = {}

        def poll() -> None:
            started = time.monotonic()
            result["data"] = fetch_v11(conn, topic, [(0, 0, 1 << 20)], max_wait_ms=10_000)[0]
            result["elapsed"] = time.monotonic() - started

        t = threading.Thread(target=poll)
        t.start()
        time.sleep(0.5)
        produced_at = time.monotonic()
        clients.produce_all(broker.bootstrap, topic, [(b"k", b"woken", 0)])
        t.join(timeout=15)
        assert not t.is_alive(), "long poll never returned"
        assert result["elapsed"] >= 0.4, "returned before the append"
        assert result["elapsed"] < 5.0, f"woken only after {result['elapsed']:.2f}s (timeout 10 s)"
        assert b"woken" in result["data"]["records"]
        assert time.monotonic() >= produced_at


def check_budgets(conn: kafka_raw.RawConn, topic: str) -> None:
    # partition_max_bytes: whole batches within it.
    for pmax in (1500, 4000, 20000):
        d = fetch_v11(conn, topic, [(0, 0, pmax)])[0]
        spans = batch_spans(d["records"])
        assert spans and len(d["records"]) <= pmax, (pmax, len(d["records"]))
    # First batch larger than partition_max_bytes: returned whole (KIP-74).
    d = fetch_v11(conn, topic, [(0, 0, 10)])[0]
    spans = batch_spans(d["records"])
    assert len(spans) == 1 and spans[0][2] > 10
    # Response max_bytes across partitions, in request order.
    for max_bytes in (3000, 9000):
        parts = fetch_v11(conn, topic, [(p, 0, 1 << 20) for p in range(PARTITIONS)], max_bytes=max_bytes)
        total = sum(len(parts[p]["records"]) for p in range(PARTITIONS))
        first = batch_spans(parts[0]["records"])
        assert total <= max(max_bytes, first[0][2]), (max_bytes, total)
        for p in range(PARTITIONS):
            batch_spans(parts[p]["records"])  # whole batches only


def test_fetch_budgets_respected_tail_and_cold(broker):
    topic = "fetch-budgets"
    clients.create_topic(broker.bootstrap, topic, PARTITIONS)
    with broker.raw() as conn:
        for i in range(30):
            for p in range(PARTITIONS):
                recs = [(None, bytes([i]) * (200 + 50 * j)) for j in range(1 + i % 4)]
                assert conn.produce(topic, p, kafka_raw.record_batch_v2(recs))["error_code"] == 0
        check_budgets(conn, topic)
    broker.restart()
    with broker.raw() as conn:
        check_budgets(conn, topic)
