"""Cluster fault harness (issue 21): Jepsen-style nemesis runs against real
corestreamd processes.

Layout, one concern per module:

    netns.py     bridge + one network namespace per broker, veth pairs,
                 iptables partitions; reaps what a killed run left behind
    cluster.py   corestreamd nodes started with `ip netns exec`, their
                 Metadata view (leaders, controller), kill/pause/restart
    proxy.py     userspace TCP proxy adding delay and dropping connections
                 (this kernel has no netem)
    history.py   the JSON-lines history every worker appends to
    workload.py  recording producers, consumers and the final read
    nemesis.py   seeded fault schedules and the faults themselves
    checker.py   reads a history, reports each kind of anomaly (no broker)
    scenarios.py runs parameterised by replication factor (smoke at RF 1,
                 the RF 3 scenarios of issue 21)

Used from pytest (tests/nemesis/test_*.py) and from scripts/crash-test
--cluster. The helpers of tests/integration (kafka_raw, clients, conftest's
Broker) are reused, so that directory is put on sys.path here, the way
scripts/crash-test already does it.
"""

from __future__ import annotations

import sys
from pathlib import Path

INTEGRATION_DIR = Path(__file__).resolve().parent.parent / "integration"
if str(INTEGRATION_DIR) not in sys.path:
    sys.path.insert(0, str(INTEGRATION_DIR))
