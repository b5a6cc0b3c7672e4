"""Fixtures for running corestreamd as a real process.

The binary comes from $CORESTREAMD (scripts/test sets it to
target/release/corestreamd). Each test gets its own broker(s) on a free
loopback port with a temporary data dir; the broker's stderr goes to a file
that is attached to the report of any failing test.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

import kafka_raw

REPO_ROOT = Path(__file__).resolve().parents[2]
ready_wait_s_max = 30.0
stop_wait_s_max = 20.0
log_tail_bytes_max = 64 * 1024


def broker_binary() -> Path:
    path = Path(os.environ.get("CORESTREAMD", REPO_ROOT / "target/release/corestreamd"))
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


# Every port `free_port` handed out in this process. Brokers made with
# start=False (a cluster's nodes) pick their ports before any is bound, and
# the kernel may hand out a just-closed port again: two nodes once got the
# same listener port, and with SO_REUSEPORT both bound it.
_HANDED_OUT: set[int] = set()


def free_port(avoid: int | None = None) -> int:
    """A port free now and never handed out before in this process (the
    kernel may hand out a just-closed port again; `avoid` is kept for
    callers that name the port to stay away from)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port != avoid and port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


class BrokerError(AssertionError):
    pass


# Restarts with a new admin port when the old one was taken meanwhile.
ADMIN_PORT_RETRIES = 2


class Broker:
    """One corestreamd process. Keeps its port and data dir across restarts."""

    def __init__(
        self,
        workdir: Path,
        name: str = "broker",
        shards: int | None = 2,
        node_id: int | None = None,
        extra_args: list[str] | tuple[str, ...] = (),
        port: int | None = None,
        pass_data_dir: bool = True,
        initial_rebalance_delay_ms: int | None = 0,
    ) -> None:
        self.name = name
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.binary = broker_binary()
        self.host = "127.0.0.1"
        self.port = port if port is not None else free_port()
        # Admin HTTP port (/metrics, /v1/health): a free one per broker, so
        # brokers of concurrent tests never share the default 9644.
        self.admin_port = free_port(avoid=self.port)
        self.data_dir = workdir / "data"
        self.log_path = workdir / f"{name}.stderr.log"
        self.shards = shards
        self.node_id = node_id
        self.extra_args = list(extra_args)
        self.pass_data_dir = pass_data_dir
        # Kafka's 3 s group.initial.rebalance.delay.ms would slow every group
        # test's first join; tests of the delay pass None (broker default).
        self.initial_rebalance_delay_ms = initial_rebalance_delay_ms
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        # False while the broker is meant to be running; a broker that is
        # down at teardown without a stop()/kill9() crashed during the test.
        self.expected_down = True

    # -- addresses

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def raw(self, timeout_s: float = kafka_raw.response_wait_s_default) -> kafka_raw.RawConn:
        return kafka_raw.RawConn(self.host, self.port, timeout_s=timeout_s)

    # -- lifecycle

    def args(self) -> list[str]:
        a = [str(self.binary), "--listen", self.bootstrap, "--admin-listen", f"127.0.0.1:{self.admin_port}"]
        if self.pass_data_dir:
            a += ["--data-dir", str(self.data_dir)]
        if self.shards is not None:
            a += ["--shards", str(self.shards)]
        if self.node_id is not None:
            a += ["--node-id", str(self.node_id)]
        return a + self.extra_args

    def start(self, wait: bool = True) -> "Broker":
        for attempt in range(ADMIN_PORT_RETRIES + 1):
            self._spawn()
            if not wait:
                return self
            try:
                self.wait_ready()
                return self
            except BrokerError:
                if attempt == ADMIN_PORT_RETRIES or not self._admin_port_was_taken():
                    raise
            # The admin port was picked free at the first start; since then
            # any socket (a client's ephemeral port) may hold it. Nothing
            # outside the fixture knows it, so another free one serves.
            self.admin_port = free_port(avoid=self.port)
        return self

    def _admin_port_was_taken(self) -> bool:
        """Whether the last start exited because its admin port was in use."""
        last_start = self.log_tail().rsplit("===== start #", 1)[-1]
        return "cannot listen on admin address" in last_start and "Address already in use" in last_start

    def _spawn(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        if not self.binary.exists():
            raise BrokerError(f"broker binary {self.binary} not found (build it, or set CORESTREAMD)")
        self.starts += 1
        self.expected_down = False
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        delay_var = "CORESTREAM_GROUP_INITIAL_REBALANCE_DELAY_MS"
        if self.initial_rebalance_delay_ms is None:
            env.pop(delay_var, None)
        else:
            env[delay_var] = str(self.initial_rebalance_delay_ms)
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts}: {' '.join(self.args())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.args(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.workdir,
                env=env,
            )

    def wait_ready(self, timeout_s: float = ready_wait_s_max) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                self.expected_down = True  # reported here; not again at teardown
                raise BrokerError(f"{self.name} exited with {rc} before becoming ready\n{self.log_tail()}")
            if kafka_raw.api_versions_ok(self.host, self.port, timeout_s=2.0):
                return
            time.sleep(0.05)
        raise BrokerError(
            f"{self.name} not ready on {self.bootstrap} within {timeout_s}s "
            f"(no ApiVersions v0 answer)\n{self.log_tail()}"
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self) -> None:
        assert self.proc is not None, "broker never started"
        rc = self.proc.poll()
        assert rc is None, f"{self.name} died with exit status {rc}\n{self.log_tail()}"

    def stop(self, timeout_s: float = stop_wait_s_max) -> int:
        """SIGTERM and wait; asserts a clean exit (status 0) within timeout_s."""
        self.assert_alive()
        self.expected_down = True
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise BrokerError(f"{self.name} did not exit within {timeout_s}s of SIGTERM\n{self.log_tail()}")
        assert rc == 0, f"{self.name} exited with status {rc} after SIGTERM\n{self.log_tail()}"
        return rc

    def kill9(self) -> None:
        self.assert_alive()
        self.expected_down = True
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def restart(self) -> "Broker":
        self.stop()
        return self.start()

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_tail(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - log_tail_bytes_max))
                text = f.read().decode(errors="replace")
        except OSError as e:
            return f"(no log: {e})"
        prefix = "...(truncated)\n" if size > log_tail_bytes_max else ""
        return f"--- {self.log_path} ---\n{prefix}{text}"


