#!/usr/bin/env python3
"""Cross-shard cost vs the shards' spin before park (`--shard-spin-us`).

For each spin setting, in interleaved rounds (this machine is noisy), a
fresh broker with 2 shards; a 2-partition topic so the connection's shard
owns one partition and reaches the other through a cross-shard message.
Measures, per setting:
- produce latency, one record in flight (acks=all, 1 KiB; librdkafka via
  confluent-kafka), to each partition separately: p50/p99 ms;
- broker CPU seconds over 5 s idle (spinning burns CPU only after
  activity, so this shows the cost at rest);
- broker CPU seconds per 1,000 latency-probe requests.
Prints one JSON line per (round, setting) and a median table at the end.

Usage: bench/shard_spin.py --corestreamd PATH [--spins 0,50,200]
       [--rounds 3] [--count 1500]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("broker did not start")


def probe(bootstrap: str, partition: int, count: int) -> list[float]:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    value = b"x" * 1024
    lat = []
    for _ in range(count + 100):
        done: list[float] = []
        t0 = time.perf_counter()
        p.produce("spin", value, partition=partition, on_delivery=lambda e, m: done.append(time.perf_counter()))
        while not done:
            p.poll(0.0005)
        lat.append((done[0] - t0) * 1000)
    p.flush(10)
    return sorted(lat[100:])


def pct(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


def one_run(binary: str, spin: int, count: int) -> dict:
    data = tempfile.mkdtemp(prefix="spin-", dir=os.environ.get("BENCH_DATA_DIR", "target"))
    port = free_port()
    broker = subprocess.Popen(
        [binary, "--listen", f"127.0.0.1:{port}", "--data-dir", data, "--shards", "2",
         "--admin-listen", "off", "--shard-spin-us", str(spin)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        bootstrap = f"127.0.0.1:{port}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for f in admin.create_topics([NewTopic("spin", 2, 1)]).values():
            f.result(30)
        time.sleep(1)
        idle0 = cpu_s(broker.pid)
        time.sleep(5)
        idle_cpu = cpu_s(broker.pid) - idle0
        out = {"spin_us": spin, "idle_cpu_s_per_5s": round(idle_cpu, 3)}
        busy0 = cpu_s(broker.pid)
        for partition in (0, 1):
            lat = probe(bootstrap, partition, count)
            out[f"p{partition}_p50_ms"] = round(pct(lat, 0.5), 3)
            out[f"p{partition}_p99_ms"] = round(pct(lat, 0.99), 3)
        out["cpu_s_per_1k_requests"] = round((cpu_s(broker.pid) - busy0) / (2 * (count + 100)) * 1000, 3)
        return out
    finally:
        broker.terminate()
        broker.wait(30)
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corestreamd", required=True)
    ap.add_argument("--spins", default="0,50,200")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--count", type=int, default=1500)
    a = ap.parse_args()
    spins = [int(s) for s in a.spins.split(",")]
    results: dict[int, list[dict]] = {s: [] for s in spins}
    for r in range(a.rounds):
        for spin in spins:
            res = one_run(a.corestreamd, spin, a.count)
            res["round"] = r
            print(json.dumps(res), flush=True)
            results[spin].append(res)
    keys = [k for k in results[spins[0]][0] if k not in ("spin_us", "round")]
    print("\nmedians over rounds:", file=sys.stderr)
    print("| spin_us | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for spin in spins:
        meds = [statistics.median(r[k] for r in results[spin]) for k in keys]
        print(f"| {spin} | " + " | ".join(f"{m:g}" for m in meds) + " |")


if __name__ == "__main__":
    main()
