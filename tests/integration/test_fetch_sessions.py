"""Fetch sessions (KIP-227, incremental fetch) against the real broker.

Raw Fetch requests walk a session through full -> incremental -> forgotten
-> bad epoch -> close and check the answers byte for byte (v11, names) and
field by field (v13, topic ids). kafka-python (which uses fetch sessions)
then reads 50 partitions through incremental fetches, and librdkafka (which
does not: it sends session id 0, epoch -1) reads the same data sessionless.
"""

from __future__ import annotations

import struct
import time

import clients
import kafka_raw
from kafka_raw import Reader, Writer
from test_metrics import scrape, total

FETCH = 1
FETCH_SESSION_ID_NOT_FOUND = 70
INVALID_FETCH_SESSION_EPOCH = 71
FETCH_SESSION_TOPIC_ID_ERROR = 106
PARTITION_MAX_BYTES = 1 << 20
# Must match FETCH_SESSIONS_PER_SHARD_MAX (src/fetch/session.rs).
FETCH_SESSIONS_PER_SHARD_MAX = 1000


def fetch_v11_body(
    topic: str,
    wanted: list[tuple[int, int]],
    session_id: int,
    epoch: int,
    forgotten: list[int] = (),
) -> bytes:
    """Fetch v11 of (partition, offset) in one topic, no long poll."""
    w = Writer().int32(-1).int32(0).int32(1).int32(50 << 20)
    w.int8(0).int32(session_id).int32(epoch)
    if wanted:
        w.int32(1).string(topic).int32(len(wanted))
        for p, offset in wanted:
            w.int32(p).int32(-1).int64(offset).int64(-1).int32(PARTITION_MAX_BYTES)
    else:
        w.int32(0)
    if forgotten:
        w.int32(1).string(topic).int32(len(forgotten))
        for p in forgotten:
            w.int32(p)
    else:
        w.int32(0)
    return w.string("").bytes()


def parse_v11(body: bytes) -> dict:
    r = Reader(body)
    out = {"throttle": r.int32(), "error_code": r.int16(), "session_id": r.int32(), "partitions": {}}

    def partition(r: Reader) -> tuple:
        p = r.int32()
        d = {"error_code": r.int16(), "high_watermark": r.int64(), "last_stable_offset": r.int64()}
        d["log_start_offset"] = r.int64()
        d["aborted"] = r.array(lambda r: (r.int64(), r.int64()))
        d["preferred_read_replica"] = r.int32()
        d["records"] = r.bytes_()
        return p, d

    out["topics"] = r.array(lambda r: (r.string(), r.array(partition)))
    for name, parts in out["topics"]:
        for p, d in parts:
            out["partitions"][(name, p)] = d
    assert r.remaining() == 0
    return out


def v11_partition_bytes(p: int, hw: int, records: bytes) -> bytes:
    """A FetchResponse v11 partition as Kafka encodes it (no error, no
    transactions, log start 0)."""
    w = Writer().int32(p).int16(0).int64(hw).int64(hw).int64(0).int32(-1).int32(-1)
    return w.bytes_(records).bytes()


def produce(conn: kafka_raw.RawConn, topic: str, p: int, n: int, tag: str) -> None:
    recs = [(f"{tag}-{i}".encode(), f"value-{tag}-{i}".encode()) for i in range(n)]
    resp = conn.produce(topic, p, kafka_raw.record_batch_v2(recs))
    assert resp["error_code"] == 0, resp


def sessionless_records(conn: kafka_raw.RawConn, topic: str, p: int, offset: int) -> bytes:
    out = parse_v11(conn.roundtrip(FETCH, 11, fetch_v11_body(topic, [(p, offset)], 0, -1)))
    assert out["session_id"] == 0
    return out["partitions"][(topic, p)]["records"]


def session_metrics(broker) -> dict[str, float]:
    _, samples = scrape(broker)
    names = (
        "corestream_fetch_sessions_open",
        "corestream_fetch_sessions_opened_total",
        "corestream_fetch_session_evictions_total",
        "corestream_fetch_session_incremental_requests_total",
    )
    return {n: total(samples, n) for n in names}


