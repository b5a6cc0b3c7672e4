#!/usr/bin/env python3
"""Produce-then-consume load generator (librdkafka via confluent-kafka).

Phase 1 produces --count records of --size bytes (acks, linger, batch size
and compression as given) and waits for every delivery report. Phase 2
consumes the same records back from the beginning with manual assign() (the
broker has no consumer groups yet). Each phase prints records/s and MB/s
(MB = 10^6 bytes of record values) and the loadgen checks that every record
came back.

Usage: bench/loadgen.py --bootstrap HOST:PORT [--count N] [--size BYTES] ...
       bench/loadgen.py produce|consume|e2e --bootstrap HOST:PORT --topic T ...
The second form mirrors `corestream bench produce|consume|e2e` (flags and
JSON result) for the benchmark suite; see bench/loadgen_modes.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", default="bench")
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=1024, help="record value bytes")
    ap.add_argument("--acks", default="all")
    ap.add_argument("--linger-ms", type=int, default=5)
    ap.add_argument("--batch-bytes", type=int, default=1024 * 1024)
    ap.add_argument("--compression", default="none")
    ap.add_argument("--timeout-s", type=float, default=1200.0, help="per phase")
    ap.add_argument("--json", action="store_true", help="also print one JSON result line")
    ap.add_argument("--client-conf", action="append", default=[], metavar="KEY=VALUE",
                    help="extra librdkafka setting for every client (security.protocol, ssl.ca.location...)")
    return ap.parse_args()


def client_conf(a: argparse.Namespace) -> dict:
    """--client-conf pairs (security settings for TLS/SASL runs)."""
    return dict(kv.split("=", 1) for kv in getattr(a, "client_conf", []))


def create_topic(a: argparse.Namespace) -> None:
    admin = AdminClient({"bootstrap.servers": a.bootstrap, **client_conf(a)})
    fut = admin.create_topics([NewTopic(a.topic, a.partitions, 1)], request_timeout=30)[a.topic]
    try:
        fut.result(timeout=60)
    except KafkaException as e:
        if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
        sys.exit(f"loadgen: topic {a.topic} already exists; use a fresh topic or data dir")


def produce(a: argparse.Namespace) -> float:
    p = Producer(
        {
            "bootstrap.servers": a.bootstrap,
            "acks": a.acks,
            "linger.ms": a.linger_ms,
            "batch.size": a.batch_bytes,
            "compression.type": a.compression,
            "enable.idempotence": False,
            "queue.buffering.max.kbytes": 1024 * 1024,
            "queue.buffering.max.messages": 1_000_000,
            "message.timeout.ms": int(a.timeout_s * 1000),
            **client_conf(a),
        }
    )
    payload = os.urandom(a.size)
    errors = 0
    acked = 0

    def on_delivery(err, _msg):
        nonlocal errors, acked
        if err is not None:
            errors += 1
        else:
            acked += 1

    start = time.perf_counter()
    deadline = time.monotonic() + a.timeout_s
    for i in range(a.count):
        while True:
            try:
                p.produce(a.topic, payload, partition=i % a.partitions, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.001)
                if time.monotonic() > deadline:
                    sys.exit("loadgen: produce phase timed out")
        if i % 1000 == 0:
            p.poll(0)
    left = p.flush(max(1.0, deadline - time.monotonic()))
    elapsed = time.perf_counter() - start
    if left or errors or acked != a.count:
        sys.exit(f"loadgen: produce incomplete: {acked} acked, {errors} errors, {left} undelivered")
    return elapsed


def consume(a: argparse.Namespace) -> float:
    c = Consumer(
        {
            "bootstrap.servers": a.bootstrap,
            "group.id": "loadgen-unused",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "fetch.max.bytes": 64 * 1024 * 1024,
            "max.partition.fetch.bytes": 8 * 1024 * 1024,
            "fetch.wait.max.ms": 100,
            **client_conf(a),
        }
    )
    c.assign([TopicPartition(a.topic, p, OFFSET_BEGINNING) for p in range(a.partitions)])
    got = 0
    nbytes = 0
    start = time.perf_counter()
    deadline = time.monotonic() + a.timeout_s
    try:
        while got < a.count:
            if time.monotonic() > deadline:
                sys.exit(f"loadgen: consume phase timed out at {got}/{a.count}")
            for m in c.consume(num_messages=10000, timeout=0.5):
                if m.error() is not None:
                    raise KafkaException(m.error())
                got += 1
                nbytes += len(m.value())
        elapsed = time.perf_counter() - start
    finally:
        c.close()
    if got != a.count or nbytes != a.count * a.size:
        sys.exit(f"loadgen: consumed {got} records / {nbytes} bytes, expected {a.count} / {a.count * a.size}")
    return elapsed


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("produce", "consume", "e2e"):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import loadgen_modes

        loadgen_modes.main(sys.argv[1:])
        return
    a = parse_args()
    create_topic(a)
    mb = a.count * a.size / 1e6
    print(
        f"load: {a.count} records x {a.size} B = {mb:.0f} MB, {a.partitions} partitions, "
        f"acks={a.acks} linger.ms={a.linger_ms} batch.size={a.batch_bytes} compression={a.compression}",
        flush=True,
    )
    t_prod = produce(a)
    print(f"produce: {t_prod:8.2f} s  {a.count / t_prod:12,.0f} msgs/s  {mb / t_prod:9.1f} MB/s", flush=True)
    t_cons = consume(a)
    print(f"consume: {t_cons:8.2f} s  {a.count / t_cons:12,.0f} msgs/s  {mb / t_cons:9.1f} MB/s", flush=True)
    if a.json:
        print(
            json.dumps(
                {
                    "count": a.count,
                    "size": a.size,
                    "partitions": a.partitions,
                    "acks": a.acks,
                    "produce_s": round(t_prod, 3),
                    "produce_msgs_per_s": round(a.count / t_prod),
                    "produce_mb_per_s": round(mb / t_prod, 1),
                    "consume_s": round(t_cons, 3),
                    "consume_msgs_per_s": round(a.count / t_cons),
                    "consume_mb_per_s": round(mb / t_cons, 1),
                }
            )
        )


if __name__ == "__main__":
    main()
