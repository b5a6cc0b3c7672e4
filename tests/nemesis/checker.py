"""Checks a nemesis history (history.py) for the anomalies Jepsen's Kafka
test looks for. Pure function of the events: no broker, no clock.

Fault kinds (each a key of Report.faults):

    lost             acked (or in a committed transaction), but not in the
                     final read
    lost_after_read  a consumer read it, the final read does not have it
                     (invariant 5: no consumer reads a record later lost)
    duplicate        one value at two positions (topic, partition, offset)
    divergent        one position holding different values for different
                     readers (an ack's offset counts as a reader)
    aborted_read     a read_committed reader got a value of an aborted
                     transaction
    uncommitted_read a read_committed reader got a value of a transaction
                     before its commit was even asked for, or of one never
                     committed
    non_monotonic    within one consumer assignment epoch, a partition's
                     offsets did not strictly increase from poll to poll
    phantom          a value read that no producer ever tried to send

What is deliberately not a fault: a send with an unknown outcome that is
present or absent; the same position read twice (consumers re-read after
a rebalance or a seek, which starts a new epoch anyway); gaps in offsets
(transaction markers and compaction leave them).

Run on a file: `python -m nemesis.checker HISTORY.jsonl` (from tests/).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

FAULT_KINDS = (
    "lost",
    "lost_after_read",
    "duplicate",
    "divergent",
    "aborted_read",
    "uncommitted_read",
    "non_monotonic",
    "phantom",
)
# Examples kept per fault kind in a report; the counts are always complete.
EXAMPLES_PER_KIND_MAX = 10
READ_COMMITTED = "read_committed"

Position = tuple[str, int, int]  # topic, partition, offset


@dataclass
class Report:
    faults: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in FAULT_KINDS})
    counts: dict[str, int] = field(default_factory=lambda: {k: 0 for k in FAULT_KINDS})
    stats: dict[str, int] = field(default_factory=dict)
    # Problems with the history itself (no final read): nothing can be
    # concluded about lost writes, so the run does not pass.
    errors: list[str] = field(default_factory=list)

    def add(self, kind: str, what: str) -> None:
        self.counts[kind] += 1
        if len(self.faults[kind]) < EXAMPLES_PER_KIND_MAX:
            self.faults[kind].append(what)

    @property
    def ok(self) -> bool:
        return not self.errors and not any(self.counts.values())

    def found(self) -> set[str]:
        return {k for k, n in self.counts.items() if n}

    def summary(self) -> str:
        lines = [f"{k:<20}{v:>10}" for k, v in self.stats.items()]
        lines += [f"{k:<20}{v:>10}" for k, v in self.counts.items()]
        for kind in FAULT_KINDS:
            for what in self.faults[kind][:3]:
                lines.append(f"  e.g. {kind}: {what}")
        lines += [f"  history error: {e}" for e in self.errors]
        return "\n".join(lines)


@dataclass
class _Txns:
    """Transaction outcomes and the time each commit was asked for."""

    commit_invoked_t: dict[str, float] = field(default_factory=dict)
    committed: set[str] = field(default_factory=set)
    aborted: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, events: list[dict]) -> "_Txns":
        txns = cls()
        for e in events:
            if e.get("type") != "txn":
                continue
            phase, txn = e["phase"], e["txn"]
            if phase == "commit_invoke":
                txns.commit_invoked_t.setdefault(txn, e["t"])
            elif phase == "commit_ok":
                txns.committed.add(txn)
            elif phase == "abort_ok":
                txns.aborted.add(txn)
        return txns


def check(events: list[dict]) -> Report:
    report = Report()
    sends = [e for e in events if e.get("type") == "send"]
    invoked = {e["value"] for e in events if e.get("type") == "invoke"}
    invoked |= {e["value"] for e in sends}
    txn_of = {e["value"]: e.get("txn") for e in sends if e.get("txn")}
    txns = _Txns.of(events)
    polls = [e for e in events if e.get("type") == "poll"]
    final_done = any(e.get("type") == "final_read" for e in events)

    _check_positions(sends, polls, report)
    final_values = {r[3] for e in polls if e.get("final") for r in e["records"]}
    _check_transactional_reads(polls, txn_of, txns, report)
    _check_monotonic(polls, report)
    for value in {r[3] for e in polls for r in e["records"]} - invoked:
        if value is not None:
            report.add("phantom", f"{value!r} read, never sent")
    if not final_done:
        report.errors.append("no final_read event: lost writes cannot be checked")
    else:
        _check_lost(sends, polls, final_values, txn_of, txns, report)
    report.stats = {
        "sends ok": sum(e["outcome"] == "ok" for e in sends),
        "sends failed": sum(e["outcome"] == "fail" for e in sends),
        "sends unknown": sum(e["outcome"] == "unknown" for e in sends),
        "polls": sum(not e.get("final") for e in polls),
        "records polled": sum(len(e["records"]) for e in polls if not e.get("final")),
        "final read": len(final_values),
    }
    return report


def _check_positions(sends: list[dict], polls: list[dict], report: Report) -> None:
    """Reports positions holding different values for different readers and
    values found at two positions. An ack is a reader of its position."""
    at: dict[Position, tuple[str, str]] = {}  # position -> (value, who saw it)
    where: dict[str, tuple[Position, str]] = {}  # value -> (position, who)

    def saw(pos: Position, value: str, who: str) -> None:
        if pos in at and at[pos][0] != value:
            report.add("divergent", f"{pos}: {at[pos][0]!r} ({at[pos][1]}) vs {value!r} ({who})")
        at.setdefault(pos, (value, who))
        if value is None:
            return
        if value in where and where[value][0] != pos:
            first, first_who = where[value]
            report.add("duplicate", f"{value!r} at {first} ({first_who}) and {pos} ({who})")
        where.setdefault(value, (pos, who))

    for e in sends:
        if e["outcome"] == "ok":
            saw((e["topic"], e["partition"], e["offset"]), e["value"], f"ack to {e['process']}")
    for e in polls:
        for topic, partition, offset, value in e["records"]:
            saw((topic, partition, offset), value, f"poll by {e['process']} at t={e['t']}")


def _check_transactional_reads(polls: list[dict], txn_of: dict, txns: _Txns, report: Report) -> None:
    for e in polls:
        if e.get("isolation") != READ_COMMITTED:
            continue
        for topic, partition, offset, value in e["records"]:
            txn = txn_of.get(value)
            if txn is None:
                continue
            where = f"{value!r} at {(topic, partition, offset)} by {e['process']} at t={e['t']}"
            if txn in txns.aborted:
                report.add("aborted_read", f"{where}: transaction {txn} aborted")
            elif txn not in txns.commit_invoked_t:
                report.add("uncommitted_read", f"{where}: transaction {txn} never committed")
            elif e["t"] < txns.commit_invoked_t[txn]:
                report.add(
                    "uncommitted_read",
                    f"{where}: transaction {txn} commit asked for only at t={txns.commit_invoked_t[txn]}",
                )


def _check_monotonic(polls: list[dict], report: Report) -> None:
    last: dict[tuple, int] = {}  # (process, epoch, topic, partition) -> offset
    for e in polls:
        for topic, partition, offset, _ in e["records"]:
            key = (e["process"], e.get("epoch", 0), topic, partition)
            if key in last and offset <= last[key]:
                report.add(
                    "non_monotonic",
                    f"{e['process']} epoch {key[1]} {topic}/{partition}: offset {offset} after {last[key]}"
                    f" (t={e['t']})",
                )
            last[key] = offset


def _check_lost(
    sends: list[dict], polls: list[dict], final_values: set, txn_of: dict, txns: _Txns, report: Report
) -> None:
    for e in sends:
        if e["outcome"] != "ok" or e["value"] in final_values:
            continue
        txn = e.get("txn")
        if txn is None or txn in txns.committed:
            report.add("lost", f"{e['value']!r} acked at {(e['topic'], e['partition'], e['offset'])}")
    reported: set = set()
    for e in polls:
        if e.get("final"):
            continue
        for topic, partition, offset, value in e["records"]:
            if value is None or value in final_values or value in reported:
                continue
            txn = txn_of.get(value)
            if txn is not None and (txn in txns.aborted or e.get("isolation") != READ_COMMITTED):
                continue  # aborted data may be read uncommitted and is gone after
            reported.add(value)
            report.add("lost_after_read", f"{value!r} read at {(topic, partition, offset)} by {e['process']}")


def check_transform(events: list[dict], in_topic: str, out_topic: str, prefix: str) -> dict[str, list[str]]:
    """Exactly-once of a consume-transform-produce loop, from the final
    reads: every input value has exactly one output `prefix + value`, and
    every output has its input. Returns {"skipped": [...], "processed_twice":
    [...], "unsourced": [...]}; all empty when the loop was exactly-once.
    Call it after the loop caught up with its input."""
    finals = [r for e in events if e.get("type") == "poll" and e.get("final") for r in e["records"]]
    inputs = {r[3] for r in finals if r[0] == in_topic}
    outputs: dict[str, int] = defaultdict(int)
    for r in finals:
        if r[0] == out_topic:
            outputs[r[3]] += 1
    return {
        "skipped": sorted(v for v in inputs if outputs.get(prefix + v, 0) == 0),
        "processed_twice": sorted(v for v, n in outputs.items() if n > 1),
        "unsourced": sorted(v for v in outputs if v[len(prefix):] not in inputs),
    }


def main(argv: list[str]) -> int:
    from nemesis import history

    if len(argv) != 1:
        print("usage: python -m nemesis.checker HISTORY.jsonl", file=sys.stderr)
        return 2
    report = check(history.read(Path(argv[0])))
    print(report.summary())
    print("ok" if report.ok else "FAULTS FOUND")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
