"""KIP-951 current-leader hints on a three-node cluster of real processes.

A Produce (v10+) or Fetch (v16+) that reaches a broker which does not lead
the partition is answered NOT_LEADER_OR_FOLLOWER with the leader's id and
epoch (CurrentLeader) and the leader's address (NodeEndpoints), so a client
can go to the new leader without a Metadata round trip.

The raw requests are encoded here from Kafka's JSON schemas
(ProduceRequest v10, FetchRequest v16 and their responses): both are
flexible versions, which `kafka_raw` does not encode.
"""

from __future__ import annotations

import struct
import threading
import time
import uuid

from confluent_kafka.admin import AdminClient
from confluent_kafka import TopicCollection

import clients
import kafka_raw
from kafka_raw import Reader, Writer
from test_cluster import LEADER_WAIT_S, cluster, leaders  # noqa: F401 - the fixture

NOT_LEADER_OR_FOLLOWER = 6
PRODUCE_HINT_VERSION = 10
FETCH_HINT_VERSION = 16
PARTITIONS = 6
# Records the producer has acked before the leader stops, and after it moved.
ACKED_BEFORE_MOVE = 100


# ------------------------------------------------ flexible-version coding


def compact_string(w: Writer, s: str | None) -> Writer:
    if s is None:
        return w.uvarint(0)
    b = s.encode()
    return w.uvarint(len(b) + 1).raw(b)


def compact_bytes(w: Writer, b: bytes | None) -> Writer:
    if b is None:
        return w.uvarint(0)
    return w.uvarint(len(b) + 1).raw(b)


def read_compact_string(r: Reader) -> str | None:
    n = r.uvarint()
    return None if n == 0 else r._take(n - 1).decode()


def read_compact_bytes(r: Reader) -> bytes | None:
    n = r.uvarint()
    return None if n == 0 else r._take(n - 1)


def read_compact_array(r: Reader, item) -> list | None:
    n = r.uvarint()
    return None if n == 0 else [item(r) for _ in range(n - 1)]


def read_tagged(r: Reader, known: dict) -> dict:
    """A tagged-field section; `known` maps tag -> decoder of its bytes."""
    out = {}
    for _ in range(r.uvarint()):
        tag = r.uvarint()
        data = r._take(r.uvarint())
        if tag in known:
            out[tag] = known[tag](Reader(data))
    return out


def leader_id_and_epoch(r: Reader) -> dict:
    out = {"leader_id": r.int32(), "leader_epoch": r.int32()}
    read_tagged(r, {})
    return out


def node_endpoints(r: Reader) -> list[dict]:
    def endpoint(r: Reader) -> dict:
        e = {"node_id": r.int32(), "host": read_compact_string(r), "port": r.int32()}
        e["rack"] = read_compact_string(r)
        read_tagged(r, {})
        return e

    return read_compact_array(r, endpoint) or []


def roundtrip_flexible(conn: kafka_raw.RawConn, api_key: int, version: int, body: bytes) -> Reader:
    cid = conn.send_request(api_key, version, body, flexible_header=True)
    return Reader(conn.recv_response(cid, flexible_header=True))


def produce_v10(conn: kafka_raw.RawConn, topic: str, partition: int, records: bytes) -> dict:
    """ProduceRequest v10 (acks=-1) of one batch; the partition's answer and
    the response's node endpoints."""
    w = Writer()
    compact_string(w, None)  # transactional_id
    w.int16(-1).int32(10_000)
    w.uvarint(2)  # one topic
    compact_string(w, topic)
    w.uvarint(2)  # one partition
    w.int32(partition)
    compact_bytes(w, records)
    w.uvarint(0).uvarint(0).uvarint(0)  # partition, topic, request tags
    r = roundtrip_flexible(conn, kafka_raw.PRODUCE, PRODUCE_HINT_VERSION, w.bytes())

    def part(r: Reader) -> dict:
        p = {"partition": r.int32(), "error_code": r.int16(), "base_offset": r.int64()}
        p["log_append_time_ms"] = r.int64()
        p["log_start_offset"] = r.int64()
        read_compact_array(r, lambda r: (r.int32(), read_compact_string(r), read_tagged(r, {})))
        p["error_message"] = read_compact_string(r)
        p["current_leader"] = read_tagged(r, {0: leader_id_and_epoch}).get(0)
        return p

    def topic_(r: Reader) -> tuple:
        name = read_compact_string(r)
        parts = read_compact_array(r, part)
        read_tagged(r, {})
        return name, parts

    [(name, [p])] = read_compact_array(r, topic_)
    assert name == topic
    r.int32()  # throttle_time_ms
    p["node_endpoints"] = read_tagged(r, {0: node_endpoints}).get(0, [])
    return p