def test_fetch_session_v11_full_incremental_forgotten_bad_epoch_close(broker):
    topic = "sessions-v11"
    clients.create_topic(broker.bootstrap, topic, 3)
    with broker.raw() as conn:
        produce(conn, topic, 0, 5, "a")
        produce(conn, topic, 1, 3, "b")

        # Full request, epoch 0: opens a session, answers every partition.
        full = parse_v11(conn.roundtrip(FETCH, 11, fetch_v11_body(topic, [(0, 0), (1, 0), (2, 0)], 0, 0)))
        sid = full["session_id"]
        assert full["error_code"] == 0 and sid > 0, full
        assert sorted(full["partitions"]) == [(topic, 0), (topic, 1), (topic, 2)]
        assert full["partitions"][(topic, 0)]["high_watermark"] == 5
        assert full["partitions"][(topic, 1)]["high_watermark"] == 3
        assert full["partitions"][(topic, 2)]["records"] == b""
        assert full["partitions"][(topic, 0)]["records"] == sessionless_records(conn, topic, 0, 0)
        assert session_metrics(broker)["corestream_fetch_sessions_open"] == 1

        # Incremental, epoch 1, positions moved to the ends: nothing changed,
        # so the answer is exactly throttle, no error, the session, no topics.
        body = conn.roundtrip(FETCH, 11, fetch_v11_body(topic, [(0, 5), (1, 3)], sid, 1))
        assert body == struct.pack(">ihii", 0, 0, sid, 0)

        # New data on partition 2 only (the session still holds it at 0): the
        # answer has exactly that partition, byte for byte.
        produce(conn, topic, 2, 4, "c")
        body = conn.roundtrip(FETCH, 11, fetch_v11_body(topic, [], sid, 2))
        records = sessionless_records(conn, topic, 2, 0)
        expected = struct.pack(">ihii", 0, 0, sid, 1) + Writer().string(topic).int32(1).bytes()
        assert body == expected + v11_partition_bytes(2, 4, records)

        # Forget partition 0 and move partition 2; new data on 0 and 1: only
        # partition 1 is answered.
        body = conn.roundtrip(FETCH, 11, fetch_v11_body(topic, [(2, 4)], sid, 3, forgotten=[0]))
        assert body == struct.pack(">ihii", 0, 0, sid, 0)
        produce(conn, topic, 0, 2, "d")
        produce(conn, topic, 1, 2, "e")
        out = parse_v11(conn.roundtrip(FETCH, 11, fetch_v11_body(topic, [], sid, 4)))
        assert list(out["partitions"]) == [(topic, 1)], out
        assert out["partitions"][(topic, 1)]["high_watermark"] == 5
        assert out["partitions"][(topic, 1)]["records"] == sessionless_records(conn, topic, 1, 3)

        # A replayed epoch is refused at the top level, with no topics and
        # session id 0; the session itself survives at its next epoch.
        body = conn.roundtrip(FETCH, 11, fetch_v11_body(topic, [(1, 5)], sid, 4))
        assert body == struct.pack(">ihii", 0, INVALID_FETCH_SESSION_EPOCH, 0, 0)
        body = conn.roundtrip(FETCH, 11, fetch_v11_body(topic, [(1, 5)], sid, 5))
        assert body == struct.pack(">ihii", 0, 0, sid, 0)

        # An unknown session id.
        body = conn.roundtrip(FETCH, 11, fetch_v11_body(topic, [], sid + 1_000_000, 1))
        assert body == struct.pack(">ihii", 0, FETCH_SESSION_ID_NOT_FOUND, 0, 0)

        # Epoch -1 closes the session and is served sessionless (all listed
        # partitions answered, session id 0); the id is then unknown.
        out = parse_v11(conn.roundtrip(FETCH, 11, fetch_v11_body(topic, [(0, 5), (1, 5)], sid, -1)))
        assert out["error_code"] == 0 and out["session_id"] == 0
        assert sorted(out["partitions"]) == [(topic, 0), (topic, 1)]
        assert out["partitions"][(topic, 0)]["records"] == sessionless_records(conn, topic, 0, 5)
        body = conn.roundtrip(FETCH, 11, fetch_v11_body(topic, [], sid, 6))
        assert body == struct.pack(">ihii", 0, FETCH_SESSION_ID_NOT_FOUND, 0, 0)

    m = session_metrics(broker)
    assert m["corestream_fetch_sessions_open"] == 0, m
    assert m["corestream_fetch_sessions_opened_total"] == 1, m
    assert m["corestream_fetch_session_incremental_requests_total"] == 5, m


def topic_id(bootstrap: str, topic: str) -> bytes:
    from confluent_kafka import TopicCollection

    admin = clients.admin(bootstrap)  # kept alive until the answer is in
    desc = admin.describe_topics(TopicCollection([topic]))[topic].result(10)
    uid = desc.topic_id
    return struct.pack(">qq", uid.get_most_significant_bits(), uid.get_least_significant_bits())


