"""A private network for a cluster: one Linux bridge in the root namespace,
one network namespace per broker, joined to the bridge by a veth pair.

    root ns:  bridge <name>b  10.A.B.1/24   (the test client lives here)
                 |-- veth <name>h1 <-> <name>n1 in netns <name>-1  10.A.B.11
                 |-- veth <name>h2 <-> <name>n2 in netns <name>-2  10.A.B.12
                 `-- ...

Why namespaces and not loopback ports: a partition must cut a broker off
from its peers while the client still reaches it (the issue's "old leader
answers no acks=all write" check), and iptables rules inside a namespace do
exactly that without touching the host's own firewall. Everything here is
built into the kernel (veth, bridge, nf_tables); this kernel has no netem,
so delay and loss come from proxy.py instead.

Names and the subnet are unique per run (a random run id, and a /24 that
no interface of the root namespace uses). Before anything is created a
state file /run/corestream-nemesis/<run id>.json records the owning pid;
every new network first reaps the resources of runs whose owner is dead
(a SIGKILLed test run cannot tear down), so leftovers never pile up. A live
run's resources are never touched, so concurrent runs are safe.

Partitions: `partition([{1}, {2, 3}])` adds DROP rules, in a chain of our
own in each namespace, for traffic between nodes of different components;
the bridge's address (the client) is never dropped. `heal()` flushes the
chains. `link_down(node)` is the blunter alternative: the node's veth goes
down, cutting the client off too.
"""

from __future__ import annotations

import atexit
import errno
import ipaddress
import json
import os
import random
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

NAME_PREFIX = "csn"
STATE_DIR = Path("/run/corestream-nemesis")
# 10.<SUBNET_SECOND_OCTET_MIN..MAX>.x.0/24: far from the usual 10.0.x.x
# container networks; a /24 in use on the host is skipped.
SUBNET_SECOND_OCTET_MIN, SUBNET_SECOND_OCTET_MAX = 150, 199
SUBNET_PICKS_MAX = 64
NODE_HOST_OFFSET = 10  # node i has host address .(10 + i)
IPTABLES_CHAIN = "NEMESIS"
COMMAND_WAIT_S_MAX = 20.0
RUN_ID_HEX_CHARS = 5  # interface names stay under IFNAMSIZ (15): "csn" + 5 + "h" + 2


