"""Consumer-group benchmark (issue 3): not a test, numbers for docs/BENCHMARKS_HISTORY.md.

1. rebalance: a 10-member confluent-kafka group (eager "range" assignor) on
   a 20-partition topic; one member leaves (close(), i.e. LeaveGroup) and the
   time until every remaining member has its new assignment (on_assign after
   the leave, partitions covered exactly once) is measured. Then a new member
   joins and the group settles again (also timed). Repeated --rounds times.
2. commits: OffsetCommit v2 (simple commits: generation -1, one partition
   each) from --connections raw connections with --window requests in
   flight each, over --groups groups, for --seconds; every response is
   checked. With --shards 1 every group lives on one shard, so the rate is
   the per-shard rate; with more shards it is the total.
3. --protocol consumer: the rebalance of 1. with a KIP-848 group
   (group.protocol=consumer, server-side "uniform" assignor, the broker's
   heartbeat interval set to --heartbeat-ms); settled means the survivors'
   assignments (Consumer.assignment(), which librdkafka updates
   incrementally) cover every partition exactly once. Commits are skipped.

    .venv/bin/python bench/group_bench.py                  # starts target/release/corestreamd --shards 1
    .venv/bin/python bench/group_bench.py --shards 2
    .venv/bin/python bench/group_bench.py --bootstrap 127.0.0.1:9092 --shards 2   # a running broker

Prints the machine, each sample and the medians.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests/integration"))

import kafka_raw  # noqa: E402
from clients import create_topic  # noqa: E402
from confluent_kafka import Consumer  # noqa: E402
from kafka_raw import Reader, Writer  # noqa: E402

OFFSET_COMMIT = 8


def machine() -> str:
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return f"{os.cpu_count()} cpus ({model}), {mem_kib / 1048576:.1f} GiB, {platform.system()} {platform.release()}"


def start_broker(binary: Path, shards: int, extra: list[str] = ()) -> tuple[subprocess.Popen, str, Path]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        admin_port = s.getsockname()[1]
    (REPO / "target").mkdir(exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="bench-groups.", dir=REPO / "target"))
    log = open(data.with_suffix(".broker.log"), "wb")
    proc = subprocess.Popen(
        [str(binary), "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin_port}",
         "--data-dir", str(data / "data"), "--shards", str(shards), *extra],
        stdout=log, stderr=log,
    )
    deadline = time.monotonic() + 30
    while not kafka_raw.api_versions_ok("127.0.0.1", port):
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"broker not ready on port {port} (see {log.name})")
        time.sleep(0.1)
    return proc, f"127.0.0.1:{port}", data


class Member:
    def __init__(self, bootstrap: str, group: str, topic: str, heartbeat_ms: int) -> None:
        self.assignment: set[int] = set()
        self.assigned_at = 0.0
        if PROTOCOL == "consumer":
            self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                               "enable.auto.commit": False, "group.protocol": "consumer"})
            self.c.subscribe([topic])
            return
        self.c = Consumer({
            "bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
            "session.timeout.ms": 10000, "heartbeat.interval.ms": heartbeat_ms,
            "partition.assignment.strategy": "range",
        })
        self.c.subscribe([topic], on_assign=self.on_assign, on_revoke=self.on_revoke)

    def on_assign(self, _c, tps) -> None:
        self.assignment = {tp.partition for tp in tps}
        self.assigned_at = time.monotonic()

    def on_revoke(self, _c, _tps) -> None:
        self.assignment = set()


PROTOCOL = "classic"


def settled(members: list[Member], partitions: int, after: float) -> bool:
    if PROTOCOL == "consumer":
        got = [tp.partition for m in members for tp in m.c.assignment()]
        everyone = all(m.c.assignment() for m in members)
        if everyone and len(got) == partitions and set(got) == set(range(partitions)):
            for m in members:
                m.assigned_at = time.monotonic()
            return True
        return False
    got = [p for m in members for p in m.assignment]
    return (
        all(m.assigned_at > after and m.assignment for m in members)
        and len(got) == partitions
        and set(got) == set(range(partitions))
    )


def wait_settled(members: list[Member], partitions: int, after: float, timeout_s: float = 60.0) -> float:
    deadline = time.monotonic() + timeout_s
    while not settled(members, partitions, after):
        if time.monotonic() > deadline:
            raise SystemExit(f"group did not settle in {timeout_s}s: {[sorted(m.assignment) for m in members]}")
        for m in members:
            m.c.poll(0)
        time.sleep(0.002)
    return max(m.assigned_at for m in members) - after


def bench_rebalance(bootstrap: str, size: int, rounds: int, heartbeat_ms: int) -> tuple[list[float], list[float]]:
    topic, group, partitions = "bench-groups", "bench-rebalance", 2 * size
    create_topic(bootstrap, topic, partitions)
    members = [Member(bootstrap, group, topic, heartbeat_ms) for _ in range(size)]
    wait_settled(members, partitions, 0.0)
    leave, join = [], []
    for i in range(rounds):
        gone = members.pop(0)
        t0 = time.monotonic()
        gone.c.close()
        leave.append(wait_settled(members, partitions, t0))
        t0 = time.monotonic()
        members.append(Member(bootstrap, group, topic, heartbeat_ms))
        join.append(wait_settled(members, partitions, t0))
        print(f"  round {i + 1}: stable after leave {leave[-1] * 1000:.0f} ms, after join {join[-1] * 1000:.0f} ms", flush=True)
    for m in members:
        m.c.close()
    return leave, join


def commit_body(group: str, topic: str, partition: int, offset: int) -> bytes:
    w = Writer().string(group).int32(-1).string("").int64(-1)
    w.int32(1).string(topic).int32(1).int32(partition).int64(offset).string("")
    return w.bytes()


def commit_worker(host: str, port: int, topic: str, groups: list[str], window: int, stop_at: float, out: list) -> None:
    conn = kafka_raw.RawConn(host, port, timeout_s=30)
    done = errors = 0
    inflight: list[int] = []
    n = 0
    while True:
        now = time.monotonic()
        while now < stop_at and len(inflight) < window:
            n += 1
            inflight.append(conn.send_request(OFFSET_COMMIT, 2, commit_body(groups[n % len(groups)], topic, n % 4, n)))
        if not inflight:
            break
        r = Reader(conn.recv_response(inflight.pop(0)))
        for _ in range(r.int32()):
            r.string()
            for _ in range(r.int32()):
                r.int32()
                if r.int16() != 0:
                    errors += 1
        done += 1
    conn.close()
    out.append((done, errors))


def bench_commits(bootstrap: str, seconds: float, connections: int, window: int, n_groups: int) -> float:
    topic = "bench-commits"
    host, port = bootstrap.rsplit(":", 1)
    groups = [f"bench-commit-{i}" for i in range(n_groups)]
    # Warm-up: the coordinators load their partitions, connections open.
    out: list = []
    commit_worker(host, int(port), topic, groups, 1, time.monotonic() + 1.0, out)
    out = []
    start = time.monotonic()
    threads = [
        threading.Thread(target=commit_worker, args=(host, int(port), topic, groups, window, start + seconds, out))
        for _ in range(connections)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - start
    done = sum(d for d, _ in out)
    errors = sum(e for _, e in out)
    if errors:
        raise SystemExit(f"{errors} commits failed")
    return done / took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", help="a running broker (default: start target/release/corestreamd)")
    ap.add_argument("--binary", default=str(REPO / "target/release/corestreamd"))
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--members", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--heartbeat-ms", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=5.0, help="per commit sample")
    ap.add_argument("--samples", type=int, default=3, help="commit samples")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--groups", type=int, default=64)
    ap.add_argument("--protocol", choices=["classic", "consumer"], default="classic")
    args = ap.parse_args()
    global PROTOCOL
    PROTOCOL = args.protocol

    proc = data = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        extra = ["--group-consumer-heartbeat-interval-ms", str(args.heartbeat_ms)]
        proc, bootstrap, data = start_broker(Path(args.binary), args.shards, extra)
    print(f"machine: {machine()}")
    print(f"broker:  {bootstrap}, --shards {args.shards}")
    try:
        assignor = "range assignor" if PROTOCOL == "classic" else "KIP-848, uniform assignor"
        print(f"rebalance: {args.members} members, {assignor}, heartbeat interval {args.heartbeat_ms} ms")
        leave, join = bench_rebalance(bootstrap, args.members, args.rounds, args.heartbeat_ms)
        if PROTOCOL == "consumer":
            print("medians:")
            print(f"  stable after a leave: {statistics.median(leave) * 1000:.0f} ms (min {min(leave) * 1000:.0f}, max {max(leave) * 1000:.0f})")
            print(f"  stable after a join:  {statistics.median(join) * 1000:.0f} ms (min {min(join) * 1000:.0f}, max {max(join) * 1000:.0f})")
            return
        print(f"commits: {args.connections} connections x {args.window} in flight, {args.groups} groups, OffsetCommit v2")
        create_topic(bootstrap, "bench-commits", 4)
        rates = []
        for i in range(args.samples):
            rates.append(bench_commits(bootstrap, args.seconds, args.connections, args.window, args.groups))
            print(f"  sample {i + 1}: {rates[-1]:,.0f} commits/s", flush=True)
        med = statistics.median(rates)
        print("medians:")
        print(f"  stable after a leave: {statistics.median(leave) * 1000:.0f} ms (min {min(leave) * 1000:.0f}, max {max(leave) * 1000:.0f})")
        print(f"  stable after a join:  {statistics.median(join) * 1000:.0f} ms (min {min(join) * 1000:.0f}, max {max(join) * 1000:.0f})")
        print(f"  offset commits/s: {med:,.0f} total, {med / args.shards:,.0f} per shard")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
            shutil.rmtree(data, ignore_errors=True)
            data.with_suffix(".broker.log").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
