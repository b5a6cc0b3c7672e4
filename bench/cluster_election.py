#!/usr/bin/env python3
"""Controller election time and metadata propagation of a three-node
corestream cluster on this machine (issue 20's benchmark).

- Election: SIGKILL the active controller; the time until a survivor's
  Metadata names another node as controller. The killed node is started
  again (and waited for) before the next run, so every run kills the leader
  of a full three-voter quorum.
- Propagation: CreateTopics (1 partition) through node 1; the time from
  its answer until every node's Metadata shows the topic with a leader.

Each node runs `--shards 1` (three brokers share the two cores). Polling is
every POLL_S, so figures are rounded up to it. Prints p50/p99/max per
measure and writes JSON with --json.

    python3 bench/cluster_election.py [--runs 20] [--binary target/release/corestreamd]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests/integration"))
import kafka_raw  # noqa: E402

NODES = 3
POLL_S = 0.005
READY_WAIT_S = 60.0
ELECTION_WAIT_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(self, binary: str, work: Path, node_id: int, voters: str) -> None:
        self.id = node_id
        self.port = free_port()
        self.args = [
            binary,
            "--node-id", str(node_id),
            "--controller-quorum-voters", voters,
            "--listen", f"127.0.0.1:{self.port}",
            "--admin-listen", f"127.0.0.1:{free_port()}",
            "--data-dir", str(work / f"data-{node_id}"),
            "--shards", "1",
            "--tail-cache-bytes", "0",
        ]
        self.log = open(work / f"node-{node_id}.log", "ab")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=self.log)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def metadata(self, topics: list[str] | None = None) -> dict | None:
        try:
            with kafka_raw.RawConn("127.0.0.1", self.port, timeout_s=2.0) as c:
                return c.metadata(topics)
        except (OSError, AssertionError):
            return None


def wait(what: str, check, timeout_s: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if check():
            return time.monotonic() - start
        time.sleep(POLL_S)
    raise SystemExit(f"{what}: not within {timeout_s} s")


def full_cluster(nodes: list[Node]) -> bool:
    for n in nodes:
        md = n.metadata()
        if md is None or len(md["brokers"]) != NODES or md["controller_id"] < 0:
            return False
    return True


def summary(values: list[float]) -> dict:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "runs": len(values),
        "p50_ms": round(statistics.median(values) * 1000, 1),
        "p99_ms": round(p99 * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--binary", default=str(REPO / "target/release/corestreamd"))
    ap.add_argument("--json")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cluster-bench-"))
    voters_ports = {i: free_port() for i in range(1, NODES + 1)}
    voters = ",".join(f"{i}@127.0.0.1:{p}" for i, p in voters_ports.items())
    nodes = [Node(a.binary, work, i, voters) for i in range(1, NODES + 1)]
    elections: list[float] = []
    propagations: list[float] = []
    try:
        for n in nodes:
            n.start()
        wait("cluster formed", lambda: full_cluster(nodes), READY_WAIT_S)
        for run in range(a.runs):
            topic = f"prop-{run}-{os.getpid()}"
            with kafka_raw.RawConn("127.0.0.1", nodes[0].port, timeout_s=30.0) as c:
                [answer] = c.create_topics([(topic, 1, 1)])
            assert answer["error_code"] == 0, answer
            answered = time.monotonic()

            def everywhere() -> bool:
                for n in nodes:
                    md = n.metadata([topic])
                    if md is None or md["topics"][0]["error_code"] != 0:
                        return False
                    if md["topics"][0]["partitions"][0]["leader"] < 0:
                        return False
                return True

            wait("topic on every node", everywhere, ELECTION_WAIT_S)
            propagations.append(time.monotonic() - answered)

            md = nodes[0].metadata()
            leader = next(n for n in nodes if n.id == md["controller_id"])
            survivor = next(n for n in nodes if n is not leader)
            leader.kill9()
            killed = time.monotonic()

            def elected() -> bool:
                md = survivor.metadata()
                return md is not None and md["controller_id"] not in (-1, leader.id)

            wait("new controller", elected, ELECTION_WAIT_S)
            elections.append(time.monotonic() - killed)
            leader.start()
            wait("cluster whole again", lambda: full_cluster(nodes), READY_WAIT_S)
            print(f"run {run + 1}: election {elections[-1] * 1000:.0f} ms, "
                  f"propagation {propagations[-1] * 1000:.0f} ms", flush=True)
    finally:
        for n in nodes:
            n.stop()
    result = {"election": summary(elections), "propagation": summary(propagations)}
    print(json.dumps(result, indent=2))
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