def fetch_v16(conn: kafka_raw.RawConn, topic_id: uuid.UUID, partition: int) -> dict:
    """Sessionless FetchRequest v16 of one partition from offset 0, no
    wait; the partition's answer and the response's node endpoints."""
    w = Writer().int32(0).int32(1).int32(1 << 20).int8(0).int32(0).int32(-1)
    w.uvarint(2).raw(topic_id.bytes)  # one topic
    w.uvarint(2)  # one partition
    w.int32(partition).int32(-1).int64(0).int32(-1).int64(-1).int32(1 << 20)
    w.uvarint(0).uvarint(0)  # partition, topic tags
    w.uvarint(1)  # no forgotten topics
    compact_string(w, "")  # rack_id
    w.uvarint(0)
    r = roundtrip_flexible(conn, kafka_raw.FETCH, FETCH_HINT_VERSION, w.bytes())
    r.int32()  # throttle_time_ms
    assert r.int16() == 0  # top-level error
    r.int32()  # session_id

    def part(r: Reader) -> dict:
        p = {"partition": r.int32(), "error_code": r.int16(), "high_watermark": r.int64()}
        r.int64(), r.int64()  # last stable offset, log start offset
        read_compact_array(r, lambda r: (r.int64(), r.int64(), read_tagged(r, {})))
        r.int32()  # preferred_read_replica
        p["records"] = read_compact_bytes(r)
        p["current_leader"] = read_tagged(r, {1: leader_id_and_epoch}).get(1)
        return p

    def topic_(r: Reader) -> tuple:
        tid = uuid.UUID(bytes=r._take(16))
        parts = read_compact_array(r, part)
        read_tagged(r, {})
        return tid, parts

    [(tid, [p])] = read_compact_array(r, topic_)
    assert tid == topic_id
    p["node_endpoints"] = read_tagged(r, {0: node_endpoints}).get(0, [])
    return p


def topic_id_of(bootstrap: str, topic: str) -> uuid.UUID:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    desc = admin.describe_topics(TopicCollection([topic]))[topic].result(timeout=30)
    tid = desc.topic_id
    msb = tid.get_most_significant_bits() & (2**64 - 1)
    lsb = tid.get_least_significant_bits() & (2**64 - 1)
    return uuid.UUID(bytes=struct.pack(">QQ", msb, lsb))


def epochs(md: dict, topic: str) -> dict[int, int]:
    [t] = [t for t in md["topics"] if t["name"] == topic]
    return {p["partition"]: p["leader_epoch"] for p in t["partitions"]}


# ------------------------------------------------------------------ tests


def test_produce_v10_and_fetch_v16_to_a_non_leader_carry_the_leader_hint(cluster):
    topic = f"hint-{uuid.uuid4().hex[:8]}"
    clients.create_topic(cluster.bootstrap(1), topic, PARTITIONS)
    md = cluster.wait_for(
        "every partition led",
        lambda md: len(leaders(md, topic)) == PARTITIONS and -1 not in leaders(md, topic).values(),
        via=1,
        topics=[topic],
    )
    placed, epoch_of = leaders(md, topic), epochs(md, topic)
    # the addresses Metadata lists are the ones a hint must name
    address = {b["node_id"]: (b["host"], b["port"]) for b in md["brokers"]}
    topic_id = topic_id_of(cluster.bootstrap(), topic)
    batch = kafka_raw.record_batch_v2([(b"k", b"v")])
    checked = 0
    for partition, leader in placed.items():
        leader_node = cluster.nodes[leader]
        for via in (i for i in cluster.nodes if i != leader):
            with cluster.nodes[via].raw() as conn:
                p = produce_v10(conn, topic, partition, batch)
                assert p["error_code"] == NOT_LEADER_OR_FOLLOWER, p
                assert p["current_leader"] == {"leader_id": leader, "leader_epoch": epoch_of[partition]}, p
                host, port = address[leader]
                assert port == leader_node.port
                assert p["node_endpoints"] == [{"node_id": leader, "host": host, "port": port, "rack": None}], p
                f = fetch_v16(conn, topic_id, partition)
                assert f["error_code"] == NOT_LEADER_OR_FOLLOWER, f
                assert f["current_leader"] == p["current_leader"], f
                assert f["node_endpoints"] == p["node_endpoints"], f
                checked += 1
        # the leader itself takes the produce and serves it, with no hint
        with leader_node.raw() as conn:
            p = produce_v10(conn, topic, partition, batch)
            assert p["error_code"] == 0 and p["current_leader"] is None and p["node_endpoints"] == [], p
            f = fetch_v16(conn, topic_id, partition)
            assert f["error_code"] == 0 and f["high_watermark"] == 1 and f["records"], f
            assert f["current_leader"] is None and f["node_endpoints"] == [], f
    assert checked == PARTITIONS * 2


