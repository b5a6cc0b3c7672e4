#!/usr/bin/env python3
"""Replication cost and failover time on a three-node corestream cluster on
this machine (issue 21's benchmark).

- Produce: the same librdkafka producer (confluent-kafka, acks=all,
  idempotent, linger 5 ms) writes MESSAGES records of VALUE_BYTES to a
  one-partition topic with replication factor 1 and then 3, in the same
  run (acks=all waits for every ISR member whatever min.insync.replicas
  says, so its default of 1 is kept); throughput and the per-record ack latency (produce()
  to delivery report) p50/p99.
- Copies: during the RF 3 produce, the followers' user-space copies per
  replicated byte (`corestream_replication_copied_bytes_total` over
  `corestream_replication_fetched_bytes_total`, from their /metrics).
- Failover: SIGKILL the leader of the RF 3 partition, then the time until
  an acks=all produce (raw, 1 record, to whichever broker Metadata names)
  succeeds; the killed node is restarted and back in the ISR before the
  next run.

Each node runs `--shards 1` (three brokers and the client share the two
cores). Prints JSON; --json writes it to a file.

    python3 bench/replication.py [--runs 20] [--messages 20000]

(`--runs 0` measures produce and copies only.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests/integration"))
from cluster_election import NODES, Node, free_port, full_cluster, wait  # noqa: E402

import kafka_raw  # noqa: E402

VALUE_BYTES = 1024
FAILOVER_WAIT_S = 60.0
POLL_S = 0.01


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def produce_run(bootstrap: str, topic: str, messages: int) -> dict:
    from confluent_kafka import Producer

    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
        }
    )
    value = b"x" * VALUE_BYTES
    latencies: list[float] = []
    errors: list[str] = []

    def report(sent_at: float):
        def done(err, _msg):
            if err is not None:
                errors.append(str(err))
            else:
                latencies.append(time.monotonic() - sent_at)

        return done

    started = time.monotonic()
    for _ in range(messages):
        while True:
            try:
                p.produce(topic, value, partition=0, on_delivery=report(time.monotonic()))
                break
            except BufferError:
                p.poll(0.01)
        p.poll(0)
    p.flush(120)
    elapsed = time.monotonic() - started
    assert not errors, errors[:3]
    return {
        "records": len(latencies),
        "mb_per_s": round(messages * VALUE_BYTES / elapsed / 1e6, 1),
        "ack_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "ack_p99_ms": round(pct(latencies, 0.99) * 1000, 1),
    }


def partition0(md: dict | None, topic: str) -> dict | None:
    if md is None:
        return None
    for t in md["topics"]:
        if t["name"] == topic and t["partitions"]:
            return t["partitions"][0]
    return None


def replication_bytes(n: Node) -> tuple[float, float]:
    """(fetched, copied) record bytes of `n`'s followers since it started."""
    admin = n.args[n.args.index("--admin-listen") + 1]
    text = urllib.request.urlopen(f"http://{admin}/metrics", timeout=10).read().decode()
    total = {"corestream_replication_fetched_bytes_total": 0.0, "corestream_replication_copied_bytes_total": 0.0}
    for line in text.splitlines():
        name = line.split("{")[0].split(" ")[0]
        if name in total:
            total[name] += float(line.rsplit(" ", 1)[1])
    return total["corestream_replication_fetched_bytes_total"], total["corestream_replication_copied_bytes_total"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--binary", default=str(REPO / "target/release/corestreamd"))
    ap.add_argument("--json")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="replication-bench-"))
    voters = ",".join(f"{i}@127.0.0.1:{free_port()}" for i in range(1, NODES + 1))
    nodes = [Node(a.binary, work, i, voters) for i in range(1, NODES + 1)]
    for n in nodes:
        n.args += ["--broker-session-timeout-ms", "3000", "--replica-lag-time-max-ms", "3000"]
    by_id = {n.id: n for n in nodes}
    result: dict = {"value_bytes": VALUE_BYTES, "messages": a.messages}
    try:
        for n in nodes:
            n.start()
        wait("cluster formed", lambda: full_cluster(nodes), 60.0)
        bootstrap = ",".join(f"127.0.0.1:{n.port}" for n in nodes)
        for rf in (1, 3):
            topic = f"repl-rf{rf}-{os.getpid()}"
            with kafka_raw.RawConn("127.0.0.1", nodes[0].port, timeout_s=30.0) as c:
                [answer] = c.create_topics([(topic, 1, rf)])
            assert answer["error_code"] == 0, answer
            wait(
                f"rf {rf} topic in sync",
                lambda: (p := partition0(nodes[0].metadata([topic]), topic)) is not None
                and p["leader"] >= 0
                and len(p["isr"]) == rf,
                30.0,
            )
            before = [replication_bytes(n) for n in nodes]
            result[f"rf{rf}"] = produce_run(bootstrap, topic, a.messages)
            print(f"rf {rf}: {result[f'rf{rf}']}", flush=True)
            if rf == 3:
                # Followers append asynchronously: wait until they hold it all.
                leader = partition0(nodes[0].metadata([topic]), topic)["leader"]
                wanted = a.messages * VALUE_BYTES * (NODES - 1)
                wait(
                    "followers fetched the run",
                    lambda: sum(replication_bytes(n)[0] - b[0] for n, b in zip(nodes, before) if n.id != leader)
                    >= wanted,
                    60.0,
                )
                deltas = [
                    tuple(x - y for x, y in zip(replication_bytes(n), b))
                    for n, b in zip(nodes, before)
                    if n.id != leader
                ]
                fetched = sum(d[0] for d in deltas)
                copied = sum(d[1] for d in deltas)
                result["follower_copies"] = {
                    "fetched_bytes": fetched,
                    "copied_bytes": copied,
                    "copies_per_replicated_byte": round(copied / fetched, 3) if fetched else None,
                }
                print(f"follower copies: {result['follower_copies']}", flush=True)
        topic = f"repl-rf3-{os.getpid()}"
        failovers: list[float] = []
        for run in range(a.runs):
            p = partition0(nodes[0].metadata([topic]) or nodes[1].metadata([topic]), topic)
            assert p is not None
            victim = by_id[p["leader"]]
            survivors = [n for n in nodes if n is not victim]
            victim.kill9()
            killed = time.monotonic()
            ok = False
            while time.monotonic() - killed < FAILOVER_WAIT_S and not ok:
                for n in survivors:
                    q = partition0(n.metadata([topic]), topic)
                    if q is None or q["leader"] in (-1, victim.id):
                        continue
                    try:
                        with kafka_raw.RawConn("127.0.0.1", by_id[q["leader"]].port, timeout_s=5.0) as c:
                            reply = c.produce(topic, 0, kafka_raw.record_batch_v2([(b"k", b"v")]), acks=-1)
                        ok = reply["error_code"] == 0
                    except (OSError, AssertionError):
                        pass
                    break
                if not ok:
                    time.sleep(POLL_S)
            assert ok, f"run {run}: no acks=all write within {FAILOVER_WAIT_S} s"
            failovers.append(time.monotonic() - killed)
            victim.start()
            wait(
                "killed node back in the ISR",
                lambda: (q := partition0(survivors[0].metadata([topic]), topic)) is not None
                and len(q["isr"]) == 3,
                60.0,
            )
            print(f"failover {run}: {failovers[-1] * 1000:.0f} ms", flush=True)
        result["failover"] = None if not failovers else {
            "runs": len(failovers),
            "p50_ms": round(statistics.median(failovers) * 1000),
            "p99_ms": round(pct(failovers, 0.99) * 1000),
        }
    finally:
        for n in nodes:
            n.stop()
    print(json.dumps(result, indent=2))
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
