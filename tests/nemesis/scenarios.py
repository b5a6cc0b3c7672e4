"""Nemesis runs: workload + faults + final read + checker, parameterised by
replication factor.

`smoke` runs today at RF 1 (it is in the pytest suite). The others are the
RF 3 scenarios of issue 21; they take `replication_factor` and wait for
replication: tests/nemesis/rf3_scenarios.py holds their tests, out of the
suite until then, and scripts/crash-test --cluster runs each. At RF 1 they
fail by design: a cut-off RF 1 leader acks acks=all writes alone, and a
dead leader's partitions have no leader until it returns.

Every run prints its seed and history path first (replay: pass the same
seed; the fault schedule and every random choice of the workload come from
it) and returns a Result whose `report` is the checker's.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import kafka_raw  # noqa: E402  (tests/integration)
from nemesis import checker, workload
from nemesis.cluster import NO_LEADER, NetnsCluster
from nemesis.history import History
from nemesis.nemesis import Nemesis, Step, schedule

PARTITIONS_DEFAULT = 3
MIN_INSYNC_REPLICAS_RF3 = 2
# After the last fault, the workload runs this long on a healed cluster, so
# what was retried during the faults gets its answer before the stop.
CALM_S = 2.0
PRODUCERS_DEFAULT = 2
KAFKA_NOT_ENOUGH_REPLICAS = 19
KAFKA_NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20
KAFKA_REQUEST_TIMED_OUT = 7
PROBE_INTERVAL_S = 0.2
PROBE_TIMEOUT_MS = 2_000


@dataclass
class RunConfig:
    seed: int
    history_path: Path
    replication_factor: int = 1
    partitions: int = PARTITIONS_DEFAULT
    producers: int = PRODUCERS_DEFAULT
    consumers: int = 1
    rate_per_s: float = workload.PRODUCE_RATE_PER_S_DEFAULT
    topic: str = field(default_factory=lambda: f"nemesis-{uuid.uuid4().hex[:8]}")


@dataclass
class Result:
    report: checker.Report
    history: History
    faults: list[dict]
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.report.ok and not any(self.extra.get("violations", []))



# How long the transactional loop may take to commit again after the
# coordinator kills before the run reports it stuck.
LOOP_RECOVERY_S = 30.0

def topic_config(replication_factor: int) -> dict:
    return {"min.insync.replicas": str(MIN_INSYNC_REPLICAS_RF3)} if replication_factor >= 3 else {}


def announce(cfg: RunConfig, what: str) -> None:
    print(f"nemesis {what}: seed {cfg.seed}, history {cfg.history_path}", flush=True)


def run(cluster: NetnsCluster, cfg: RunConfig, what: str, faults, drain=None, more_topics: tuple = ()) -> Result:
    """The frame of every scenario: topic, producers and consumers, then
    `faults(nemesis)` in this (the main) thread, calm, stop the producers,
    `drain()` (workers that consume what was produced finish), final read of
    the topic and `more_topics`, check. Restarts happen in the main thread,
    so restarted brokers keep the parent-death signal (cluster.py)."""
    announce(cfg, what)
    history = History(cfg.history_path, cfg.seed)
    rng = random.Random(cfg.seed)
    cluster.create_topic(cfg.topic, cfg.partitions, cfg.replication_factor, topic_config(cfg.replication_factor))
    producers = [
        workload.ProducerWorker(f"p{i}", history, cluster.bootstrap(), cfg.topic, cfg.partitions,
                                seed=rng.randrange(2**32), rate_per_s=cfg.rate_per_s,
                                **{"linger.ms": rng.choice([0, 1, 5])})
        for i in range(cfg.producers)
    ]
    consumers = [workload.ConsumerWorker(f"c{i}", history, cluster.bootstrap(), cfg.topic, cfg.partitions)
                 for i in range(cfg.consumers)]
    nem = Nemesis(cluster, history, cfg.topic, seed=rng.randrange(2**32))
    workers = [*producers, *consumers]
    for w in workers:
        w.start()
    extra: dict = {}
    try:
        extra = faults(nem) or {}
        time.sleep(CALM_S)
    finally:
        for w in producers:
            w.stop()
        for w in producers:
            w.join(timeout=workload.FLUSH_WAIT_S_MAX + 10)
    cluster.wait_for_leaders(cfg.topic, cfg.partitions)
    if drain is not None:
        drain()
    for w in consumers:
        w.stop()
        w.join(timeout=30)
    for topic in (cfg.topic, *more_topics):
        workload.final_read(history, cluster.bootstrap(), topic, cfg.partitions)
    history.close()
    report = checker.check(history.events)
    print(report.summary(), flush=True)
    return Result(report, history, nem.applied, extra)


# ---------------------------------------------------------------- RF 1 (runs today)


SMOKE_KILL_DOWN_S = 1.0
SMOKE_PAUSE_S = 2.0  # under the session timeout: paused, not fenced


def smoke(cluster: NetnsCluster, cfg: RunConfig) -> Result:
    """SIGKILL and restart the leader of partition 0, then SIGSTOP/SIGCONT
    another broker, under acks=all idempotent load. At RF 1 an acked record
    is fsynced on its one broker, so nothing acked may be missing after the
    restart."""

    def faults(nem: Nemesis) -> dict:
        time.sleep(1.0)
        killed = nem.apply(Step(0.0, "kill", "leader", SMOKE_KILL_DOWN_S, partition=0))
        cluster.wait_for_leaders(cfg.topic, cfg.partitions)
        time.sleep(0.5)
        other = next(i for i in cluster.nodes if i != killed)
        nem.apply(Step(0.0, "pause", f"node:{other}", SMOKE_PAUSE_S))
        return {}

    return run(cluster, cfg, "smoke", faults)


def random_faults(cluster: NetnsCluster, cfg: RunConfig, steps: int) -> Result:
    """A seeded schedule of kills, pauses and isolations of leaders and
    random nodes (the long run of scripts/crash-test --cluster)."""
    plan = schedule(cfg.seed, steps, partitions=cfg.partitions)

    def faults(nem: Nemesis) -> dict:
        nem.run(plan)
        return {}

    return run(cluster, cfg, f"random schedule of {steps} faults", faults)


# ---------------------------------------------------------------- RF 3 (enable with replication)


def leader_kill_loop(cluster: NetnsCluster, cfg: RunConfig, kills: int = 5, down_s: float = 2.0) -> Result:
    """SIGKILL the leader of partition 0 again and again under acks=all
    idempotent load (RF 3, min.insync 2): every acked record exactly once
    (checker: no lost, no duplicate, no divergent)."""

    def faults(nem: Nemesis) -> dict:
        rng = random.Random(cfg.seed)
        for _ in range(kills):
            time.sleep(rng.uniform(0.5, 2.0))
            nem.apply(Step(0.0, "kill", "leader", down_s, partition=0))
            cluster.wait_for_leaders(cfg.topic, cfg.partitions)
        return {}

    return run(cluster, cfg, f"leader SIGKILL loop x{kills} (RF {cfg.replication_factor})", faults)


def leader_partitioned(cluster: NetnsCluster, cfg: RunConfig, hold_s: float | None = None) -> Result:
    """The leader of partition 0 cut off from the other two (iptables; the
    client still reaches it). A new leader must be elected on the majority
    side, and the old leader must answer no acks=all write while cut off
    (NOT_ENOUGH_REPLICAS[_AFTER_APPEND], REQUEST_TIMED_OUT or
    NOT_LEADER: never success). After healing, the checker's
    lost_after_read says whether a consumer saw a record later truncated."""
    hold_s = hold_s if hold_s is not None else cluster.session_timeout_ms / 1000 * 3

    def faults(nem: Nemesis) -> dict:
        time.sleep(1.0)
        old = cluster.leader(cfg.topic, 0)
        majority = [i for i in cluster.nodes if i != old]
        step = Step(0.0, "isolate", f"node:{old}", hold_s)
        nem.begin(step, old)
        cluster.net.isolate(old)
        violations, new_leader = [], None
        try:
            deadline = time.monotonic() + hold_s
            while time.monotonic() < deadline:
                violations += probe_acks_all(cluster, nem.history, cfg.topic, old, deadline)
                if new_leader is None:
                    led = cluster.leaders(cfg.topic, via=majority[0]).get(0, NO_LEADER)
                    new_leader = led if led not in (NO_LEADER, old) else None
        finally:
            cluster.net.heal()
            nem.end(step, old)
        if new_leader is None:
            violations.append(f"no new leader for partition 0 on the majority side within {hold_s}s")
        return {"violations": violations, "old_leader": old, "new_leader": new_leader}

    return run(cluster, cfg, f"leader partitioned (RF {cfg.replication_factor})", faults)


def probe_acks_all(cluster: NetnsCluster, history: History, topic: str, node: int, until: float) -> list[str]:
    """Sends acks=all single-record produces for partition 0 straight to
    `node` until `until`; any success is a violation (the node is cut off
    from every other replica). Each probe is in the history as a send."""
    violations = []
    seq = 0
    while time.monotonic() < until:
        value = f"probe-{node}-{uuid.uuid4().hex[:6]}-{seq}"
        seq += 1
        history.append({"type": "invoke", "process": "probe", "value": value, "topic": topic, "partition": 0,
                        "txn": None})
        try:
            with kafka_raw.RawConn(cluster.nodes[node].host, 9092, timeout_s=PROBE_TIMEOUT_MS / 1000 + 3) as c:
                reply = c.produce(topic, 0, kafka_raw.record_batch_v2([(None, value.encode())]), acks=-1,
                                  timeout_ms=PROBE_TIMEOUT_MS)
        except (OSError, kafka_raw.ConnectionClosed) as e:
            history.append({"type": "send", "process": "probe", "value": value, "topic": topic, "txn": None,
                            "partition": 0, "outcome": "unknown", "error": str(e)})
            continue
        if reply["error_code"] == 0:
            history.append({"type": "send", "process": "probe", "value": value, "topic": topic, "txn": None,
                            "partition": 0, "offset": reply["base_offset"], "outcome": "ok"})
            violations.append(f"isolated node {node} acked {value} at offset {reply['base_offset']} with acks=all")
        else:
            history.append({"type": "send", "process": "probe", "value": value, "topic": topic, "txn": None,
                            "partition": 0, "outcome": "unknown", "error": f"code {reply['error_code']}"})
        time.sleep(PROBE_INTERVAL_S)
    return violations


def controller_paused(cluster: NetnsCluster, cfg: RunConfig, pause_s: float | None = None) -> Result:
    """SIGSTOP the active controller for twice the session timeout, then
    SIGCONT. While paused and after, Metadata from every reachable node is
    sampled: each (partition, leader epoch) must have one leader (no split
    brain), and the cluster must settle with one controller."""
    pause_s = pause_s if pause_s is not None else cluster.session_timeout_ms / 1000 * 2
    samples: list[tuple[int, int, int]] = []  # partition, leader epoch, leader

    def sample() -> None:
        for i, node in cluster.nodes.items():
            if not node.reachable():
                continue
            try:
                md = cluster.metadata(i, [cfg.topic])
            except (OSError, AssertionError):
                continue
            for t in md["topics"]:
                for p in t["partitions"]:
                    if p["leader"] != NO_LEADER:
                        samples.append((p["partition"], p.get("leader_epoch", -1), p["leader"]))

    def faults(nem: Nemesis) -> dict:
        time.sleep(1.0)
        controller = cluster.controller()
        step = Step(0.0, "pause", "controller", pause_s)
        nem.begin(step, controller)
        cluster.nodes[controller].pause()
        try:
            deadline = time.monotonic() + pause_s
            while time.monotonic() < deadline:
                sample()
                time.sleep(PROBE_INTERVAL_S)
        finally:
            cluster.nodes[controller].resume()
            nem.end(step, controller)
        settle = time.monotonic() + cluster.session_timeout_ms / 1000 * 2
        while time.monotonic() < settle:
            sample()
            time.sleep(PROBE_INTERVAL_S)
        leaders_by_epoch: dict[tuple[int, int], set[int]] = {}
        for partition, epoch, leader in samples:
            leaders_by_epoch.setdefault((partition, epoch), set()).add(leader)
        violations = [f"partition {p} epoch {e}: leaders {sorted(ls)}" for (p, e), ls in leaders_by_epoch.items()
                      if len(ls) > 1]
        controllers = {cluster.metadata(i)["controller_id"] for i in cluster.nodes}
        if len(controllers) != 1:
            violations.append(f"nodes disagree on the controller after the pause: {controllers}")
        return {"violations": violations, "paused_controller": controller, "samples": len(samples)}

    return run(cluster, cfg, f"active controller paused (RF {cfg.replication_factor})", faults)


def java_string_hash(s: str) -> int:
    """Java's String.hashCode (Kafka maps a group or transactional id to
    its coordinator partition with it: abs(hash) % partitions)."""
    h = 0
    for ch in s.encode("utf-16-be").decode("utf-16-be"):
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h - 2**32 if h >= 2**31 else h


def coordinator_node(cluster: NetnsCluster, internal_topic: str, key: str) -> int:
    md = cluster.metadata(None, [internal_topic])
    [t] = [t for t in md["topics"] if t["name"] == internal_topic]
    partition = (java_string_hash(key) & 0x7FFFFFFF) % len(t["partitions"])
    return {p["partition"]: p["leader"] for p in t["partitions"]}[partition]


TXN_LOOP_CATCH_UP_S = 60.0


def group_txn_loop(cluster: NetnsCluster, cfg: RunConfig, down_s: float = 2.0) -> Result:
    """A transactional consume-transform-produce loop (a consumer group
    member) runs while the broker of its group coordinator is SIGKILLed and
    restarted, and then that of its transaction coordinator. The loop must
    go on (commit after the kills) and every input record must be in the
    output exactly once (checker.check_transform), besides the usual checks
    (over both topics: no aborted or uncommitted read by the loop)."""
    out_topic = f"{cfg.topic}-out"
    group, tid = f"g-{cfg.topic}", f"tx-{cfg.topic}"
    loops: list[workload.TxnLoopWorker] = []

    def faults(nem: Nemesis) -> dict:
        cluster.create_topic(out_topic, cfg.partitions, cfg.replication_factor, topic_config(cfg.replication_factor))
        loop = workload.TxnLoopWorker("txloop", nem.history, cluster.bootstrap(), cfg.topic, out_topic, group, tid)
        loops.append(loop)
        loop.start()
        time.sleep(3.0)
        for internal, key in (("__consumer_offsets", group), ("__transaction_state", tid)):
            node = coordinator_node(cluster, internal, key)
            nem.apply(Step(0.0, "kill", f"node:{node}", down_s))
            cluster.wait_for_leaders(cfg.topic, cfg.partitions)
            time.sleep(2.0)
        # Liveness: the loop commits again within LOOP_RECOVERY_S (fencing,
        # a new coordinator loading its log and the client's backoff take
        # a few session timeouts on two cores).
        committed_before = loop.committed
        deadline = time.monotonic() + LOOP_RECOVERY_S
        while loop.committed <= committed_before and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        recovered = loop.committed > committed_before
        return {"violations": [] if recovered else [f"the loop committed nothing within {LOOP_RECOVERY_S} s after the kills"]}

    def drain() -> None:
        """The loop reads until it has nothing left for a while."""
        [loop] = loops
        deadline = time.monotonic() + TXN_LOOP_CATCH_UP_S
        last = -1
        while time.monotonic() < deadline and loop.committed != last:
            last = loop.committed
            time.sleep(3.0)
        loop.stop()
        loop.join(timeout=60)

    result = run(cluster, cfg, f"group + transactional loop through coordinator kills (RF {cfg.replication_factor})",
                 faults, drain=drain, more_topics=(out_topic,))
    transform = checker.check_transform(result.history.events, cfg.topic, out_topic, workload.OUTPUT_PREFIX)
    result.extra["transform"] = transform
    result.extra.setdefault("violations", []).extend(f"{kind}: {vals[:5]}" for kind, vals in transform.items() if vals)
    return result
