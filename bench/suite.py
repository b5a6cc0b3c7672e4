#!/usr/bin/env python3
"""The workloads of `scripts/bench --suite`, against each broker with each
load generator; writes every result to OUT/suite.json (and each run's raw
JSON beside it) for bench/report.py.

Generators (same flags, same JSON, see bench/loadgen_modes.py):
- native: `corestream bench produce|consume|e2e` when the given `corestream`
  binary has it (checked with `bench produce --help`);
- confluent-kafka: `bench/loadgen.py produce|consume|e2e` (librdkafka).

Workloads, per broker (fresh data dir each):
1. produce flat out: acks=all, --record-bytes (1 KiB), 64 KiB batches,
   linger 5 ms, 6 partitions; then consume them right away (hot tail);
2. e2e: a paced producer at half the produce records/s measured in 1 and a
   tail consumer, for E2E_SECONDS, on the running broker: latency
   percentiles (see `Suite.e2e` for why before the restart);
3. restart the broker (timed), consume the records of 1 again (cold);
4. 10,000 idle connections (bench/idle_conns.py) held open while producing
   as in 1;
5. many partitions, on a restarted broker: RSS and fds before and after
   creating a 1,000- and a 10,000-partition topic (idle, empty), produce as
   in 1 (a third of the records) into each twice (first write, then
   steady state), RSS and fds after
   (idle, with data), the Metadata round trip, and a restart's time.

A step that fails or times out is recorded as {"not_measured": reason}
and the suite goes on.

Usage: bench/suite.py --out DIR --data-root DIR --corestreamd BIN
           [--corestream BIN] [--tansu BIN] [--shards N] [--records N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

from confluent_kafka.admin import AdminClient, NewTopic

from brokers import Corestream, Tansu
from cpu import CpuWindow

HERE = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable
# Batch size and linger of every produce workload (the 16-64 KiB).
BATCH_BYTES = 64 * 1024
LINGER_MS = 5
MAX_IN_FLIGHT = 5
# Concurrency of the flat-out produce workloads (1, 4 and 5 of the module
# doc): one producer with 5 requests in flight waits on its own window, not
# on the broker (2026-11-22, 6 partitions, 64 KiB batches: 1 x 5 gave
# 293 MB/s, 2 x 16 522, 4 x 16 604, 4 x 32 677 MB/s). The paced e2e run
# keeps 1 x MAX_IN_FLIGHT.
PRODUCE_PRODUCERS = 4
PRODUCE_MAX_IN_FLIGHT = 32
# Concurrency of the consume workloads (1 and 2): 1,536 MB from 6
# partitions read at 1,203 MB/s by 1 consumer x 5 fetches in flight, 1,428
# by 1 x 6, 1,738 by 2 x 6 (each consumer fetching 3 partitions), 1,686 by
# 3 x 6 (2026-11-22, same machine, same run).
CONSUME_CONSUMERS = 2
CONSUME_MAX_IN_FLIGHT = 6
# The few-partition case every other figure is compared with.
BASE_PARTITIONS = 6
# Length of the e2e latency run, seconds.
E2E_SECONDS = 10
# Idle connections held open by workload 4.
IDLE_CONNECTIONS = 10_000
# Partition counts of workload 5.
MANY_PARTITIONS = (1_000, 10_000)
# Many-partition produce runs send records / this: with 10,000 partitions
# every batch is small and a full-size run would not fit the time budget.
MANY_RECORDS_DIVISOR = 3
# Time limit of one load-generator run, seconds.
RUN_TIMEOUT_S = 150
# Time limit of a CreateTopics call, seconds (10,000 partitions are slow).
CREATE_TIMEOUT_S = 120
# Pause before reading RSS "at idle", seconds.
SETTLE_S = 2.0
# A run is stopped when the data dir's filesystem has less free space than
# this, in bytes: the machine is shared, and a broker that preallocates a
# lot per partition (corestreamd before 256 KiB first steps: 64 MiB each)
# would fill the disk with 10,000 partitions.
DISK_FREE_MIN_BYTES = 8 << 30


class Suite:
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.out = a.out
        self.disk_full = False
        self.doc: dict = {"runs": [], "brokers": {}, "records": a.records, "record_bytes": a.record_bytes,
                          "produce_producers": PRODUCE_PRODUCERS, "produce_max_in_flight": PRODUCE_MAX_IN_FLIGHT,
                          "consume_consumers": CONSUME_CONSUMERS, "consume_max_in_flight": CONSUME_MAX_IN_FLIGHT}
        self.generators = {"confluent-kafka": [PY, os.path.join(HERE, "loadgen.py")]}
        reason = native_missing(a.corestream)
        if reason:
            self.doc["native_missing"] = reason
            print(f"suite: native generator not measured: {reason}", flush=True)
        else:
            self.generators = {"native": [a.corestream, "bench"], **self.generators}

    def save(self) -> None:
        with open(os.path.join(self.out, "suite.json"), "w") as f:
            json.dump(self.doc, f, indent=1)

    def record(self, broker: str, gen: str, workload: str, result: dict) -> dict:
        """Stores one run and returns the stored entry: a caller that adds
        to it calls `save` again."""
        run = {"broker": broker, "generator": gen, "workload": workload, **result}
        self.doc["runs"].append(run)
        self.save()
        shown = {k: result.get(k) for k in ("records_per_s", "mb_per_s", "latency_ms", "errors", "not_measured")
                 if result.get(k) is not None}
        print(f"suite: {broker:10} {gen:15} {workload:22} {shown}", flush=True)
        return run

    def load(self, broker, gen: str, workload: str, mode: str, topic: str, partitions: int,
             rate: float = 0.0, records: int | None = None) -> dict:
        raw = os.path.join(self.out, f"{broker.name}-{gen}-{workload}.json")
        flat_out = mode == "produce"
        in_flight = {"produce": PRODUCE_MAX_IN_FLIGHT, "consume": CONSUME_MAX_IN_FLIGHT}.get(mode, MAX_IN_FLIGHT)
        cmd = [*self.generators[gen], mode, "--bootstrap", broker.bootstrap, "--topic", topic,
               "--partitions", str(partitions), "--record-bytes", str(self.a.record_bytes),
               "--max-in-flight", str(in_flight), "--json", raw]
        # Each mode takes only its own side's flags (the native generator
        # refuses the others).
        if mode in ("produce", "e2e"):
            producers = PRODUCE_PRODUCERS if flat_out else 1
            cmd += ["--producers", str(producers), "--acks", "all",
                    "--batch-bytes", str(BATCH_BYTES), "--linger-ms", str(LINGER_MS)]
        if mode in ("consume", "e2e"):
            cmd += ["--consumers", str(CONSUME_CONSUMERS if mode == "consume" else 1)]
        cmd += ["--duration-s", str(E2E_SECONDS)] if mode == "e2e" else ["--records", str(records or self.a.records)]
        if rate:
            cmd += ["--target-rate", str(int(rate))]
        err_path = raw + ".stderr"
        with open(err_path, "w") as err:
            cpu = CpuWindow(broker.proc.pid)
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
            stopped = self.watch(p)
        if stopped:
            return self.record(broker.name, gen, workload, {"not_measured": stopped})
        if p.returncode != 0 or not os.path.exists(raw):
            with open(err_path) as f:
                tail = f.read().strip().splitlines()[-3:]
            return self.record(broker.name, gen, workload,
                               {"not_measured": f"exit {p.returncode}: {' | '.join(tail)[:300]}"})
        with open(raw) as f:
            result = json.load(f)
        result["cpu"] = cpu.done()
        if result.get("errors"):
            result["note"] = f"{result['errors']} errors"
        return self.record(broker.name, gen, workload, result)

    def watch(self, p: subprocess.Popen) -> str | None:
        """Waits for a generator; kills it on timeout or a filling disk."""
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while p.poll() is None:
            free = shutil.disk_usage(self.a.data_root).free
            why = (f"timed out after {RUN_TIMEOUT_S} s" if time.monotonic() > deadline else
                   f"stopped: {free / 2**30:.1f} GiB left on the data disk" if free < DISK_FREE_MIN_BYTES else None)
            if why:
                p.kill()
                p.wait()
                self.disk_full = free < DISK_FREE_MIN_BYTES
                return why
            time.sleep(0.2)
        return None

    def step(self, broker, workload: str, fn) -> None:
        """Runs fn(); an exception becomes a not-measured row, not a crash."""
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - the report must say what broke
            self.record(broker.name, "-", workload, {"not_measured": f"{type(e).__name__}: {e}"[:300]})

    def run_broker(self, broker) -> None:
        info = self.doc["brokers"].setdefault(broker.name, {"storage": broker.storage_note()})
        broker.start()
        info["start_s"] = round(broker.last_start_s, 3)
        info["rss_kib_fresh"] = broker.rss_kib()
        try:
            self.throughput(broker, info)
            self.step(broker, "idle connections", lambda: self.idle_connections(broker, info))
            self.step(broker, "many partitions", lambda: self.many_partitions(broker, info))
        finally:
            broker.stop()
            self.save()
            # The next broker needs the room (KEEP_DATA=1 keeps it).
            if os.environ.get("KEEP_DATA") != "1":
                shutil.rmtree(broker.data_dir, ignore_errors=True)

    def throughput(self, broker, info: dict) -> None:
        for gen in self.generators:
            topic = f"p{BASE_PARTITIONS}-{gen}"
            self.step(broker, "create topic", lambda: create_topic(broker, topic, BASE_PARTITIONS))
            produced = self.load(broker, gen, "produce", "produce", topic, BASE_PARTITIONS)
            self.load(broker, gen, "consume hot", "consume", topic, BASE_PARTITIONS)
            self.e2e(broker, gen, produced)
        began = time.monotonic()
        broker.restart()
        info["restart_s"] = round(time.monotonic() - began, 3)
        # The hot consume read part of the data from the segment files
        # (Tansu: all of it) through the page cache; cold means the disk.
        info["cold_files_uncached"] = broker.drop_page_cache()
        for gen in self.generators:
            self.load(broker, gen, "consume cold", "consume", f"p{BASE_PARTITIONS}-{gen}", BASE_PARTITIONS)

    def e2e(self, broker, gen: str, produced: dict) -> None:
        """The paced e2e run at half the records/s of `produced`, on the
        running broker right after the hot consume.

        Why not after the restart and the cold consume, as until 2026-12-02:
        the latency target is about a broker in steady state, and on this VM
        a just-restarted broker is not. Its tail cache starts empty and
        fills from memory the kernel has just freed (the old process, the
        page cache dropped for the cold read), which the VM's balloon device
        reports to the host (free page reporting, 2 MiB blocks) and the host
        takes back: touching such a page again cost 3-41 us instead of
        1.3-1.7 us (a page-touch probe run inside the suite). The e2e
        producer then fell from ~270 to 70-100 MB/s after 1-2 s in most
        suite runs, the broker's shard threads at 50-65 % system CPU,
        mostly in page faults. Right after the hot consume the cache is
        full, and the e2e run's batches reuse the memory evicted ones free:
        the broker's page faults fall to ~0 once its cache is full
        (BENCHMARKS_HISTORY.md, "The slowdown after a restart"). Since 0005304 the
        broker reserves its cache memory at start (fetch::cache_arena),
        which removed that slowdown; the run stays here because the
        target is about a broker in steady state.
        """
        rate = produced.get("records_per_s")
        if not rate:
            self.record(broker.name, gen, "e2e half max", {"not_measured": "no produce figure to halve"})
            return
        topic = f"e2e-{gen}"
        self.step(broker, "create topic", lambda: create_topic(broker, topic, BASE_PARTITIONS))
        fsyncs = getattr(broker, "fsync_totals", lambda: None)
        before = fsyncs()
        result = self.load(broker, gen, "e2e half max", "e2e", topic, BASE_PARTITIONS, rate=rate / 2)
        after = fsyncs()
        if before and after and after[0] > before[0] and result.get("seconds"):
            # The broker's own count: how many fdatasyncs the acks=all
            # answers cost, against the disk's rate limit (bench/limits.py
            # fsync_rate). Divided by the generator's measured seconds: the
            # few before it starts measuring or after it stops sending are
            # counted too, so the rate is a slight overestimate.
            n = after[0] - before[0]
            result["broker_fsyncs_per_s"] = round(n / result["seconds"])
            result["broker_fsync_mean_ms"] = round((after[1] - before[1]) / n * 1e3, 3)
            self.save()

    def idle_connections(self, broker, info: dict) -> None:
        rss0, fds0 = broker.rss_kib(), broker.fds()
        opener = subprocess.Popen([PY, os.path.join(HERE, "idle_conns.py"), "127.0.0.1", str(broker.port),
                                   str(IDLE_CONNECTIONS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            began = time.monotonic()
            line = opener.stdout.readline().strip()
            if not line.startswith("ready"):
                raise RuntimeError(f"idle connections: {line or 'opener died'}")
            time.sleep(SETTLE_S)
            info["idle_connections"] = {
                "count": IDLE_CONNECTIONS,
                "open_s": round(time.monotonic() - began - SETTLE_S, 2),
                "rss_kib_per_connection": round((broker.rss_kib() - rss0) / IDLE_CONNECTIONS, 2),
                "fds_added": broker.fds() - fds0,
            }
            for gen in self.generators:
                topic = f"conn-{gen}"
                create_topic(broker, topic, BASE_PARTITIONS)
                self.load(broker, gen, "produce 10k idle conns", "produce", topic, BASE_PARTITIONS)
        finally:
            opener.stdin.close()
            opener.wait(60)

    def many_partitions(self, broker, info: dict) -> None:
        # A fresh process: memory the idle connections left in the
        # allocator would hide what partitions cost.
        broker.restart()
        for n in MANY_PARTITIONS:
            time.sleep(SETTLE_S)
            rss0, fds0 = broker.rss_kib(), broker.fds()
            topic = f"m{n}"
            created_s = create_topic(broker, topic, n)
            time.sleep(SETTLE_S)
            rss1, fds1 = broker.rss_kib(), broker.fds()
            entry = info.setdefault("partitions", {})[str(n)] = {
                "create_s": round(created_s, 2),
                "rss_kib_before": rss0,
                "rss_kib_per_partition_empty": round((rss1 - rss0) / n, 2),
                "fds_per_partition": round((fds1 - fds0) / n, 2),
                "fds_total": fds1,
                "threads": broker.threads(),
                "metadata_s": round(metadata_round_trip(broker), 3),
            }
            self.save()
            # The first pass writes every partition for the first time
            # (segment files created and preallocated); the second is the
            # steady state the target is about.
            for phase in ("first write", "steady"):
                for gen in self.generators:
                    name = f"produce {n} partitions" + (" (first write)" if phase == "first write" else "")
                    r = self.load(broker, gen, name, "produce", topic, n, records=self.a.records // MANY_RECORDS_DIVISOR)
                    if self.disk_full:
                        raise RuntimeError("the data disk is nearly full; many-partition runs stopped")
                    if "timed out" in r.get("not_measured", ""):
                        # More partitions would only time out longer.
                        raise RuntimeError(f"{name} timed out; larger partition counts skipped")
            time.sleep(SETTLE_S)
            entry["rss_kib_per_partition_with_data"] = round((broker.rss_kib() - rss0) / n, 2)
            entry["fds_total_with_data"] = broker.fds()
            self.save()
        began = time.monotonic()
        broker.restart()
        info["restart_s_many_partitions"] = round(time.monotonic() - began, 2)
        info["rss_kib_after_restart_many_partitions"] = broker.rss_kib()


def native_missing(corestream: str | None) -> str | None:
    if not corestream:
        return "no corestream binary given"
    try:
        p = subprocess.run([corestream, "bench", "produce", "--help"], capture_output=True, text=True, timeout=30)
    except OSError as e:
        return f"{corestream}: {e}"
    if p.returncode != 0 or "--target-rate" not in p.stdout:
        return "`corestream bench produce` is not in this build (the native load generator is not merged)"
    return None


def create_topic(broker, topic: str, partitions: int) -> float:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    began = time.monotonic()
    fut = admin.create_topics([NewTopic(topic, partitions, 1)], operation_timeout=CREATE_TIMEOUT_S,
                              request_timeout=CREATE_TIMEOUT_S)[topic]
    fut.result(timeout=CREATE_TIMEOUT_S)
    return time.monotonic() - began


def metadata_round_trip(broker) -> float:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.list_topics(timeout=60)  # connect first
    began = time.monotonic()
    admin.list_topics(timeout=60)
    return time.monotonic() - began


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--corestreamd", required=True)
    ap.add_argument("--corestream")
    ap.add_argument("--tansu")
    ap.add_argument("--tansu-missing", default="", help="why there is no Tansu binary")
    ap.add_argument("--shards", type=int, default=os.cpu_count())
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--record-bytes", type=int, default=1024)
    a = ap.parse_args()
    # Brokers run with their data dir as working directory.
    for key in ("out", "data_root", "corestreamd", "corestream", "tansu"):
        if getattr(a, key):
            setattr(a, key, os.path.abspath(getattr(a, key)))
    os.makedirs(a.out, exist_ok=True)
    suite = Suite(a)
    suite.doc["shards"] = a.shards
    brokers = [Corestream(a.corestreamd, os.path.join(a.data_root, "corestream"),
                          os.path.join(a.out, "corestream.log"), a.shards)]
    if a.tansu:
        brokers.append(Tansu(a.tansu, os.path.join(a.data_root, "tansu"), os.path.join(a.out, "tansu.log")))
    else:
        suite.doc["tansu_missing"] = a.tansu_missing or "no Tansu binary"
    for b in brokers:
        try:
            suite.run_broker(b)
        except Exception as e:  # noqa: BLE001
            suite.record(b.name, "-", "broker", {"not_measured": f"{type(e).__name__}: {e}"[:300]})
    suite.save()


if __name__ == "__main__":
    main()
