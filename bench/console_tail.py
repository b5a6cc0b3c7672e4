#!/usr/bin/env python3
"""Produce throughput with the web console's live tail open on the busy
topic, against none open (issue 24's benchmark; docs/BENCHMARKS.md,
"Console tail").

Each run starts a fresh corestreamd (fresh data dir under target/, free
ports), creates the topic through the console's API (6 partitions, the
same in both configurations), and runs the native load tool flat out for
DURATION_S: `corestream bench produce`, acks=all, 1 KiB records, 64 KiB
batches, 4 producers x 32 requests in flight (the suite's produce). In the
`tail` configuration a client does, over HTTP, what the console's message
page does when "Live tail" is ticked (src/console/assets/app.js): it loads
the topic (`GET /v1/topics/{t}`) and the first page of messages
(`from=beginning`), then `from=end&limit=50`, then every POLL_TAIL_S
(setInterval: ticks do not wait for the previous answer) asks from the
`next_offset` of the last answer it got. Why a script and not headless
Chromium: the broker sees the same HTTP requests either way, and on this
2-core machine a browser's own rendering would take CPU from the broker and
the load tool and be measured as the console's cost, which it is not (an
operator's browser runs elsewhere).

Configurations alternate within each round and their order flips every
round (none, tail; tail, none; ...), so drift on this shared machine falls
on both. Prints one line per run and a JSON summary (medians, the ratio of
medians, and the tail's poll count and latency); --json writes it.

    python3 bench/console_tail.py [--rounds 7] [--duration-s 10]
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
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOPIC = "console-tail-busy"
PARTITIONS = 6
# The page's constants (src/console/assets/app.js): POLL_TAIL_MS and the
# browse form's default limit.
POLL_TAIL_S = 1.0
TAIL_LIMIT = 50
READY_WAIT_S = 30.0
HTTP_TIMEOUT_S = 30.0
STOP_WAIT_S = 30.0
CSRF_HEADER = "X-Corestream-Console"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
        req.add_header(CSRF_HEADER, "1")
    with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as r:
        return json.loads(r.read())


class Broker:
    def __init__(self, binary: Path, workdir: Path, shards: int) -> None:
        self.port, self.admin_port = free_port(), free_port()
        while self.admin_port == self.port:
            self.admin_port = free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = open(workdir / "broker.log", "wb")
        self.proc = subprocess.Popen(
            [str(binary), "--listen", f"127.0.0.1:{self.port}", "--admin-listen",
             f"127.0.0.1:{self.admin_port}", "--data-dir", str(workdir / "data"), "--shards", str(shards)],
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        self.admin = f"http://127.0.0.1:{self.admin_port}"
        deadline = time.monotonic() + READY_WAIT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited with {self.proc.returncode}: see {workdir / 'broker.log'}")
            try:
                with urllib.request.urlopen(self.admin + "/v1/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"broker not ready within {READY_WAIT_S} s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class Tail:
    """The console page's live tail, as its JavaScript does it."""

    def __init__(self, admin: str) -> None:
        self.base = f"{admin}/v1/topics/{TOPIC}"
        self.next: int | None = None
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.latencies_s: list[float] = []
        self.messages = 0
        self.errors: list[str] = []
        self.workers: list[threading.Thread] = []
        self.ticker = threading.Thread(target=self.run, daemon=True)

    def load(self, query: str) -> None:
        started = time.monotonic()
        try:
            answer = http("GET", f"{self.base}/messages?partition=0&decode=utf8&limit={TAIL_LIMIT}&{query}")
        except (urllib.error.URLError, OSError, ValueError) as e:
            with self.lock:
                self.errors.append(str(e))
            return
        with self.lock:
            self.latencies_s.append(time.monotonic() - started)
            self.messages += len(answer["messages"])
            self.next = answer["next_offset"]

    def run(self) -> None:
        try:
            http("GET", self.base)  # the page's partition list
        except (urllib.error.URLError, OSError, ValueError) as e:
            self.errors.append(f"topic page: {e}")
        self.load("from=beginning")  # the messages tab's first load
        self.load("from=end")  # "Live tail" ticked: the newest page first
        tick = time.monotonic()
        while not self.stopped.is_set():
            tick += POLL_TAIL_S
            if self.stopped.wait(max(0.0, tick - time.monotonic())):
                break
            with self.lock:
                offset = self.next
            worker = threading.Thread(target=self.load, args=(f"from=offset&offset={offset}",), daemon=True)
            worker.start()
            self.workers.append(worker)

    def start(self) -> None:
        self.ticker.start()

    def stop(self) -> dict:
        self.stopped.set()
        self.ticker.join()
        for w in self.workers:
            w.join(HTTP_TIMEOUT_S)
        lat = sorted(self.latencies_s)
        return {
            "polls": len(lat),
            "messages_shown": self.messages,
            "errors": len(self.errors),
            "poll_p50_ms": round(1000 * lat[len(lat) // 2], 1) if lat else None,
            "poll_max_ms": round(1000 * lat[-1], 1) if lat else None,
        }


def run_once(args, config: str, workdir: Path) -> dict:
    broker = Broker(args.corestreamd, workdir, args.shards)
    tail = None
    try:
        http("POST", f"{broker.admin}/v1/topics", {"name": TOPIC, "partitions": PARTITIONS})
        if config == "tail":
            tail = Tail(broker.admin)
            tail.start()
        out = workdir / "produce.json"
        subprocess.run(
            [str(args.corestream), "bench", "produce", "--brokers", f"127.0.0.1:{broker.port}", "--topic", TOPIC,
             "--partitions", str(PARTITIONS), "--record-bytes", "1024", "--max-in-flight", "32",
             "--producers", "4", "--acks", "all", "--batch-bytes", "65536", "--linger-ms", "5",
             "--duration-s", str(args.duration_s), "--json", str(out), "--no-progress"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        produced = json.loads(out.read_text())
        result = {"config": config, "mb_per_s": produced["mb_per_s"], "errors": produced["errors"],
                  "ack_p99_ms": (produced.get("latency_ms") or {}).get("p99")}
        if tail is not None:
            result["tail"] = tail.stop()
            tail = None
        return result
    finally:
        if tail is not None:
            tail.stop()
        broker.stop()
        shutil.rmtree(workdir / "data", ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--duration-s", type=float, default=10.0)
    p.add_argument("--shards", type=int, default=os.cpu_count() or 1)
    p.add_argument("--corestreamd", type=Path, default=REPO / "target/release/corestreamd")
    p.add_argument("--corestream", type=Path, default=REPO / "target/release/corestream")
    p.add_argument("--workdir", type=Path, default=REPO / "target/bench-console-tail")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    runs: list[dict] = []
    for round_no in range(args.rounds):
        order = ("none", "tail") if round_no % 2 == 0 else ("tail", "none")
        for config in order:
            r = run_once(args, config, args.workdir / f"r{round_no}-{config}")
            r["round"] = round_no
            runs.append(r)
            extra = f", tail {r['tail']}" if "tail" in r else ""
            print(f"round {round_no} {config}: {r['mb_per_s']:.1f} MB/s, ack p99 {r['ack_p99_ms']} ms{extra}",
                  flush=True)
    medians = {c: statistics.median(r["mb_per_s"] for r in runs if r["config"] == c) for c in ("none", "tail")}
    tails = [r["tail"] for r in runs if "tail" in r]
    summary = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rounds": args.rounds, "duration_s": args.duration_s, "shards": args.shards,
        "median_mb_per_s": medians,
        "ratio_tail_to_none": round(medians["tail"] / medians["none"], 3),
        "tail_polls_per_run": statistics.median(t["polls"] for t in tails),
        "tail_poll_p50_ms_median": statistics.median(
            [t["poll_p50_ms"] for t in tails if t["poll_p50_ms"] is not None] or [float("nan")]),
        "tail_errors": sum(t["errors"] for t in tails),
        "runs": runs,
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    if any(r["errors"] for r in runs) or summary["tail_errors"]:
        sys.exit("errors during the runs: see the summary")


if __name__ == "__main__":
    main()