# ---------------------------------------------------------------- pytest glue


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running test (skipped by scripts/test --quick)")
    # kafka-python's schema loader uses a deprecated importlib API: not ours to fix
    config.addinivalue_line("filterwarnings", "ignore:(read_text|open_text) is deprecated:DeprecationWarning")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for b in getattr(item, "_corestream_brokers", []):
            rep.sections.append((f"corestreamd stderr: {b.name}", b.log_tail()))


@pytest.fixture
def broker_factory(request, tmp_path):
    """make(**kwargs) -> started Broker. Every broker left running at the end
    of the test is stopped with SIGTERM and must exit 0."""
    brokers: list[Broker] = []
    request.node._corestream_brokers = brokers

    def make(name: str | None = None, start: bool = True, **kwargs) -> Broker:
        name = name or f"broker{len(brokers)}"
        b = Broker(tmp_path / name, name=name, **kwargs)
        brokers.append(b)
        if start:
            b.start()
        return b

    yield make

    errors = []
    for b in brokers:
        if not b.alive() and not b.expected_down:
            errors.append(f"{b.name} died during the test (exit status {b.proc.returncode})")
        elif b.alive():
            try:
                b.stop()
            except AssertionError as e:
                errors.append(str(e))
            finally:
                b.cleanup()
    if errors:
        pytest.fail("broker did not stop cleanly at teardown:\n" + "\n".join(errors), pytrace=False)


@pytest.fixture
def broker(broker_factory) -> Broker:
    """A running broker with default flags (plus --shards 2)."""
    return broker_factory()
