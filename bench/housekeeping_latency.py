#!/usr/bin/env python3
"""Housekeeping benchmark (issue 5): cleaner throughput, and produce
latency while retention or compaction runs on another topic.

Starts its own broker (it reads the broker's "compacted" log lines, which
carry bytes_scanned and elapsed_us), with log.retention.check.interval.ms
= 1000 and the cleaner's I/O budget raised so the pacer does not cap the
measured rate.

1. Cleaner throughput: a compacted topic is filled (min.compaction.lag.ms
   high, so nothing is cleaned yet), then the lag is lowered with
   IncrementalAlterConfigs; the next pass cleans the whole range in one go.
   MB/s = bytes scanned / pass time (the pass reads the range once for the
   offset map and the rewritten segments twice more). Done uncompressed
   and with lz4.
2. Produce latency: a probe producer sends 1 KiB records at a fixed rate
   with acks=all, and its delivery latencies (produce() to report) give
   p50/p99, in three phases, each with a second producer writing ~2 MB/s:
   to a plain topic (no housekeeping); to a topic whose retention.bytes
   makes a segment go every check; updating 500 keys of a compacted topic
   with min.cleanable.dirty.ratio=0.01, so it is cleaned every check.
   Phases alternate over --rounds rounds.

Usage: bench/housekeeping_latency.py [--broker target/release/corestreamd]
       [--phase-s 20] [--rate 200]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(binary: str, data: Path) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    cfg = data / "bench.toml"
    cfg.write_text("log.retention.check.interval.ms = 1000\nlog.cleaner.io.max.bytes.per.second = 10737418240\n")
    log = data / "broker.log"
    proc = subprocess.Popen(
        [binary, "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{free_port()}",
         "--data-dir", str(data / "data"), "--config", str(cfg)],
        stdout=subprocess.DEVNULL, stderr=open(log, "wb"),
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc, f"127.0.0.1:{port}", log


def create(admin: AdminClient, topic: str, config: dict) -> None:
    for f in admin.create_topics([NewTopic(topic, 1, 1, config=config)]).values():
        f.result(30)


def fill(bootstrap: str, topic: str, count: int, keys: int, size: int, **conf) -> None:
    """Values are hex of random bytes: they compress about 2:1, like text."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all", **conf})
    pool = [os.urandom(size // 2).hex().encode() for _ in range(1000)]
    for i in range(count):
        value = pool[i % len(pool)]
        while True:
            try:
                p.produce(topic, key=f"k{i % keys}".encode(), value=value)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(120) == 0


def cleaner_throughput(bootstrap: str, admin: AdminClient, log: Path, codec: str) -> str:
    topic = f"cleaner-{codec}"
    create(admin, topic, {"cleanup.policy": "compact", "segment.bytes": str(8 << 20),
                          "min.compaction.lag.ms": "3600000", "min.cleanable.dirty.ratio": "0.01"})
    fill(bootstrap, topic, 200_000, 10_000, 300, **{"compression.type": codec})
    time.sleep(1.1)
    fill(bootstrap, topic, 1, 1, 10)  # later batch: everything before is closed by segment.ms below
    res = ConfigResource("topic", topic, incremental_configs=[
        ConfigEntry("min.compaction.lag.ms", "0", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("segment.ms", "1000", incremental_operation=AlterConfigOpType.SET)])
    for f in admin.incremental_alter_configs([res]).values():
        f.result(30)
    time.sleep(1.1)
    fill(bootstrap, topic, 1, 1, 10)  # rolls the active segment (segment.ms)
    pattern = re.compile(rf"partition={re.escape(topic)}-0 .*bytes_scanned=(\d+) .*elapsed_us=(\d+)")
    time.sleep(5)  # a few checks: the first pass after the alter covers the range
    best = None
    for line in log.read_text(errors="replace").splitlines():
        m = pattern.search(line)
        if m and (best is None or int(m[1]) > best[0]):
            best = (int(m[1]), int(m[2]))
    if best is None:
        return f"cleaner {codec}: no pass seen"
    scanned, us = best
    return f"cleaner {codec}: {scanned / 1e6:.1f} MB scanned in {us / 1e3:.0f} ms = {scanned / us:.0f} MB/s"


def background(bootstrap: str, topic: str, keyed: bool, stop: threading.Event) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    value, i = b"b" * 1000, 0
    while not stop.is_set():
        # about 2 MB/s
        for _ in range(20):
            key = f"k{i % 500}".encode() if keyed else None
            p.produce(topic, key=key, value=value)
            i += 1
        p.poll(0)
        time.sleep(0.01)
    p.flush(30)


def probe(bootstrap: str, seconds: float, rate: int) -> list[float]:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    lat: list[float] = []
    value = b"x" * 1024
    interval, t_next = 1.0 / rate, time.perf_counter()
    end = t_next + seconds
    while t_next < end:
        t0 = time.perf_counter()
        p.produce("probe", value, on_delivery=lambda err, msg, t0=t0: lat.append(time.perf_counter() - t0))
        t_next += interval
        while time.perf_counter() < t_next:
            p.poll(max(0.0, min(0.001, t_next - time.perf_counter())))
    p.flush(30)
    return sorted(lat)


def pct(lat: list[float], q: float) -> float:
    return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", default="target/release/corestreamd")
    ap.add_argument("--phase-s", type=float, default=20)
    ap.add_argument("--rate", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        proc, bootstrap, log = start_broker(args.broker, Path(tmp))
        try:
            admin = AdminClient({"bootstrap.servers": bootstrap})
            for codec in ("none", "lz4"):
                print(cleaner_throughput(bootstrap, admin, log, codec), flush=True)
            create(admin, "probe", {})
            create(admin, "ret", {"segment.bytes": str(1 << 20), "retention.bytes": str(4 << 20)})
            create(admin, "cmp", {"cleanup.policy": "compact", "segment.bytes": str(1 << 20),
                                  "min.cleanable.dirty.ratio": "0.01"})
            create(admin, "plain", {})
            probe(bootstrap, 2, args.rate)  # warm-up
            # Every phase has the same background producer (same client
            # load); only the topic it writes decides what housekeeping does.
            # Phases alternate over rounds so load drift hits them alike.
            phases = (("no housekeeping", "plain", False), ("retention", "ret", False),
                      ("compaction", "cmp", True))
            lat: dict[str, list[float]] = {name: [] for name, _, _ in phases}
            for _ in range(args.rounds):
                for name, topic, keyed in phases:
                    stop = threading.Event()
                    bg = threading.Thread(target=background, args=(bootstrap, topic, keyed, stop))
                    bg.start()
                    time.sleep(3)  # segments fill up so housekeeping has work
                    lat[name] += probe(bootstrap, args.phase_s / args.rounds, args.rate)
                    stop.set()
                    bg.join()
            for name, values in lat.items():
                values.sort()
                print(f"produce latency, {name:>15}: n={len(values)} p50={pct(values, 0.5):.2f}ms "
                      f"p99={pct(values, 0.99):.2f}ms max={values[-1] * 1000:.2f}ms", flush=True)
            text = log.read_text(errors="replace")
            deleted = len(re.findall(r"partition=ret-0", text))
            cleaned = len(re.findall(r"compacted partition=cmp-0", text))
            print(f"housekeeping log lines: retention on ret-0: {deleted}, compactions of cmp-0: {cleaned}")
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
