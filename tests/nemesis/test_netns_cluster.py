"""The nemesis harness against a real three-node cluster in network
namespaces, at replication factor 1 (what the broker has today).

The RF 3 scenarios of issue 21 (scenarios.py) are not here: they need
replication and would fail by design at RF 1.
"""

from __future__ import annotations

import socket
import time

from nemesis import netns, scenarios
from nemesis.cluster import KAFKA_PORT


def test_smoke_rf1_leader_kill_and_pause_lose_no_acked_record(netns_cluster, seed, tmp_path):
    cfg = scenarios.RunConfig(seed=seed, history_path=tmp_path / "history.jsonl", replication_factor=1)
    result = scenarios.smoke(netns_cluster, cfg)
    report = result.report
    assert [f["op"] for f in result.faults] == ["kill", "pause"]
    assert result.faults[0]["node"] != result.faults[1]["node"]
    # the run exercised something: acks before and after the faults, reads
    assert report.stats["sends ok"] > 100, report.summary()
    assert report.stats["records polled"] > 0, report.summary()
    assert report.ok, f"history {cfg.history_path}, seed {seed}\n{report.summary()}"
    for node in netns_cluster.nodes.values():
        node.assert_alive()


def test_controller_paused_past_session_timeout_rf1_one_leader_per_epoch(netns_cluster, seed, tmp_path):
    """The RF 3 scenario's frame at RF 1: the active controller SIGSTOPped
    for twice the session timeout. Another controller takes over, the paused
    node (a broker too) is fenced, and comes back on SIGCONT; no partition
    epoch ever has two leaders, and nothing acked is lost."""
    cfg = scenarios.RunConfig(seed=seed, history_path=tmp_path / "history.jsonl", replication_factor=1)
    result = scenarios.controller_paused(netns_cluster, cfg)
    assert [f["op"] for f in result.faults] == ["pause"]
    assert result.extra["samples"] > 0
    assert result.extra["violations"] == []
    assert result.report.ok, f"history {cfg.history_path}, seed {seed}\n{result.report.summary()}"


ISOLATED_FENCED_WAIT_S = 30.0


def test_isolated_broker_is_fenced_but_reachable_and_heal_brings_it_back(netns_cluster):
    """The partition fault cuts a broker off from its peers, not from the
    client: the controller fences it after the session timeout while the
    client still gets answers from it; healing lets it register again."""
    cluster = netns_cluster
    controller = cluster.controller()
    victim = next(i for i in cluster.nodes if i != controller)
    cluster.net.isolate(victim)
    started = time.monotonic()
    cluster.wait_for("the isolated broker fenced", lambda md: victim not in {b["node_id"] for b in md["brokers"]},
                     via=controller, timeout_s=ISOLATED_FENCED_WAIT_S)
    fenced_s = time.monotonic() - started
    assert fenced_s >= cluster.session_timeout_ms / 1000 * 0.5, "fenced before any session could expire"
    with socket.create_connection((cluster.nodes[victim].host, KAFKA_PORT), timeout=5):
        pass  # the client (root namespace) still reaches it
    peer = next(i for i in cluster.nodes if i not in (victim, controller))
    probe = cluster.net.ns_run(victim, "python3", "-c",
                               f"import socket; socket.create_connection(('{cluster.net.ip(peer)}', {KAFKA_PORT}), 2)",
                               check=False)
    assert probe.returncode != 0, "the isolated broker still reaches its peer"
    cluster.net.heal()
    cluster.wait_for("the healed broker registered again", lambda md: victim in {b["node_id"] for b in md["brokers"]},
                     via=controller)
    print(f"isolated broker fenced after {fenced_s:.1f}s")


def test_leftover_network_of_a_dead_run_is_reaped(tmp_path):
    """A run killed before its teardown leaves a namespace, a bridge and
    veths behind; the next network reaps them (its owner pid is dead)."""
    dead = netns.NetnsNetwork([1])
    dead.subnet = netns.pick_subnet()
    netns.STATE_DIR.mkdir(parents=True, exist_ok=True)
    dead_pid = 2**22 + 1  # above pid_max's default: never a live process
    (netns.STATE_DIR / f"{dead.run_id}.json").write_text(
        f'{{"pid": {dead_pid}, "name": "{dead.name}", "subnet": "{dead.subnet}", "nodes": [1]}}')
    netns.run("ip", "netns", "add", dead.netns(1))
    netns.run("ip", "link", "add", dead.bridge, "type", "bridge")
    assert dead.netns(1) in netns.leftovers()[0]
    with netns.NetnsNetwork([1]) as live:
        namespaces, links = netns.leftovers()
        assert dead.netns(1) not in namespaces and dead.bridge not in links
        assert live.netns(1) in namespaces
    assert live.netns(1) not in netns.leftovers()[0]
