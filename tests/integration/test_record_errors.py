"""Produce v8+ record_errors (KIP-467): a batch refused by a record-level
rule names the records at fault, so clients fail only those and report the
others as INVALID_DIFFERENT_RECORD (or their own equivalent).

One batch of 100 records, every tenth without a key, to a compacted topic:
librdkafka (confluent-kafka) and kafka-python both read record_errors.
aiokafka 0.14 and kafkajs 2.2.4 do not (kafkajs speaks Produce up to v7,
which has no such field), so they can only fail the whole batch."""

from __future__ import annotations

import time

from confluent_kafka import KafkaError

import clients
from clients import create_topic

COUNT = 100
KEYLESS = {i for i in range(COUNT) if i % 10 == 7}


def key_of(i: int) -> bytes | None:
    return None if i in KEYLESS else f"k{i}".encode()


def test_produce_v8_record_errors_keyless_on_compacted_confluent(broker):
    topic = "rec-errors-librdkafka"
    create_topic(broker.bootstrap, topic, 1, {"cleanup.policy": "compact"})
    p = clients.producer(
        broker.bootstrap,
        **{"linger.ms": 2000, "batch.num.messages": 1000, "message.send.max.retries": 0},
    )
    reports: dict[int, int] = {}

    def on_delivery(err, msg):
        index = int(msg.value().decode())
        reports[index] = err.code() if err is not None else KafkaError.NO_ERROR

    for i in range(COUNT):
        p.produce(topic, key=key_of(i), value=str(i).encode(), partition=0, on_delivery=on_delivery)
    assert p.flush(60) == 0
    assert len(reports) == COUNT
    bad = {i for i, code in reports.items() if code == KafkaError.INVALID_RECORD}
    assert bad == KEYLESS, sorted(reports.items())
    others = {code for i, code in reports.items() if i not in KEYLESS}
    assert others == {KafkaError._INVALID_DIFFERENT_RECORD}, others


def test_produce_v8_record_errors_keyless_on_compacted_kafka_python(broker):
    from kafka import KafkaProducer
    from kafka.errors import InvalidRecordError, KafkaError as PyKafkaError

    topic = "rec-errors-kafka-python"
    create_topic(broker.bootstrap, topic, 1, {"cleanup.policy": "compact"})
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=2000, retries=0, batch_size=1 << 20)
    try:
        futures = [p.send(topic, key=key_of(i), value=str(i).encode(), partition=0) for i in range(COUNT)]
        p.flush(60)
    finally:
        p.close(5)
    failed = {}
    for i, f in enumerate(futures):
        assert f.is_done
        failed[i] = f.exception
    assert all(e is not None for e in failed.values()), "the batch must be refused"
    # kafka-python: the named records get the partition's error class
    # (InvalidRecordError), the others a plain KafkaError saying they were
    # part of a batch with invalid records.
    bad = {i for i, e in failed.items() if isinstance(e, InvalidRecordError)}
    assert bad == KEYLESS, {i: repr(e) for i, e in failed.items()}
    for i in set(range(COUNT)) - KEYLESS:
        assert type(failed[i]) is PyKafkaError, repr(failed[i])
        assert "part of a batch" in str(failed[i]), str(failed[i])


def test_produce_v8_record_errors_timestamp_out_of_range_confluent(broker):
    """INVALID_TIMESTAMP names the records out of bounds, not the batch."""
    topic = "rec-errors-timestamps"
    create_topic(broker.bootstrap, topic, 1, {"message.timestamp.before.max.ms": "60000"})
    p = clients.producer(
        broker.bootstrap,
        **{"linger.ms": 2000, "batch.num.messages": 1000, "message.send.max.retries": 0},
    )
    now = int(time.time() * 1000)
    old = {3, 4}
    reports: dict[int, int] = {}

    def on_delivery(err, msg):
        index = int(msg.value().decode())
        reports[index] = err.code() if err is not None else KafkaError.NO_ERROR

    for i in range(10):
        ts = now - 3_600_000 if i in old else now
        p.produce(topic, key=b"k", value=str(i).encode(), partition=0, timestamp=ts, on_delivery=on_delivery)
    assert p.flush(60) == 0
    # librdkafka fails each named record with INVALID_RECORD whatever the
    # partition's error (and without the record's message).
    bad = {i for i, code in reports.items() if code == KafkaError.INVALID_RECORD}
    assert bad == old, sorted(reports.items())
    assert {reports[i] for i in range(10) if i not in old} == {KafkaError._INVALID_DIFFERENT_RECORD}


def test_produce_v7_kafkajs_keyless_on_compacted_fails_the_whole_batch(broker):
    """kafkajs 2.2.4 speaks Produce up to v7, which carries no record_errors
    (they came with v8, KIP-467): it can only fail the whole batch, as it
    would against Kafka. It reports INVALID_RECORD and nothing is written."""
    import json
    import shutil
    import subprocess
    from pathlib import Path

    node = shutil.which("node")
    assert node, "node not installed"
    topic = "re-kafkajs"
    clients.create_topic(broker.bootstrap, topic, 1, {"cleanup.policy": "compact"})
    script = Path(__file__).resolve().parents[1] / "js" / "record_errors.js"
    out = subprocess.run([node, str(script), broker.bootstrap, topic], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["error"] == "INVALID_RECORD", result
    assert clients.watermarks(broker.bootstrap, topic, 0) == (0, 0)
