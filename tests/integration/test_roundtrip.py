"""Produce and consume round trips through every client family we support."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

import clients
from clients import Rec, assert_dense, by_partition, consume_all, create_topic, produce_all

JS_DIR = Path(__file__).resolve().parents[1] / "js"


def check_keyed_roundtrip(recs: list[Rec], n: int, partitions: int, value_of) -> None:
    """Exact count; dense offsets per partition; every key in one partition;
    per key, values in produce order; every produced index exactly once."""
    assert len(recs) == n, f"consumed {len(recs)} records, produced {n}"
    assert_dense(recs)
    assert set(by_partition(recs)) <= set(range(partitions))
    key_partition: dict[bytes, int] = {}
    last_index: dict[bytes, int] = {}
    seen = set()
    for r in sorted(recs, key=lambda r: (r.partition, r.offset)):
        i = int(r.value.split(b"-", 1)[1].split(b"|", 1)[0])
        assert r.value == value_of(i), f"value mismatch at p{r.partition}@{r.offset}"
        assert r.key == f"key-{i % 1000}".encode(), f"key {r.key!r} does not match value index {i}"
        assert i not in seen, f"record {i} consumed twice"
        seen.add(i)
        assert key_partition.setdefault(r.key, r.partition) == r.partition, (
            f"key {r.key!r} found in partitions {key_partition[r.key]} and {r.partition}"
        )
        assert last_index.get(r.key, -1) < i, f"key {r.key!r}: record {i} after {last_index[r.key]}"
        last_index[r.key] = i
    assert seen == set(range(n))


def test_produce_consume_confluent(broker):
    topic = "roundtrip-confluent"
    n = 100_000
    create_topic(broker.bootstrap, topic, 3)

    def value_of(i: int) -> bytes:
        return f"v-{i}|".encode() + b"x" * (i % 97)

    records = [(f"key-{i % 1000}".encode(), value_of(i)) for i in range(n)]
    acked = produce_all(broker.bootstrap, topic, records, acks="all")
    acked_at = {(p, o): v for p, o, v in acked}
    assert len(acked_at) == n, "two records acknowledged at the same (partition, offset)"

    recs = consume_all(broker.bootstrap, topic, 3, expect=n)
    check_keyed_roundtrip(recs, n, 3, value_of)
    for r in recs:
        assert acked_at[(r.partition, r.offset)] == r.value, f"p{r.partition}@{r.offset} differs from its ack"
    # librdkafka's default partitioner (consistent_random, CRC32 of the key) spreads 1000 keys
    assert len(by_partition(recs)) == 3, "all 3 partitions should hold records"


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_roundtrip_confluent_acks(broker, acks):
    topic = f"acks-{acks}"
    create_topic(broker.bootstrap, topic, 2)
    n = 2000
    records = [(f"key-{i % 1000}".encode(), f"v-{i}".encode()) for i in range(n)]
    produce_all(broker.bootstrap, topic, records, acks=acks)
    recs = consume_all(broker.bootstrap, topic, 2, expect=n)
    check_keyed_roundtrip(recs, n, 2, lambda i: f"v-{i}".encode())


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_roundtrip_confluent_compression(broker, codec):
    """Compressed batches are stored as received and fetched back intact."""
    topic = f"compressed-{codec}"
    create_topic(broker.bootstrap, topic, 1)
    n = 5000
    records = [(f"key-{i % 1000}".encode(), (f"v-{i}|" + "abc" * (i % 50)).encode()) for i in range(n)]
    produce_all(broker.bootstrap, topic, records, **{"compression.type": codec})
    recs = consume_all(broker.bootstrap, topic, 1, expect=n)
    check_keyed_roundtrip(recs, n, 1, lambda i: (f"v-{i}|" + "abc" * (i % 50)).encode())


def test_roundtrip_headers_and_nulls(broker):
    topic = "headers-nulls"
    create_topic(broker.bootstrap, topic, 1)
    records = [
        (b"k1", b"v1", 0, None, [("h1", b"a"), ("h2", b"")]),
        (None, b"no-key", 0),
        (b"tombstone", None, 0),
        (b"", b"", 0),
        (b"big", os.urandom(512 * 1024), 0),
    ]
    produce_all(broker.bootstrap, topic, records, **{"message.max.bytes": 2 * 1024 * 1024})
    recs = consume_all(broker.bootstrap, topic, 1, expect=len(records))
    assert [r.offset for r in recs] == list(range(len(records)))
    assert [(r.key, r.value) for r in recs] == [(rec[0], rec[1]) for rec in records]
    assert recs[0].headers == (("h1", b"a"), ("h2", b""))


def test_roundtrip_many_partitions_cross_shard(broker):
    """8 partitions over 2 shards: one connection's requests name partitions
    owned by both shards, so produce and fetch are split and merged."""
    topic = "cross-shard"
    create_topic(broker.bootstrap, topic, 8)
    n = 8000
    records = [(f"key-{i % 1000}".encode(), f"v-{i}".encode(), i % 8) for i in range(n)]
    produce_all(broker.bootstrap, topic, records)
    recs = consume_all(broker.bootstrap, topic, 8, expect=n)
    assert len(recs) == n
    assert_dense(recs)
    for p, rs in by_partition(recs).items():
        assert [int(r.value[2:]) for r in rs] == list(range(p, n, 8))


# ---------------------------------------------------------------- kafka-python


def test_roundtrip_kafka_python(broker):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = "roundtrip-kafka-python"
    n = 5000
    adm = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20000)
    try:
        adm.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    finally:
        adm.close()
    clients.wait_for_partitions(broker.bootstrap, topic, 3)

    # InitProducerId is not implemented: idempotence (on by default in kafka-python 3) off
    prod = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5, enable_idempotence=False)
    futures = [prod.send(topic, key=f"key-{i % 1000}".encode(), value=f"v-{i}".encode()) for i in range(n)]
    prod.flush(timeout=60)
    metas = [f.get(timeout=60) for f in futures]
    prod.close()
    acked = {(m.partition, m.offset): i for i, m in enumerate(metas)}
    assert len(acked) == n

    cons = KafkaConsumer(
        bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=100
    )
    try:
        tps = [TopicPartition(topic, p) for p in range(3)]
        cons.assign(tps)
        cons.seek_to_beginning(*tps)
        recs: list[Rec] = []
        for _ in range(600):
            for tp, msgs in cons.poll(timeout_ms=200, max_records=10000).items():
                recs += [Rec(tp.partition, m.offset, m.key, m.value, m.timestamp) for m in msgs]
            if len(recs) >= n:
                break
        end = cons.end_offsets(tps)
    finally:
        cons.close()
    check_keyed_roundtrip(recs, n, 3, lambda i: f"v-{i}".encode())
    for r in recs:
        assert acked[(r.partition, r.offset)] == int(r.value[2:])
    counts = defaultdict(int)
    for r in recs:
        counts[r.partition] += 1
    assert {tp.partition: off for tp, off in end.items()} == {p: counts[p] for p in range(3)}


# ---------------------------------------------------------------- aiokafka


def test_roundtrip_aiokafka(broker):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.structs import TopicPartition

    topic = "roundtrip-aiokafka"
    n = 3000
    create_topic(broker.bootstrap, topic, 2)

    async def run() -> tuple[list, list[Rec]]:
        prod = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5)
        await prod.start()
        try:
            futs = [
                await prod.send(topic, key=f"key-{i % 1000}".encode(), value=f"v-{i}".encode())
                for i in range(n)
            ]
            metas = [await f for f in futs]
        finally:
            await prod.stop()
        cons = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False)
        await cons.start()
        recs: list[Rec] = []
        try:
            tps = [TopicPartition(topic, p) for p in range(2)]
            cons.assign(tps)
            await cons.seek_to_beginning(*tps)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 120
            while len(recs) < n and loop.time() < deadline:
                batch = await cons.getmany(timeout_ms=200, max_records=10000)
                for tp, msgs in batch.items():
                    recs += [Rec(tp.partition, m.offset, m.key, m.value, m.timestamp) for m in msgs]
            # one more poll: nothing beyond n may arrive
            for tp, msgs in (await cons.getmany(timeout_ms=300)).items():
                recs += [Rec(tp.partition, m.offset, m.key, m.value, m.timestamp) for m in msgs]
        finally:
            await cons.stop()
        return metas, recs

    metas, recs = asyncio.run(asyncio.wait_for(run(), timeout=240))
    check_keyed_roundtrip(recs, n, 2, lambda i: f"v-{i}".encode())
    acked = {(m.partition, m.offset): i for i, m in enumerate(metas)}
    assert len(acked) == n
    for r in recs:
        assert acked[(r.partition, r.offset)] == int(r.value[2:])


# ---------------------------------------------------------------- kcat


def kcat(*args: str, input: bytes | None = None, timeout: float = 120) -> bytes:
    exe = shutil.which("kcat")
    assert exe, "kcat not installed (scripts/test installs it)"
    res = subprocess.run([exe, *args], input=input, capture_output=True, timeout=timeout)
    assert res.returncode == 0, f"kcat {' '.join(args)} exited {res.returncode}: {res.stderr.decode()[-2000:]}"
    return res.stdout


def test_roundtrip_kcat(broker):
    """kcat 1.7.1 ships its own librdkafka (2.0.2), which negotiates versions
    differently from the one inside confluent-kafka."""
    topic = "roundtrip-kcat"
    create_topic(broker.bootstrap, topic, 2)
    n = 2000
    for p in (0, 1):
        lines = b"".join(f"key-{i}:p{p}-v{i}\n".encode() for i in range(n))
        kcat("-b", broker.bootstrap, "-P", "-t", topic, "-p", str(p), "-K:", "-X", "acks=all", input=lines)
    out = kcat(
        "-b", broker.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
        "-f", "%p %o %k %s\\n",
    )
    rows = [line.split(b" ") for line in out.splitlines()]
    assert len(rows) == 2 * n, f"kcat consumed {len(rows)} records, produced {2 * n}"
    for p in (0, 1):
        mine = [r for r in rows if r[0] == str(p).encode()]
        assert [int(r[1]) for r in mine] == list(range(n))
        assert [(r[2], r[3]) for r in mine] == [(f"key-{i}".encode(), f"p{p}-v{i}".encode()) for i in range(n)]
    # and the same records through librdkafka 2.16 (confluent-kafka)
    recs = consume_all(broker.bootstrap, topic, 2, expect=2 * n)
    assert sorted((r.partition, r.offset, r.value) for r in recs) == sorted(
        (int(r[0]), int(r[1]), r[3]) for r in rows
    )


def test_kcat_metadata_list(broker):
    create_topic(broker.bootstrap, "kcat-listed", 3)
    md = json.loads(kcat("-b", broker.bootstrap, "-L", "-J", "-t", "kcat-listed"))
    (t,) = [t for t in md["topics"] if t["topic"] == "kcat-listed"]
    assert sorted(p["partition"] for p in t["partitions"]) == [0, 1, 2]
    assert [b["name"] for b in md["brokers"]] == [broker.bootstrap]


# ---------------------------------------------------------------- kafkajs


def test_roundtrip_kafkajs(broker):
    """kafkajs has no manual-assign consumer (its consumer always joins a
    group, which the broker does not implement yet), so the script uses
    kafkajs for admin (createTopics, metadata, fetchTopicOffsets) and produce,
    and the records are read back here with librdkafka."""
    topic = "roundtrip-kafkajs"
    n = 1000
    node = shutil.which("node")
    assert node, "node not installed"
    assert (JS_DIR / "node_modules" / "kafkajs").is_dir(), "kafkajs not installed (run scripts/test)"
    res = subprocess.run(
        [node, str(JS_DIR / "roundtrip.js"), broker.bootstrap, topic, str(n)],
        capture_output=True,
        timeout=180,
    )
    assert res.returncode == 0, f"roundtrip.js failed ({res.returncode}):\n{res.stderr.decode()[-4000:]}"
    report = json.loads(res.stdout.decode().strip().splitlines()[-1])
    assert report["partitions"] == [0, 1, 2]
    assert sum(int(o["high"]) for o in report["offsets"]) == n
    recs = consume_all(broker.bootstrap, topic, 3, expect=n)
    check_keyed_roundtrip(recs, n, 3, lambda i: f"v-{i}".encode())
    acked = {(a["partition"], int(a["baseOffset"])) for a in report["acks"]}
    assert len(acked) == len(report["acks"])
    # every acknowledged batch starts at a record we read back
    have = {(r.partition, r.offset) for r in recs}
    assert acked <= have
