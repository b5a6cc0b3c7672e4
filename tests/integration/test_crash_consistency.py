"""scripts/crash-test: SIGKILL the broker under acks=all load, check history."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from clients import Rec
from conftest import REPO_ROOT, broker_binary

SCRIPT = REPO_ROOT / "scripts" / "crash-test"
KILLS = 20
IDEMPOTENT_KILLS = 10
RUN_S_MAX = 300


def load_script():
    loader = importlib.machinery.SourceFileLoader("crash_test", str(SCRIPT))
    spec = importlib.util.spec_from_loader("crash_test", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def run_crash_test(kills: int, *extra: str) -> tuple[dict[str, str], str]:
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--kills", str(kills), "--broker", str(broker_binary()), *extra],
        capture_output=True,
        text=True,
        timeout=RUN_S_MAX,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    table = dict(
        line.rsplit(None, 1) for line in run.stdout.splitlines() if line[:1].isalpha() and line.split()[-1].isdigit()
    )
    assert int(table["kills"]) == kills, report
    assert int(table["records acked"]) > 0, report
    for kind in ("lost", "duplicated", "moved", "reordered", "phantom", "gaps"):
        assert int(table[kind]) == 0, report
    return table, report


@pytest.mark.slow
def test_crash_consistency_20_kills():
    run_crash_test(KILLS)


@pytest.mark.slow
def test_crash_consistency_idempotent_exactly_once():
    """enable.idempotence=True with retries across each kill -9: every acked
    record exactly once at its acked offset, no duplicates at all."""
    table, report = run_crash_test(IDEMPOTENT_KILLS, "--idempotent")
    assert int(table["fatal"]) == 0, report


def test_crash_test_checker_catches_each_violation():
    """The checker is what makes the script worth running: feed it a history
    and a log with one of each violation."""
    ct = load_script()
    h = ct.History()
    for seq, value in enumerate([b"a", b"b", b"c", b"d"]):
        h.sent[value] = (0, seq)
    h.acked = {b"a": (0, 0), b"b": (0, 1), b"c": (0, 2), b"d": (1, 0)}
    stored = [
        Rec(0, 0, None, b"a", 0),
        Rec(0, 1, None, b"c", 0),  # c moved to b's place, b lost, order broken
        Rec(0, 2, None, b"b", 0),
        Rec(0, 4, None, b"zz", 0),  # gap, and never sent
        Rec(1, 0, None, b"d", 0),
        Rec(1, 1, None, b"d", 0),  # duplicate (its second copy is also "moved")
    ]
    counts = ct.check(h, stored)
    assert counts == {"lost": 0, "duplicated": 1, "moved": 3, "reordered": 1, "phantom": 1, "gaps": 1}
    stored = [r for r in stored if r.value != b"b"]
    assert ct.check(h, stored)["lost"] == 1
