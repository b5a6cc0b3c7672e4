#!/usr/bin/env python3
"""Physical limits of this machine, the yardstick of `scripts/bench --suite`.

- disk: fio O_DIRECT sequential write then read of one file (1 MiB blocks,
  libaio, queue depth 16) on the filesystem of DIR, the broker's data dir's
  filesystem; and fdatasync latency (fio, one write + fdatasync per I/O,
  4 KiB and 64 KiB writes), which bounds acks=all produce latency; and
  the most write + fdatasync pairs a second the disk completes for
  `SYNC_WRITERS` concurrent writers appending 64 KiB with O_DIRECT to
  preallocated files, as the broker's partitions do: with acks=all every
  partition that took data needs its own fdatasync, so this rate, not the
  single-writer latency, is what the disk gives a loaded broker.
- network: loopback TCP bandwidth from the socket pump (bench/socket_pump.rs;
  its binary is given with --pump), the best of 1 and 2 streams.

Usage: bench/limits.py --dir DIR --pump PUMP_BINARY --out FILE [--size-gib N]
Writes a JSON object of numbers (MB = 10^6 bytes, latencies in ms).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys

# Runtime cap of each fio job, in seconds: the suite has a 10-15 minute
# budget and a slow disk must not eat it.
FIO_RUNTIME_S = 20
# How long the fdatasync-latency jobs run, in seconds.
FSYNC_RUNTIME_S = 5
# Concurrent writers of the fdatasync-rate job: the suite's partition count
# (bench/suite.py BASE_PARTITIONS), one file each.
SYNC_WRITERS = 6
# Size of each writer's file: large enough that a 4 s job never wraps
# around to overwriting blocks it already wrote (cheaper to sync: no
# extent conversion), so every write appends as a log does.
SYNC_FILE_SIZE = "1G"
SYNC_RATE_RUNTIME_S = 4
# Bytes per fdatasync of the MB/s-with-syncs jobs: around what one
# partition's group commit covers in the flat-out produce run (0.3-0.4 MB
# measured), and a larger one.
SYNC_BLOCKS = ("256k", "1m")
# How long each socket-pump run lasts, in seconds.
PUMP_SECONDS = 3


def fio(*args: str) -> dict:
    out = subprocess.run(
        ["fio", "--output-format=json", *args], check=True, capture_output=True, text=True
    ).stdout
    # fio may print notes before the JSON document.
    return json.loads(out[out.index("{") :])["jobs"][0]


def sequential(path: str, size_gib: int) -> dict:
    common = [
        f"--filename={path}",
        "--bs=1M",
        f"--size={size_gib}G",
        "--direct=1",
        "--ioengine=libaio",
        "--iodepth=16",
        f"--runtime={FIO_RUNTIME_S}",
    ]
    w = fio("--name=seqwrite", "--rw=write", "--end_fsync=1", *common)["write"]
    r = fio("--name=seqread", "--rw=read", *common)["read"]
    return {
        "disk_write_mb_per_s": round(w["bw_bytes"] / 1e6, 1),
        "disk_read_mb_per_s": round(r["bw_bytes"] / 1e6, 1),
    }


def fsync_latency(path: str, block: str) -> dict:
    job = fio(
        f"--name=fdatasync{block}",
        f"--filename={path}",
        "--rw=write",
        f"--bs={block}",
        "--size=256M",
        "--ioengine=sync",
        "--fdatasync=1",
        "--time_based",
        f"--runtime={FSYNC_RUNTIME_S}",
    )
    # fio reports the fdatasync calls separately ("sync"); the write itself
    # (to the page cache) is in "write". A produce pays both.
    sync = job.get("sync", {}).get("lat_ns", {})
    pct = sync.get("percentile") or job["write"]["clat_ns"]["percentile"]
    wr = job["write"]["clat_ns"]["mean"]
    return {
        f"fdatasync_{block}_p50_ms": round((pct["50.000000"] + wr) / 1e6, 3),
        f"fdatasync_{block}_p99_ms": round((pct["99.000000"] + wr) / 1e6, 3),
        f"fdatasync_{block}_iops": round(job["write"]["iops"]),
    }


def sync_writers_job(directory: str, block: str) -> dict:
    """`SYNC_WRITERS` fio jobs, each appending `block` O_DIRECT writes to its
    own fresh file (fio preallocates it: unwritten extents, as the broker's
    segments), each write followed by fdatasync. Returns fio's job."""
    return fio(
        f"--name=sync{block}",
        f"--directory={directory}",
        "--rw=write",
        f"--bs={block}",
        f"--size={SYNC_FILE_SIZE}",
        "--direct=1",
        "--ioengine=sync",
        "--fdatasync=1",
        "--fallocate=native",
        f"--numjobs={SYNC_WRITERS}",
        "--group_reporting",
        f"--runtime={SYNC_RATE_RUNTIME_S}",
    )


def fsync_rate(directory: str) -> dict:
    """The most write + fdatasync pairs a second with 64 KiB writes (one
    produce batch each), and the MB/s when each fdatasync covers
    `SYNC_BLOCKS` instead: what the disk gives an acks=all broker that
    syncs each partition after that much data (the sequential-write limit
    has no fdatasync at all)."""
    job = sync_writers_job(directory, "64k")
    sync = job["sync"]["lat_ns"]["percentile"]
    wr = job["write"]["clat_ns"]["mean"]
    out = {
        "fdatasync_64k_writers": SYNC_WRITERS,
        "fdatasync_64k_rate_per_s": round(job["write"]["iops"]),
        "fdatasync_64k_rate_p50_ms": round((sync["50.000000"] + wr) / 1e6, 3),
        "fdatasync_64k_rate_p99_ms": round((sync["99.000000"] + wr) / 1e6, 3),
    }
    for block in SYNC_BLOCKS:
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))
        job = sync_writers_job(directory, block)
        out[f"write_fdatasync_{block}_mb_per_s"] = round(job["write"]["bw_bytes"] / 1e6, 1)
    return out


def loopback(pump: str) -> dict:
    best = {}
    for streams in (1, 2):
        out = subprocess.run(
            [pump, "--streams", str(streams), "--seconds", str(PUMP_SECONDS)],
            check=True, capture_output=True, text=True,
        ).stdout
        run = json.loads(out)
        if run["mb_per_s"] > best.get("mb_per_s", 0):
            best = run
    return {"loopback_mb_per_s": best["mb_per_s"], "loopback_streams": best["streams"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--pump", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--size-gib", type=int, default=2)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    path = os.path.join(a.dir, "fio.dat")
    sync_dir = os.path.join(a.dir, "fio-sync")
    os.makedirs(sync_dir, exist_ok=True)
    result: dict = {}
    steps = [
        ("disk sequential", lambda: sequential(path, a.size_gib)),
        ("fdatasync 4k", lambda: fsync_latency(path, "4k")),
        ("fdatasync 64k", lambda: fsync_latency(path, "64k")),
        ("fdatasync rate", lambda: fsync_rate(sync_dir)),
        ("loopback", lambda: loopback(a.pump)),
    ]
    try:
        for name, step in steps:
            try:
                part = step()
            except (subprocess.CalledProcessError, OSError, KeyError, ValueError) as e:
                # One missing limit must not sink the suite: the report says
                # "not measured" for what depends on it.
                print(f"limits: {name} not measured: {e}", file=sys.stderr)
                result.setdefault("not_measured", {})[name] = str(e)[:200]
                continue
            print(f"limits: {name}: {part}", flush=True)
            result.update(part)
    finally:
        if os.path.exists(path):
            os.unlink(path)
        shutil.rmtree(sync_dir, ignore_errors=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
