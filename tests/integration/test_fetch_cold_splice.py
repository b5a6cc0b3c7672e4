"""Cold fetches (data no longer in the tail cache, after a restart) go from
the segment files to the socket with io_uring splice: no user-space copy.

The copy-fallback counter must stay 0 while the splice counter grows by
at least the record bytes served; the bytes must be identical to what the
tail cache served before the restart, across segment boundaries, at the
log start and end, with budgets cutting inside a batch, and through real
clients (librdkafka, kafka-python).
"""

from __future__ import annotations

import struct

import clients
import kafka_raw
from test_fetch_paths import (
    PARTITIONS,
    batch_spans,
    consume_confluent,
    consume_kafka_python,
    fetch_v11,
    produce_mixed,
    read_partition,
)
from test_metrics import scrape, total

SEGMENT_BYTES = 64 * 1024  # the smallest allowed: many segment boundaries


def fetch_counters(broker) -> dict[str, float]:
    _, samples = scrape(broker)
    names = (
        "corestream_fetch_splice_bytes_total",
        "corestream_fetch_copy_fallback_bytes_total",
        "corestream_tail_cache_hit_bytes_total",
        "corestream_tail_cache_miss_bytes_total",
    )
    return {n: total(samples, n) for n in names}


def check_cold_budgets(conn: kafka_raw.RawConn, topic: str, tail_bytes: dict[int, bytes]) -> None:
    """Whole batches within partition_max_bytes (the first one whole even if
    larger, KIP-74), and within the response's max_bytes in request order;
    always a prefix of the partition's bytes."""
    first_len = batch_spans(tail_bytes[0])[0][2]
    for pmax in (10, first_len - 1, first_len, first_len + 1, 3 * first_len + 7, 100_000):
        d = fetch_v11(conn, topic, [(0, 0, pmax)])[0]
        spans = batch_spans(d["records"])
        assert spans and len(d["records"]) <= max(pmax, first_len), (pmax, len(d["records"]))
        assert tail_bytes[0].startswith(d["records"])
    for max_bytes in (first_len // 2, 2 * first_len + 1):
        parts = fetch_v11(conn, topic, [(p, 0, 1 << 20) for p in range(PARTITIONS)], max_bytes=max_bytes)
        got = sum(len(parts[p]["records"]) for p in range(PARTITIONS))
        assert got <= max(max_bytes, first_len), (max_bytes, got)
        for p in range(PARTITIONS):
            batch_spans(parts[p]["records"])
            assert tail_bytes[p].startswith(parts[p]["records"])


def test_cold_fetch_is_spliced_never_copied_across_segments(broker):
    topic = "cold-splice"
    clients.create_topic(broker.bootstrap, topic, PARTITIONS, config={"segment.bytes": str(SEGMENT_BYTES)})
    n = 3000
    produced = produce_mixed(broker.bootstrap, topic, n)
    with broker.raw() as conn:
        tail_bytes = {p: read_partition(conn, topic, p) for p in range(PARTITIONS)}
    assert all(len(b) > 3 * SEGMENT_BYTES for b in tail_bytes.values()), "want several segments"
    tail_confluent = consume_confluent(broker.bootstrap, topic, n)
    assert sorted((p, k, v) for p, _, k, v in tail_confluent) == sorted((p, k, v) for k, v, p in produced)

    broker.restart()
    before = fetch_counters(broker)
    assert before["corestream_fetch_splice_bytes_total"] == 0
    with broker.raw() as conn:
        cold_bytes = {p: read_partition(conn, topic, p) for p in range(PARTITIONS)}
        for p in range(PARTITIONS):
            assert cold_bytes[p] == tail_bytes[p], f"partition {p}: cold bytes differ"
        # The log end: empty records, high watermark given.
        end = len(batch_spans(tail_bytes[0]))
        hw = fetch_v11(conn, topic, [(0, 0, 1 << 20)])[0]["high_watermark"]
        last = fetch_v11(conn, topic, [(0, hw, 1 << 20)])[0]
        assert last["error_code"] == 0 and last["records"] == b"" and end > 0
        # Budgets cutting inside batches, KIP-74 first batch, response max.
        check_cold_budgets(conn, topic, tail_bytes)
    after_raw = fetch_counters(broker)
    spliced = after_raw["corestream_fetch_splice_bytes_total"]
    assert spliced >= sum(len(b) for b in cold_bytes.values()), after_raw
    assert after_raw["corestream_tail_cache_hit_bytes_total"] == 0, after_raw

    assert consume_confluent(broker.bootstrap, topic, n) == tail_confluent
    kpy = consume_kafka_python(broker.bootstrap, topic, n)
    assert sorted((p, k, v) for p, _, k, v in kpy) == sorted((p, k, v) for p, _, k, v in tail_confluent)

    final = fetch_counters(broker)
    assert final["corestream_fetch_copy_fallback_bytes_total"] == 0, final
    assert final["corestream_fetch_splice_bytes_total"] >= spliced + 2 * sum(
        len(b) for b in cold_bytes.values()
    ), final


def test_cold_fetch_at_the_log_start_after_delete_records(broker):
    """A fetch at the (moved) log start is served from the middle of a
    segment file; below it is OFFSET_OUT_OF_RANGE."""
    topic = "cold-splice-start"
    clients.create_topic(broker.bootstrap, topic, 1, config={"segment.bytes": str(SEGMENT_BYTES)})
    with broker.raw() as conn:
        for i in range(200):
            recs = [(None, bytes([i % 256]) * 700) for _ in range(3)]
            assert conn.produce(topic, 0, kafka_raw.record_batch_v2(recs))["error_code"] == 0
        everything = read_partition(conn, topic, 0)
    spans = batch_spans(everything)
    cut = spans[len(spans) // 2 + 1][0]  # a batch start in a later segment
    from confluent_kafka import TopicPartition

    admin = clients.admin(broker.bootstrap)
    res = admin.delete_records([TopicPartition(topic, 0, cut)])
    for f in res.values():
        f.result(10)
    broker.restart()
    with broker.raw() as conn:
        d = fetch_v11(conn, topic, [(0, cut, 1 << 20)])[0]
        assert d["error_code"] == 0 and d["log_start_offset"] == cut
        first = batch_spans(d["records"])[0]
        assert first[0] == cut
        offset_in = sum(s[2] for s in spans if s[0] < cut)
        assert d["records"] == everything[offset_in : offset_in + len(d["records"])]
        assert fetch_v11(conn, topic, [(0, cut - 1, 1 << 20)])[0]["error_code"] == 1  # OFFSET_OUT_OF_RANGE
    counters = fetch_counters(broker)
    assert counters["corestream_fetch_copy_fallback_bytes_total"] == 0, counters
    assert counters["corestream_fetch_splice_bytes_total"] >= len(d["records"]), counters


def test_cold_fetch_read_committed_cuts_file_ranges_at_the_lso(broker):
    """read_committed on cold data: aborted records are dropped by the
    client from the aborted-transaction list, an open transaction stops the
    read at its first offset (the cut works on file-range batch extents),
    and nothing is copied."""
    from test_transactions import READ_COMMITTED, READ_UNCOMMITTED, txn_producer, values

    topic = "cold-splice-txn"
    clients.create_topic(broker.bootstrap, topic, 2)
    p = txn_producer(broker.bootstrap, "cold-txn-1")
    p.begin_transaction()
    for i in range(200):
        p.produce(topic, value=b"c%d" % i, partition=i % 2)
    p.commit_transaction(30)
    p.begin_transaction()
    for i in range(100):
        p.produce(topic, value=b"a%d" % i, partition=i % 2)
    p.flush(30)
    p.abort_transaction(30)
    p.begin_transaction()
    p.produce(topic, value=b"open", partition=0)
    p.flush(30)  # left open across the restart
    clients.produce_all(broker.bootstrap, topic, [(None, b"plain-after", 0), (None, b"plain-1", 1)])
    broker.restart()
    committed = clients.consume_all(broker.bootstrap, topic, 2, **READ_COMMITTED)
    # Partition 0 stops at the open transaction; partition 1 has none open.
    assert values(committed) == sorted([b"c%d" % i for i in range(200)] + [b"plain-1"])
    everything = clients.consume_all(broker.bootstrap, topic, 2, expect=303, **READ_UNCOMMITTED)
    assert len(everything) == 303
    counters = fetch_counters(broker)
    assert counters["corestream_fetch_copy_fallback_bytes_total"] == 0, counters
    assert counters["corestream_fetch_splice_bytes_total"] > 0, counters



def segment_file_batches(partition_dir) -> bytes:
    """The batches of a partition's segment files, in offset order (what a
    fetch from offset 0 must return), without the zero padding after the
    last batch of a file."""
    out = bytearray()
    for f in sorted(partition_dir.glob("*.log"), key=lambda f: int(f.stem)):
        data, pos = f.read_bytes(), 0
        while pos + 12 <= len(data):
            length = struct.unpack_from(">i", data, pos + 8)[0]
            if length <= 0:
                break
            out += data[pos : pos + 12 + length]
            pos += 12 + length
    return bytes(out)


def test_fetch_v11_with_the_tail_cache_off_splices_what_was_just_written(broker_factory):
    """`--tail-cache-bytes 0`: nothing is cached, so a fetch right after the
    produce (no restart) is spliced from the segment files; the bytes are
    the files' batches exactly, and a real client reads every record."""
    b = broker_factory(extra_args=["--tail-cache-bytes", "0"])
    topic = "tail-cache-off"
    n = 1500
    clients.create_topic(b.bootstrap, topic, PARTITIONS, config={"segment.bytes": str(SEGMENT_BYTES)})
    produced = produce_mixed(b.bootstrap, topic, n)
    with b.raw() as conn:
        served = {p: read_partition(conn, topic, p) for p in range(PARTITIONS)}
    got = consume_confluent(b.bootstrap, topic, n)
    assert sorted((p, k, v) for p, _, k, v in got) == sorted((p, k, v) for k, v, p in produced)
    counters = fetch_counters(b)
    assert counters["corestream_fetch_copy_fallback_bytes_total"] == 0, counters
    assert counters["corestream_tail_cache_hit_bytes_total"] == 0, counters
    assert counters["corestream_fetch_splice_bytes_total"] >= 2 * sum(len(v) for v in served.values()), counters
    b.stop()
    for p in range(PARTITIONS):
        assert len(batch_spans(served[p])) > 1
        assert served[p] == segment_file_batches(b.data_dir / f"{topic}-{p}"), f"partition {p}"