def fetch_v13(
    conn: kafka_raw.RawConn,
    tid: bytes,
    wanted: list[tuple[int, int]],
    session_id: int,
    epoch: int,
    forgotten: list[int] = (),
) -> dict:
    """Fetch v13 (flexible, topics by id); returns the parsed answer."""
    w = Writer().int32(-1).int32(0).int32(1).int32(50 << 20)
    w.int8(0).int32(session_id).int32(epoch)
    w.uvarint(2 if wanted else 1)
    if wanted:
        w.raw(tid).uvarint(len(wanted) + 1)
        for p, offset in wanted:
            w.int32(p).int32(-1).int64(offset).int32(-1).int64(-1).int32(PARTITION_MAX_BYTES).uvarint(0)
        w.uvarint(0)
    w.uvarint(2 if forgotten else 1)
    if forgotten:
        w.raw(tid).uvarint(len(forgotten) + 1)
        for p in forgotten:
            w.int32(p)
        w.uvarint(0)
    w.uvarint(1).uvarint(0)  # rack id "", tagged fields
    cid = conn.send_request(FETCH, 13, w.bytes(), flexible_header=True)
    r = Reader(conn.recv_response(cid, flexible_header=True))
    out = {"throttle": r.int32(), "error_code": r.int16(), "session_id": r.int32(), "partitions": {}}
    for _ in range(r.uvarint() - 1):
        t = r._take(16)
        for _ in range(r.uvarint() - 1):
            p = r.int32()
            d = {"error_code": r.int16(), "high_watermark": r.int64()}
            r.int64()
            d["log_start_offset"] = r.int64()
            assert r.uvarint() == 0, "aborted transactions: null"
            r.int32()
            n = r.uvarint()
            d["records"] = r._take(n - 1) if n else None
            assert r.uvarint() == 0
            out["partitions"][(t, p)] = d
        assert r.uvarint() == 0
    assert r.uvarint() == 0 and r.remaining() == 0
    return out


def test_fetch_session_v13_topic_ids_incremental_and_forgotten(broker):
    topic = "sessions-v13"
    clients.create_topic(broker.bootstrap, topic, 2)
    tid = topic_id(broker.bootstrap, topic)
    with broker.raw() as conn:
        produce(conn, topic, 0, 3, "a")
        full = fetch_v13(conn, tid, [(0, 0), (1, 0)], 0, 0)
        sid = full["session_id"]
        assert full["error_code"] == 0 and sid > 0
        assert sorted(full["partitions"]) == [(tid, 0), (tid, 1)]
        assert full["partitions"][(tid, 0)]["high_watermark"] == 3
        assert full["partitions"][(tid, 0)]["records"] == sessionless_records(conn, topic, 0, 0)

        same = fetch_v13(conn, tid, [(0, 3)], sid, 1)
        assert same["error_code"] == 0 and same["session_id"] == sid and same["partitions"] == {}

        produce(conn, topic, 1, 2, "b")
        new = fetch_v13(conn, tid, [], sid, 2)
        assert list(new["partitions"]) == [(tid, 1)]
        assert new["partitions"][(tid, 1)]["records"] == sessionless_records(conn, topic, 1, 0)

        # Forget partition 1 by topic id: new data there is not answered.
        assert fetch_v13(conn, tid, [(1, 2)], sid, 3, forgotten=[1])["partitions"] == {}
        produce(conn, topic, 1, 1, "c")
        assert fetch_v13(conn, tid, [], sid, 4)["partitions"] == {}

        # The same session spoken to by name (v11) is refused.
        body = conn.roundtrip(FETCH, 11, fetch_v11_body(topic, [], sid, 5))
        assert body == struct.pack(">ihii", 0, FETCH_SESSION_TOPIC_ID_ERROR, 0, 0)

        # An unknown topic id in a session is answered with its error each time.
        unknown = b"\x01" * 16
        bad = fetch_v13(conn, unknown, [(0, 0)], sid, 5)
        assert bad["partitions"][(unknown, 0)]["error_code"] == 100  # UNKNOWN_TOPIC_ID
        again = fetch_v13(conn, tid, [], sid, 6)
        assert again["partitions"][(unknown, 0)]["error_code"] == 100


