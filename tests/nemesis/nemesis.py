"""Faults, and seeded schedules of them.

A schedule is drawn up front from the run's seed, so the same seed gives
the same sequence of faults at the same times (replay). Targets are named
by role ("leader of partition 0", "the active controller", "a random
node") and resolved when the fault starts, from Metadata: the role, not a
fixed node id, is what a fault is about, and the node that holds it
depends on what happened earlier in the run.

Every fault is written to the history as a "nemesis" event when it starts
and when it ends, so a failing history shows what was done when.

Faults (op names):
    kill       SIGKILL, wait `hold_s`, start again (same data dir)
    pause      SIGSTOP, wait `hold_s`, SIGCONT
    isolate    iptables DROP between the node and every other node for
               `hold_s`, then heal (the client still reaches it)
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import asdict, dataclass

from nemesis.cluster import NO_LEADER, NetnsCluster
from nemesis.history import History

OPS = ("kill", "pause", "isolate")
TARGETS = ("leader", "controller", "random", "non-controller")
HOLD_S_MIN, HOLD_S_MAX = 1.0, 4.0
GAP_S_MIN, GAP_S_MAX = 1.0, 3.0
RESTART_READY_WAIT_S = 60.0


@dataclass(frozen=True)
class Step:
    """One fault: after `gap_s` of calm, `op` on `target` for `hold_s`."""

    gap_s: float
    op: str
    target: str  # a TARGETS name, or "node:<id>"
    hold_s: float
    partition: int = 0  # for target "leader"


def schedule(seed: int, steps: int, ops: tuple[str, ...] = OPS, targets: tuple[str, ...] = ("leader", "random"),
             hold_s: tuple[float, float] = (HOLD_S_MIN, HOLD_S_MAX),
             gap_s: tuple[float, float] = (GAP_S_MIN, GAP_S_MAX), partitions: int = 1) -> list[Step]:
    rng = random.Random(seed)
    return [
        Step(gap_s=round(rng.uniform(*gap_s), 3), op=rng.choice(ops), target=rng.choice(targets),
             hold_s=round(rng.uniform(*hold_s), 3), partition=rng.randrange(partitions))
        for _ in range(steps)
    ]


class Nemesis:
    """Applies steps to a cluster, recording each. `rng` (from the run's
    seed) picks among candidates when a target is "random"."""

    def __init__(self, cluster: NetnsCluster, history: History, topic: str, seed: int) -> None:
        self.cluster, self.history, self.topic = cluster, history, topic
        self.rng = random.Random(seed)
        self.stop_event = threading.Event()
        self.applied: list[dict] = []

    def resolve(self, step: Step) -> int:
        reachable = [i for i, n in self.cluster.nodes.items() if n.reachable()]
        if step.target.startswith("node:"):
            return int(step.target.split(":", 1)[1])
        if step.target == "leader":
            leader = self.cluster.leader(self.topic, step.partition)
            if leader != NO_LEADER:
                return leader
        controller = self.cluster.controller()
        if step.target == "controller" and controller in reachable:
            return controller
        if step.target == "non-controller":
            reachable = [i for i in reachable if i != controller] or reachable
        return self.rng.choice(reachable)

    def apply(self, step: Step) -> int:
        node = self.resolve(step)
        self._record(step, node, "start")
        {"kill": self.kill, "pause": self.pause, "isolate": self.isolate}[step.op](node, step.hold_s)
        self._record(step, node, "end")
        self.applied.append({**asdict(step), "node": node})
        return node

    def run(self, steps: list[Step]) -> None:
        """Applies the steps in order, each after its gap; returns early
        (with every fault healed) once stop() is called."""
        for step in steps:
            if self.stop_event.wait(step.gap_s):
                return
            self.apply(step)

    def stop(self) -> None:
        self.stop_event.set()

    def begin(self, step: Step, node: int) -> None:
        """For a fault a scenario applies itself (to act during it)."""
        self._record(step, node, "start")

    def end(self, step: Step, node: int) -> None:
        self._record(step, node, "end")
        self.applied.append({**asdict(step), "node": node})

    def _record(self, step: Step, node: int, phase: str) -> None:
        self.history.append({"type": "nemesis", "process": "nemesis", "op": step.op, "target": step.target,
                             "node": node, "hold_s": step.hold_s, "phase": phase})

    # -- the faults

    def kill(self, node: int, hold_s: float) -> None:
        n = self.cluster.nodes[node]
        n.kill9()
        time.sleep(hold_s)
        n.start(wait=True)

    def pause(self, node: int, hold_s: float) -> None:
        n = self.cluster.nodes[node]
        n.pause()
        try:
            time.sleep(hold_s)
        finally:
            n.resume()

    def isolate(self, node: int, hold_s: float) -> None:
        self.cluster.net.isolate(node)
        try:
            time.sleep(hold_s)
        finally:
            self.cluster.net.heal()