def test_confluent_kafka_keeps_producing_through_a_leader_move(cluster):
    """librdkafka 2.16 (KIP-951 aware) produces acks=all, idempotent, to an
    RF 3 partition while its leader stops cleanly (controlled shutdown
    moves the leadership): no delivery fails, and every record is read
    back once, in order."""
    topic = f"hint-move-{uuid.uuid4().hex[:8]}"
    clients.create_topic(
        cluster.bootstrap(1), topic, 1, config={"min.insync.replicas": "2"}, replication_factor=3
    )
    md = cluster.wait_for(
        "led with three in sync",
        lambda md: leaders(md, topic)[0] != -1
        and sorted(next(t for t in md["topics"] if t["name"] == topic)["partitions"][0]["isr"]) == [1, 2, 3],
        via=1,
        topics=[topic],
    )
    old_leader = leaders(md, topic)[0]
    survivor = next(i for i in cluster.nodes if i != old_leader)
    producer = clients.producer(
        cluster.bootstrap(survivor), **{"enable.idempotence": True, "linger.ms": 2}
    )
    acked: list[bytes] = []
    errors: list[str] = []
    stop = threading.Event()

    def on_delivery(err, msg):
        (errors.append(str(err)) if err is not None else acked.append(msg.value()))

    def produce_loop():
        i = 0
        while not stop.is_set():
            try:
                producer.produce(topic, key=b"k", value=f"v{i:06d}".encode(), partition=0, on_delivery=on_delivery)
                i += 1
            except BufferError:
                pass
            producer.poll(0.005)

    writer = threading.Thread(target=produce_loop, daemon=True)
    writer.start()
    try:
        # the producer is up (idempotent producer id, metadata) and acked
        # some records before the leader goes
        deadline = time.monotonic() + LEADER_WAIT_S
        while len(acked) < ACKED_BEFORE_MOVE and time.monotonic() < deadline and not errors:
            time.sleep(0.05)
        before_move = len(acked)
        cluster.nodes[old_leader].stop()
        md = cluster.wait_for(
            "another replica leads",
            lambda md: leaders(md, topic)[0] not in (-1, old_leader),
            via=survivor,
            topics=[topic],
            timeout_s=LEADER_WAIT_S,
        )
        moved_at = len(acked)
        deadline = time.monotonic() + LEADER_WAIT_S
        while len(acked) < moved_at + 200 and time.monotonic() < deadline and not errors:
            time.sleep(0.1)
    finally:
        stop.set()
        writer.join(timeout=10)
    assert producer.flush(60) == 0
    assert not errors, errors[:5]
    assert before_move >= ACKED_BEFORE_MOVE, f"{before_move} acknowledged before the move"
    assert len(acked) >= moved_at + 200, f"{len(acked)} acked, {moved_at} at the move: producing stalled"
    new_leader = leaders(md, topic)[0]
    got = clients.consume_all(cluster.bootstrap(new_leader), topic, 1, expect=len(acked))
    values = [r.value for r in got]
    assert values == sorted(values) and len(values) == len(set(values)), "reordered or duplicated"
    assert set(acked) <= set(values)
