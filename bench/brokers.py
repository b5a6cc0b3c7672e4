"""Brokers under test for bench/suite.py: start, stop, restart, and read
their memory and file descriptors from /proc.

- corestreamd: fresh data dir, --shards N, admin listener on a free port
  (the suite reads its fdatasync counters from /metrics),
  --connections-max raised above the default 10,000 so the 10,000
  idle-connection workload plus the load generator fit (a limit, not a
  performance setting), and --tail-cache-bytes raised from 256 MiB to
  640 MiB per shard so one produce run (1 GB over 2 shards) is still in the
  tail cache when the hot-tail consume reads it; with the default the older
  half of it would be read from disk and the row would be a mix of hot and
  cold reads.
- Tansu 0.6.0: `tansu broker` with the libSQL (SQLite) storage engine in
  its data dir (`--storage-engine sqlite://tansu.db`, relative to the
  working directory). Tansu opens it with journal_mode=WAL and
  synchronous=NORMAL: a commit is not fsynced, only WAL checkpoints are, so
  its acks=all produce is not durable against power loss, unlike
  corestreamd's (fdatasync before the ack). The memory:// engine would keep
  nothing across the restart the cold-consume workload needs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import kafka_raw  # noqa: E402

# How long a broker may take to answer ApiVersions after start, seconds
# (a restart with 11,000 partitions runs recovery on each).
READY_TIMEOUT_S = 180.0
# How long a clean stop may take before SIGKILL, seconds.
STOP_TIMEOUT_S = 30.0
# corestreamd's --connections-max for the suite: 10,000 idle + clients.
CONNECTIONS_MAX = 12_000
# corestreamd's --tail-cache-bytes (per shard) for the suite: one produce
# run plus its batch headers, over 2 shards.
TAIL_CACHE_BYTES = 640 << 20


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Broker:
    name = "broker"

    def __init__(self, binary: str, data_dir: str, log_path: str) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.last_start_s = 0.0
        os.makedirs(data_dir, exist_ok=True)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def storage_note(self) -> str:
        raise NotImplementedError

    def start(self) -> None:
        log = open(self.log_path, "a")
        began = time.monotonic()
        self.proc = subprocess.Popen(self.command(), cwd=self.data_dir, stdout=log, stderr=log)
        deadline = began + READY_TIMEOUT_S
        while not kafka_raw.api_versions_ok("127.0.0.1", self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} at start (log: {self.log_path})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready within {READY_TIMEOUT_S:.0f} s")
            time.sleep(0.05)
        self.last_start_s = time.monotonic() - began

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def drop_page_cache(self) -> int:
        """Evicts the data dir's files from the page cache (fadvise
        DONTNEED on clean pages, no root needed), so a cold read after a
        restart comes from the disk: a restart alone leaves whatever an
        earlier read cached. Returns the files advised."""
        advised = 0
        for root, _, files in os.walk(self.data_dir):
            for name in files:
                try:
                    fd = os.open(os.path.join(root, name), os.O_RDONLY)
                except OSError:
                    continue
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                    advised += 1
                finally:
                    os.close(fd)
        return advised

    def _status(self, key: str) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def rss_kib(self) -> int:
        return self._status("VmRSS")

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def threads(self) -> int:
        return self._status("Threads")


class Corestream(Broker):
    name = "corestream"

    def __init__(self, binary: str, data_dir: str, log_path: str, shards: int) -> None:
        super().__init__(binary, data_dir, log_path)
        self.shards = shards
        self.admin_port = free_port()

    def command(self) -> list[str]:
        return [
            self.binary,
            "--listen", self.bootstrap,
            "--data-dir", self.data_dir,
            "--shards", str(self.shards),
            "--admin-listen", f"127.0.0.1:{self.admin_port}",
            "--connections-max", str(CONNECTIONS_MAX),
            "--tail-cache-bytes", str(TAIL_CACHE_BYTES),
        ]

    def fsync_totals(self) -> tuple[int, float] | None:
        """fdatasyncs done so far and the seconds they took, over all
        shards (`corestream_fsync_latency_seconds` count and sum), or None
        when /metrics does not answer."""
        url = f"http://127.0.0.1:{self.admin_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return None
        count, seconds = 0, 0.0
        for line in text.splitlines():
            if line.startswith("corestream_fsync_latency_seconds_count{"):
                count += int(float(line.rsplit(" ", 1)[1]))
            elif line.startswith("corestream_fsync_latency_seconds_sum{"):
                seconds += float(line.rsplit(" ", 1)[1])
        return count, seconds

    def storage_note(self) -> str:
        return (f"corestreamd --shards {self.shards}, O_DIRECT segments, fdatasync before every "
                f"acks=1/all answer (group commit), --connections-max {CONNECTIONS_MAX}, "
                f"--tail-cache-bytes {TAIL_CACHE_BYTES >> 20} MiB per shard")


class Tansu(Broker):
    name = "tansu"

    def command(self) -> list[str]:
        url = f"tcp://{self.bootstrap}"
        return [
            self.binary, "broker",
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", "sqlite://tansu.db",
        ]

    def storage_note(self) -> str:
        return ("tansu 0.6.0 broker, libSQL engine (sqlite://tansu.db in the data dir; "
                "journal_mode=WAL, synchronous=NORMAL: commits are not fsynced, checkpoints are)")