class NetnsError(RuntimeError):
    """The network could not be built (not root, no `ip`, a command failed)."""


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=COMMAND_WAIT_S_MAX)
    if check and proc.returncode != 0:
        raise NetnsError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def unavailable_reason() -> str | None:
    """Why namespaces cannot be used here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "`ip` (iproute2) is not installed"
    return None


def iptables_available() -> bool:
    return shutil.which("iptables") is not None


@dataclass
class NetnsNetwork:
    nodes: list[int]
    run_id: str = field(default_factory=lambda: os.urandom(8).hex()[:RUN_ID_HEX_CHARS])
    subnet: ipaddress.IPv4Network | None = None
    created: bool = False
    partitioned: bool = False

    # -- names and addresses

    @property
    def name(self) -> str:
        return f"{NAME_PREFIX}{self.run_id}"

    @property
    def bridge(self) -> str:
        return f"{self.name}b"

    def netns(self, node: int) -> str:
        return f"{self.name}-{node}"

    def host_veth(self, node: int) -> str:
        return f"{self.name}h{node}"

    def ns_veth(self, node: int) -> str:
        return f"{self.name}n{node}"

    @property
    def gateway_ip(self) -> str:
        return str(self.subnet.network_address + 1)

    def ip(self, node: int) -> str:
        return str(self.subnet.network_address + NODE_HOST_OFFSET + node)

    def exec_prefix(self, node: int) -> list[str]:
        """argv prefix running a command inside node's namespace."""
        return ["ip", "netns", "exec", self.netns(node)]

    def ns_run(self, node: int, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return run(*self.exec_prefix(node), *cmd, check=check)

    # -- lifecycle

    def create(self) -> "NetnsNetwork":
        reason = unavailable_reason()
        if reason:
            raise NetnsError(reason)
        reap_leftovers()
        self.subnet = pick_subnet()
        self._write_state()
        atexit.register(self.teardown)
        try:
            run("ip", "link", "add", self.bridge, "type", "bridge")
            run("ip", "addr", "add", f"{self.gateway_ip}/24", "dev", self.bridge)
            run("ip", "link", "set", self.bridge, "up")
            for node in self.nodes:
                self._add_node(node)
            self.created = True
        except BaseException:
            self.teardown()
            raise
        return self

    def _add_node(self, node: int) -> None:
        ns, host, inner = self.netns(node), self.host_veth(node), self.ns_veth(node)
        run("ip", "netns", "add", ns)
        run("ip", "link", "add", host, "type", "veth", "peer", "name", inner)
        run("ip", "link", "set", inner, "netns", ns)
        run("ip", "link", "set", host, "master", self.bridge)
        run("ip", "link", "set", host, "up")
        self.ns_run(node, "ip", "addr", "add", f"{self.ip(node)}/24", "dev", inner)
        self.ns_run(node, "ip", "link", "set", inner, "up")
        self.ns_run(node, "ip", "link", "set", "lo", "up")
        if iptables_available():
            self.ns_run(node, "iptables", "-N", IPTABLES_CHAIN)
            self.ns_run(node, "iptables", "-I", "INPUT", "-j", IPTABLES_CHAIN)
            self.ns_run(node, "iptables", "-I", "OUTPUT", "-j", IPTABLES_CHAIN)

    def _state_path(self) -> Path:
        return STATE_DIR / f"{self.run_id}.json"

    def _write_state(self) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        state = {"pid": os.getpid(), "name": self.name, "subnet": str(self.subnet), "nodes": self.nodes}
        self._state_path().write_text(json.dumps(state))

    def teardown(self) -> list[str]:
        """Removes everything this network made; safe to call twice. Kills
        what still runs in its namespaces (our brokers) first, since a
        namespace with processes outlives `ip netns del`."""
        errors = _teardown(self.name, self.nodes)
        self._state_path().unlink(missing_ok=True)
        self.created = False
        atexit.unregister(self.teardown)
        return errors

    def __enter__(self) -> "NetnsNetwork":
        return self.create()

    def __exit__(self, *exc) -> None:
        self.teardown()

    # -- faults

    def partition(self, components: list[set[int]]) -> None:
        """Drops every packet between nodes of different components (both
        directions, rules on both ends). Nodes in no component keep talking
        to everyone."""
        if not iptables_available():
            raise NetnsError("iptables is not installed (apt-get install iptables; scripts/lib/deps.sh)")
        for a_side in components:
            for a in a_side:
                for b_side in components:
                    if b_side is a_side:
                        continue
                    for b in b_side:
                        self.ns_run(a, "iptables", "-A", IPTABLES_CHAIN, "-s", self.ip(b), "-j", "DROP")
                        self.ns_run(a, "iptables", "-A", IPTABLES_CHAIN, "-d", self.ip(b), "-j", "DROP")
        self.partitioned = True

    def isolate(self, node: int) -> None:
        self.partition([{node}, {n for n in self.nodes if n != node}])

    def heal(self) -> None:
        if iptables_available():
            for node in self.nodes:
                self.ns_run(node, "iptables", "-F", IPTABLES_CHAIN)
        for node in self.nodes:
            run("ip", "link", "set", self.host_veth(node), "up")
        self.partitioned = False

    def link_down(self, node: int) -> None:
        run("ip", "link", "set", self.host_veth(node), "down")
        self.partitioned = True


def pick_subnet() -> ipaddress.IPv4Network:
    used = run("ip", "-4", "-o", "addr", "show").stdout + run("ip", "-4", "route", "show").stdout
    rng = random.Random()  # not the run's seed: addresses are not part of a replay
    for _ in range(SUBNET_PICKS_MAX):
        second = rng.randint(SUBNET_SECOND_OCTET_MIN, SUBNET_SECOND_OCTET_MAX)
        third = rng.randint(0, 255)
        if f"10.{second}.{third}." not in used:
            return ipaddress.IPv4Network(f"10.{second}.{third}.0/24")
    raise NetnsError(f"no free 10.x.y.0/24 subnet after {SUBNET_PICKS_MAX} picks")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as e:
        return e.errno == errno.EPERM
    return True


def _teardown(name: str, nodes: list[int]) -> list[str]:
    errors = []
    for node in nodes:
        ns = f"{name}-{node}"
        pids = run("ip", "netns", "pids", ns, check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGCONT)  # a paused broker cannot die until resumed
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        proc = run("ip", "netns", "del", ns, check=False)
        if proc.returncode != 0 and "No such file" not in proc.stderr:
            errors.append(proc.stderr.strip())
        run("ip", "link", "del", f"{name}h{node}", check=False)
    run("ip", "link", "del", f"{name}b", check=False)
    return errors


def leftovers() -> tuple[list[str], list[str]]:
    """(namespaces, links) whose names carry our prefix."""
    namespaces = [line.split()[0] for line in run("ip", "netns", "list").stdout.splitlines() if line.strip()]
    links = [line.split(":")[1].strip().split("@")[0] for line in run("ip", "-o", "link", "show").stdout.splitlines()]
    return (
        [n for n in namespaces if n.startswith(NAME_PREFIX)],
        [link for link in links if link.startswith(NAME_PREFIX)],
    )


def reap_leftovers() -> list[str]:
    """Tears down the networks of dead runs (state file with a dead pid) and
    prefixed resources no state file claims. Returns the names reaped."""
    live, reaped = set(), []
    if STATE_DIR.exists():
        for path in STATE_DIR.glob("*.json"):
            try:
                state = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                continue  # being written by a starting run
            if _pid_alive(state["pid"]):
                live.add(state["name"])
                continue
            _teardown(state["name"], state["nodes"])
            path.unlink(missing_ok=True)
            reaped.append(state["name"])
    namespaces, links = leftovers()
    run_len = len(NAME_PREFIX) + RUN_ID_HEX_CHARS
    for ns in namespaces:
        if ns[:run_len] not in live:
            _teardown(ns.rsplit("-", 1)[0], [int(ns.rsplit("-", 1)[1])] if ns.rsplit("-", 1)[1].isdigit() else [])
            reaped.append(ns)
    for link in leftovers()[1]:
        if link[:run_len] not in live:
            run("ip", "link", "del", link, check=False)
            reaped.append(link)
    return reaped
