#!/usr/bin/env python3
"""Producer modes against a running broker (librdkafka via confluent-kafka).

1. Throughput of a plain producer versus an idempotent one: --rounds pairs of
   runs, alternating plain / idempotent, each producing --count records of
   --size bytes to its own fresh topic (acks=all, linger.ms=5, 1 MiB
   batches). Prints each run, the medians and the idempotent/plain ratio.
2. Transaction commit latency: one transactional producer runs --txns
   transactions of --txn-records records spread over --partitions
   partitions; the time of each commit_transaction() (EndTxn: Prepare,
   markers on every partition, Complete, all durable) is recorded. Prints
   the median, p90 and p99.

Usage: bench/producer_modes.py --bootstrap HOST:PORT [--count N] ...
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--count", type=int, default=300_000, help="records per throughput run")
    ap.add_argument("--size", type=int, default=1024, help="record value bytes")
    ap.add_argument("--rounds", type=int, default=5, help="plain/idempotent run pairs")
    ap.add_argument(
        "--in-flight",
        type=int,
        default=0,
        help="max.in.flight.requests.per.connection for both modes (0: librdkafka's defaults,"
        " 1,000,000 plain and 5 idempotent)",
    )
    ap.add_argument("--txns", type=int, default=300, help="transactions for the latency phase")
    ap.add_argument("--txn-records", type=int, default=10, help="records per transaction")
    return ap.parse_args()


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)], request_timeout=30)[name].result(timeout=60)


def throughput(a: argparse.Namespace, topic: str, idempotent: bool) -> float:
    """Records/s of one run, first produce() to last delivery report."""
    create_topic(a.bootstrap, topic, a.partitions)
    conf = {
        "bootstrap.servers": a.bootstrap,
        "acks": "all",
        "linger.ms": 5,
        "batch.size": 1024 * 1024,
        "enable.idempotence": idempotent,
        "queue.buffering.max.kbytes": 1024 * 1024,
        "queue.buffering.max.messages": 1_000_000,
    }
    if a.in_flight:
        conf["max.in.flight.requests.per.connection"] = a.in_flight
    p = Producer(conf)
    payload = os.urandom(a.size)
    failed = 0

    def on_delivery(err, _msg):
        nonlocal failed
        failed += err is not None

    start = time.perf_counter()
    for i in range(a.count):
        while True:
            try:
                p.produce(topic, payload, partition=i % a.partitions, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.001)
        if i % 1000 == 0:
            p.poll(0)
    if p.flush(300) or failed:
        sys.exit(f"producer_modes: {topic}: {failed} delivery errors or undelivered records")
    return a.count / (time.perf_counter() - start)


def commit_latencies(a: argparse.Namespace) -> list[float]:
    topic = "txn-latency"
    create_topic(a.bootstrap, topic, a.partitions)
    p = Producer(
        {
            "bootstrap.servers": a.bootstrap,
            "transactional.id": "bench-txn",
            "enable.idempotence": True,
            "linger.ms": 0,
        }
    )
    p.init_transactions(30)
    payload = os.urandom(a.size)
    out = []
    for t in range(a.txns):
        p.begin_transaction()
        for i in range(a.txn_records):
            p.produce(topic, payload, partition=(t + i) % a.partitions)
        p.flush(30)  # commit latency alone, not the records' produce time
        start = time.perf_counter()
        p.commit_transaction(30)
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    a = parse_args()
    runs: dict[bool, list[float]] = {False: [], True: []}
    for r in range(a.rounds):
        for idempotent in (False, True):
            rate = throughput(a, f"modes-{r}-{'idem' if idempotent else 'plain'}", idempotent)
            runs[idempotent].append(rate)
            kind = "idempotent" if idempotent else "plain"
            print(f"round {r}: {kind:10} {rate:12,.0f} msgs/s {rate * a.size / 1e6:8.1f} MB/s", flush=True)
    plain, idem = statistics.median(runs[False]), statistics.median(runs[True])
    print(f"median plain      {plain:12,.0f} msgs/s ({plain * a.size / 1e6:.1f} MB/s)")
    print(f"median idempotent {idem:12,.0f} msgs/s ({idem * a.size / 1e6:.1f} MB/s)")
    print(f"idempotent / plain = {idem / plain:.3f}")
    lat = sorted(commit_latencies(a))
    q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))]  # noqa: E731
    print(
        f"commit_transaction over {len(lat)} txns of {a.txn_records} records on {a.partitions} partitions:"
        f" median {statistics.median(lat):.2f} ms, p90 {q(0.90):.2f} ms, p99 {q(0.99):.2f} ms"
    )


if __name__ == "__main__":
    main()