def test_fetch_session_cache_full_evicts_smaller_session(broker):
    """One connection stays on one shard, so its sessions share one cache:
    filling it with 1-partition sessions leaves no room for another, and a
    2-partition session evicts one of them (Kafka's rule)."""
    topic = "sessions-evict"
    clients.create_topic(broker.bootstrap, topic, 2)
    with broker.raw() as conn:
        one = fetch_v11_body(topic, [(0, 0)], 0, 0)
        ids = set()
        for _ in range(FETCH_SESSIONS_PER_SHARD_MAX):
            ids.add(parse_v11(conn.roundtrip(FETCH, 11, one))["session_id"])
        assert 0 not in ids and len(ids) == FETCH_SESSIONS_PER_SHARD_MAX
        assert parse_v11(conn.roundtrip(FETCH, 11, one))["session_id"] == 0, "cache full"
        two = parse_v11(conn.roundtrip(FETCH, 11, fetch_v11_body(topic, [(0, 0), (1, 0)], 0, 0)))
        assert two["session_id"] not in ids | {0}
    m = session_metrics(broker)
    assert m["corestream_fetch_sessions_open"] == FETCH_SESSIONS_PER_SHARD_MAX, m
    assert m["corestream_fetch_session_evictions_total"] == 1, m


PARTITIONS_MANY = 50
RECORDS_PER_PARTITION = 40


PRODUCE_ROUNDS = 8


def produce_many(bootstrap: str, topic: str) -> list[tuple]:
    """Records in PRODUCE_ROUNDS separate flushes, so each partition holds
    several batches and a consumer needs several fetches per partition."""
    recs = [
        (f"k{p}-{i}".encode(), f"v{p}-{i}".encode() * (1 + i % 7), p)
        for p in range(PARTITIONS_MANY)
        for i in range(RECORDS_PER_PARTITION)
    ]
    per_round = RECORDS_PER_PARTITION // PRODUCE_ROUNDS
    for r in range(PRODUCE_ROUNDS):
        round_recs = [
            (k, v, p)
            for p in range(PARTITIONS_MANY)
            for k, v, q in recs[p * RECORDS_PER_PARTITION + r * per_round :][:per_round]
        ]
        clients.produce_all(bootstrap, topic, round_recs, **{"linger.ms": 5})
    return sorted((p, k, v) for k, v, p in recs)


def consume_kafka_python(bootstrap: str, topic: str, n: int) -> list[tuple]:
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        enable_incremental_fetch_sessions=True,
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=512,  # several fetches per partition
        check_crcs=True,
    )
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS_MANY)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        out = []
        deadline = time.monotonic() + 60
        while len(out) < n and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=500).values():
                out += [(m.partition, m.offset, m.key, m.value) for m in recs]
        # A little longer: nothing more may arrive (no duplicates).
        for recs in c.poll(timeout_ms=500).values():
            out += [(m.partition, m.offset, m.key, m.value) for m in recs]
        return out
    finally:
        c.close()


def check_all_read(got: list[tuple], produced: list[tuple], who: str) -> None:
    assert len(got) == len(produced), f"{who}: {len(got)} records of {len(produced)}"
    assert sorted((p, k, v) for p, _, k, v in got) == produced, who
    for p in range(PARTITIONS_MANY):
        offsets = sorted(o for q, o, _, _ in got if q == p)
        assert offsets == list(range(RECORDS_PER_PARTITION)), f"{who}: partition {p}"


def test_fetch_session_kafka_python_50_partitions_reads_everything(broker):
    topic = "sessions-many"
    clients.create_topic(broker.bootstrap, topic, PARTITIONS_MANY)
    produced = produce_many(broker.bootstrap, topic)
    before = session_metrics(broker)
    got = consume_kafka_python(broker.bootstrap, topic, len(produced))
    check_all_read(got, produced, "kafka-python")
    after = session_metrics(broker)
    opened = after["corestream_fetch_sessions_opened_total"] - before["corestream_fetch_sessions_opened_total"]
    incremental = (
        after["corestream_fetch_session_incremental_requests_total"]
        - before["corestream_fetch_session_incremental_requests_total"]
    )
    assert opened >= 1, after
    # Each partition has PRODUCE_ROUNDS batches and a fetch returns one per
    # partition (max_partition_fetch_bytes is below a batch): at least
    # PRODUCE_ROUNDS fetches, all but the first incremental.
    assert incremental >= PRODUCE_ROUNDS - 1, f"kafka-python sent {incremental} incremental fetches"

    # librdkafka sends sessionless fetches (session id 0, epoch -1): same data.
    recs = clients.consume_all(broker.bootstrap, topic, PARTITIONS_MANY, expect=len(produced))
    check_all_read([(r.partition, r.offset, r.key, r.value) for r in recs], produced, "librdkafka")
    # What docs/ARCHITECTURE.md states about librdkafka 2.x: no session opened.
    final = session_metrics(broker)
    assert final["corestream_fetch_sessions_opened_total"] == after["corestream_fetch_sessions_opened_total"]
