"""Issue: a read_committed consumer long-polling while a transaction was
aborted received the transaction's records (no aborted-transactions entry,
the abort marker only in the next response). Stress: a transactional
producer commits and aborts transactions over several partitions while
read_committed consumers (librdkafka and kafka-python) long-poll; no
aborted record may ever be delivered, and every committed one is
delivered once, in order.

CORESTREAM_TXN_STRESS_S sets the producing time (default 8 s in
scripts/test; e.g. 300 for the long run the issue asks for).
"""

from __future__ import annotations

import os
import random
import threading
import time

import clients
from kafka import KafkaConsumer

TOPIC = "txn-stress"
PARTITIONS = 4
RECORDS_PER_PARTITION_MAX = 125
STRESS_S = float(os.environ.get("CORESTREAM_TXN_STRESS_S", "8"))
DRAIN_WAIT_S_MAX = 60.0


def produce_transactions(bootstrap: str, stop_at: float, seed: int) -> tuple[dict[int, list[bytes]], int]:
    """Commits or aborts (about half each) transactions of up to 125
    records per partition until `stop_at`. Returns the committed values per
    partition in order, and the count of aborted records."""
    rng = random.Random(seed)
    producer = clients.producer(
        bootstrap, **{"transactional.id": f"stress-{seed}", "enable.idempotence": True, "linger.ms": 2}
    )
    producer.init_transactions(30)
    committed: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
    aborted = 0
    txn = 0
    while time.monotonic() < stop_at:
        commit = rng.random() < 0.5
        tag = b"c" if commit else b"a"
        producer.begin_transaction()
        written: dict[int, list[bytes]] = {}
        for partition in range(PARTITIONS):
            count = rng.randint(1, RECORDS_PER_PARTITION_MAX)
            values = [b"%s-%d-%d-%d" % (tag, txn, partition, i) for i in range(count)]
            for value in values:
                producer.produce(TOPIC, value=value, partition=partition)
            written[partition] = values
        producer.flush(30)
        if commit:
            producer.commit_transaction(30)
            for partition, values in written.items():
                committed[partition].extend(values)
        else:
            producer.abort_transaction(30)
            aborted += sum(len(v) for v in written.values())
        txn += 1
    return committed, aborted


class Collected:
    """What one consumer delivered, per partition, in delivery order."""

    def __init__(self) -> None:
        self.values: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
        self.lock = threading.Lock()

    def add(self, partition: int, value: bytes) -> None:
        with self.lock:
            self.values[partition].append(value)

    def count(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.values.values())


def consume_librdkafka(bootstrap: str, out: Collected, stop: threading.Event) -> None:
    consumer = clients.consumer(
        bootstrap,
        **{
            "group.id": "stress-rdkafka",
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 500,
        },
    )
    consumer.subscribe([TOPIC])
    try:
        while not stop.is_set():
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            out.add(msg.partition(), msg.value())
    finally:
        consumer.close()


def consume_kafka_python(bootstrap: str, out: Collected, stop: threading.Event) -> None:
    consumer = KafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        group_id="stress-kafka-python",
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        fetch_max_wait_ms=500,
    )
    try:
        while not stop.is_set():
            for tp, records in consumer.poll(timeout_ms=200).items():
                for record in records:
                    out.add(tp.partition, record.value)
    finally:
        consumer.close()


def test_txn_read_committed_consumers_never_deliver_aborted_records_under_load(broker):
    clients.create_topic(broker.bootstrap, TOPIC, PARTITIONS)
    seed = random.randrange(1 << 30)
    print(f"seed {seed}, producing for {STRESS_S} s")
    stop = threading.Event()
    collected = {"librdkafka": Collected(), "kafka-python": Collected()}
    threads = [
        threading.Thread(target=consume_librdkafka, args=(broker.bootstrap, collected["librdkafka"], stop)),
        threading.Thread(target=consume_kafka_python, args=(broker.bootstrap, collected["kafka-python"], stop)),
    ]
    for t in threads:
        t.start()
    try:
        committed, aborted = produce_transactions(broker.bootstrap, time.monotonic() + STRESS_S, seed)
        expected = sum(len(v) for v in committed.values())
        deadline = time.monotonic() + DRAIN_WAIT_S_MAX
        while time.monotonic() < deadline and any(c.count() < expected for c in collected.values()):
            time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert aborted > 0 and expected > 0, "the run needs both commits and aborts"
    for name, got in collected.items():
        for partition in range(PARTITIONS):
            leaked = [v for v in got.values[partition] if v.startswith(b"a-")]
            assert not leaked, f"{name} delivered {len(leaked)} aborted records, first {leaked[:3]} (seed {seed})"
            assert got.values[partition] == committed[partition], (
                f"{name} partition {partition}: {len(got.values[partition])} delivered, "
                f"{len(committed[partition])} committed (seed {seed})"
            )
