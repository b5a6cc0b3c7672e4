"""A corestreamd cluster whose nodes each run in their own network namespace
(netns.py), reached by the client through the bridge.

Every node is a controller voter and a broker, `--shards 1` (the machine
has two cores for three brokers and the clients), and listens on its own
namespace address with the same ports: Kafka 9092, controller 9093, admin
9644. The node class is conftest's Broker with three changes: the address,
the fixed ports, and the argv prefix `ip netns exec <ns>`.

`ip netns exec` execs the broker (no fork), so Popen's pid is the broker's
and SIGKILL/SIGSTOP reach it directly. When started from the main thread
the broker also gets `setpriv --pdeathsig KILL`: if the test runner is
SIGKILLed, its brokers die with it instead of holding a namespace (the
next run reaps the namespace). The parent-death signal fires when the
*thread* that forked exits, so brokers started from worker threads go
without it.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

import nemesis  # noqa: F401  (puts tests/integration on sys.path for the helpers below)
from nemesis.netns import NetnsNetwork

import clients  # noqa: E402  (tests/integration, on sys.path via nemesis/__init__)
import kafka_raw  # noqa: E402
from conftest import Broker, BrokerError  # noqa: E402

KAFKA_PORT = 9092
CONTROLLER_PORT = 9093
ADMIN_PORT = 9644
# broker.session.timeout.ms: above a heartbeat (1 s) on a loaded two-core
# machine, short enough that fencing is seen quickly (as test_cluster.py).
SESSION_TIMEOUT_MS_DEFAULT = 3_000
CLUSTER_READY_WAIT_S = 60.0
LEADER_WAIT_S = 60.0
METADATA_WAIT_S = 3.0
STOP_WAIT_S = 20.0
POLL_INTERVAL_S = 0.1
NO_LEADER = -1


class NetnsNode(Broker):
    """One corestreamd in one namespace; keeps address and data across restarts."""

    def __init__(self, net: NetnsNetwork, node_id: int, workdir: Path, extra_args: list[str]) -> None:
        super().__init__(workdir, name=f"node{node_id}", shards=1, node_id=node_id,
                         extra_args=extra_args, port=KAFKA_PORT)
        self.net = net
        self.host = net.ip(node_id)
        self.admin_port = ADMIN_PORT
        self.paused = False

    @property
    def admin_url(self) -> str:
        return f"http://{self.host}:{self.admin_port}"

    def args(self) -> list[str]:
        argv = super().args()
        argv[argv.index("--admin-listen") + 1] = f"{self.host}:{self.admin_port}"
        prefix = self.net.exec_prefix(self.node_id)
        if threading.current_thread() is threading.main_thread() and shutil.which("setpriv"):
            prefix += ["setpriv", "--pdeathsig", "KILL", "--"]
        return prefix + argv

    def pause(self) -> None:
        self.assert_alive()
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.alive():
            os.kill(self.proc.pid, signal.SIGCONT)
        self.paused = False

    def kill9(self) -> None:
        super().kill9()
        self.paused = False

    def reachable(self) -> bool:
        return self.alive() and not self.paused


class NetnsCluster:
    """Nodes 1..n, each a voter and a broker, in a private network."""

    def __init__(self, workdir: Path, nodes: int = 3, session_timeout_ms: int = SESSION_TIMEOUT_MS_DEFAULT,
                 extra_args: list[str] | tuple[str, ...] = ()) -> None:
        self.workdir = Path(workdir)
        self.session_timeout_ms = session_timeout_ms
        self.net = NetnsNetwork(list(range(1, nodes + 1)))
        self.extra_args = list(extra_args)
        self.nodes: dict[int, NetnsNode] = {}

    # -- lifecycle

    def start(self) -> "NetnsCluster":
        self.net.create()
        voters = ",".join(f"{i}@{self.net.ip(i)}:{CONTROLLER_PORT}" for i in self.net.nodes)
        for i in self.net.nodes:
            args = ["--controller-quorum-voters", voters,
                    "--broker-session-timeout-ms", str(self.session_timeout_ms), *self.extra_args]
            self.nodes[i] = NetnsNode(self.net, i, self.workdir / f"node{i}", args)
        for node in self.nodes.values():  # no node is ready before a quorum exists
            node.start(wait=False)
        for node in self.nodes.values():
            node.wait_ready(timeout_s=CLUSTER_READY_WAIT_S)
        for i in self.nodes:
            self.wait_for("every broker registered", lambda md: len(md["brokers"]) == len(self.nodes), via=i,
                          timeout_s=CLUSTER_READY_WAIT_S)
        return self

    def stop(self) -> list[str]:
        """Resumes paused nodes, heals, SIGTERMs every live node (each must
        exit 0) and removes the network. Returns what went wrong, so a test
        fixture can fail on it after cleaning up everything."""
        errors = []
        for node in self.nodes.values():
            node.resume()
        if self.net.created:
            self.net.heal()
        for node in self.nodes.values():
            if node.proc is not None and not node.alive() and not node.expected_down:
                errors.append(f"{node.name} died during the run (exit status {node.proc.returncode})")
            elif node.alive():
                try:
                    node.stop(timeout_s=STOP_WAIT_S)
                except AssertionError as e:
                    errors.append(str(e))
                finally:
                    node.cleanup()
        errors += self.net.teardown()
        return errors

    def __enter__(self) -> "NetnsCluster":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- addresses and metadata

    def bootstrap(self, *ids: int) -> str:
        ids = ids or tuple(self.nodes)
        return ",".join(self.nodes[i].bootstrap for i in ids)

    def metadata(self, via: int | None = None, topics: list[str] | None = None) -> dict:
        """Metadata as node `via` sees it, or as the first reachable node does."""
        order = [via] if via is not None else [i for i, n in self.nodes.items() if n.reachable()]
        last: Exception | None = None
        for i in order:
            try:
                with kafka_raw.RawConn(self.nodes[i].host, KAFKA_PORT, timeout_s=METADATA_WAIT_S) as c:
                    return c.metadata(topics)
            except (OSError, AssertionError, kafka_raw.ConnectionClosed) as e:
                last = e
        raise BrokerError(f"no node answered Metadata (asked {order}): {last}")

    def wait_for(self, what: str, check, via: int | None = None, topics: list[str] | None = None,
                 timeout_s: float = LEADER_WAIT_S) -> dict:
        deadline = time.monotonic() + timeout_s
        md = None
        while time.monotonic() < deadline:
            try:
                md = self.metadata(via, topics)
                if check(md):
                    return md
            except (OSError, AssertionError):
                pass
            time.sleep(POLL_INTERVAL_S)
        raise AssertionError(f"{what}: not within {timeout_s}s; last metadata {md}")

    def controller(self) -> int:
        return self.metadata()["controller_id"]

    def leaders(self, topic: str, via: int | None = None) -> dict[int, int]:
        return leaders_of(self.metadata(via, [topic]), topic)

    def leader(self, topic: str, partition: int) -> int:
        return self.leaders(topic)[partition]

    def wait_for_leaders(self, topic: str, partitions: int, timeout_s: float = LEADER_WAIT_S) -> dict[int, int]:
        """Waits until every reachable node sees every partition led by a
        reachable node, the same leaders everywhere; returns them."""
        deadline = time.monotonic() + timeout_s
        views: dict[int, dict] = {}
        while time.monotonic() < deadline:
            views = {}
            for i, node in self.nodes.items():
                if node.reachable():
                    try:
                        views[i] = self.leaders(topic, via=i)
                    except (OSError, AssertionError, ValueError):
                        views[i] = {}
            placed = list(views.values())
            if placed and all(v == placed[0] for v in placed) and len(placed[0]) == partitions and all(
                leader in self.nodes and self.nodes[leader].reachable() for leader in placed[0].values()
            ):
                return placed[0]
            time.sleep(POLL_INTERVAL_S)
        raise AssertionError(f"{topic}: leaders not settled within {timeout_s}s; views {views}")

    def create_topic(self, topic: str, partitions: int, replication_factor: int = 1,
                     config: dict | None = None) -> dict[int, int]:
        admin = AdminClient({"bootstrap.servers": self.bootstrap(), "logger": clients.librdkafka_log})
        fs = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=replication_factor,
                                           config=config or {})], operation_timeout=30, request_timeout=30)
        fs[topic].result(timeout=60)
        return self.wait_for_leaders(topic, partitions)

    def log_tails(self) -> str:
        return "\n".join(node.log_tail() for node in self.nodes.values())


def leaders_of(md: dict, topic: str) -> dict[int, int]:
    [t] = [t for t in md["topics"] if t["name"] == topic]
    return {p["partition"]: p["leader"] for p in t["partitions"]}
