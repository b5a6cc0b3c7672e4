"""The checker on synthetic histories: each fault kind is found, alone, and a
clean history reports nothing. No broker; these run in milliseconds.

Each faulty history is the clean one with one thing changed, so a test
fails if the checker misses that fault or reports another kind for it.
"""

from __future__ import annotations

import pytest

from nemesis import checker, history

TOPIC = "t"


class Hist:
    """Builds a history as workload.py records it, with a ticking clock."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.clock = 0.0
        self.epochs: dict[str, int] = {}

    def _add(self, **e) -> None:
        self.clock += 0.01
        self.events.append({"t": round(self.clock, 3), **e})

    def send(self, value, partition, offset=None, outcome="ok", txn=None, process="p0") -> None:
        self._add(type="invoke", process=process, value=value, topic=TOPIC, txn=txn)
        e = dict(type="send", process=process, value=value, topic=TOPIC, txn=txn, outcome=outcome)
        if outcome == "ok":
            e.update(partition=partition, offset=offset)
        self._add(**e)

    def txn(self, txn, *phases) -> None:
        for phase in phases:
            self._add(type="txn", process="p0", txn=txn, phase=phase)

    def assign(self, process) -> None:
        self.epochs[process] = self.epochs.get(process, -1) + 1
        self._add(type="assign", process=process, epoch=self.epochs[process])

    def poll(self, process, records, isolation="read_committed", final=False) -> None:
        self._add(
            type="poll",
            process=process,
            epoch=self.epochs.get(process, 0),
            isolation=isolation,
            final=final,
            records=[[TOPIC, p, o, v] for p, o, v in records],
        )

    def final(self, records) -> None:
        self.poll("final", records, final=True)
        self._add(type="final_read", process="final", end_offsets={})


CLEAN_FINAL = [(0, 0, "a"), (0, 1, "c"), (0, 2, "x1"), (1, 0, "b"), (1, 1, "x2")]


def clean(final_extra=(), final=True) -> Hist:
    """Two partitions, a committed and an aborted transaction, a consumer that
    reads everything in two polls and re-reads after a new assignment."""
    h = Hist()
    h.send("a", 0, 0)
    h.send("b", 1, 0)
    h.send("c", 0, 1)
    h.send("u", None, outcome="unknown")  # never stored: not lost
    h.send("f", None, outcome="fail")
    h.send("x1", 0, 2, txn="tx1")
    h.send("x2", 1, 1, txn="tx1")
    h.txn("tx1", "commit_invoke", "commit_ok")
    h.send("y1", 0, 4, txn="tx2")  # offset 3 is tx1's commit marker
    h.txn("tx2", "abort_ok")
    h.assign("c0")
    h.poll("c0", [(0, 0, "a"), (1, 0, "b")])
    h.poll("c0", [(0, 1, "c"), (0, 2, "x1"), (1, 1, "x2")])
    h.poll("c1", [(0, 4, "y1")], isolation="read_uncommitted")  # allowed there
    h.assign("c0")  # a rebalance: reading from the start again is fine
    h.poll("c0", [(0, 0, "a")])
    if final:
        h.final(CLEAN_FINAL + list(final_extra))
    return h


def test_clean_history_reports_nothing():
    report = checker.check(clean().events)
    assert report.ok, report.summary()
    assert report.stats["sends ok"] == 6 and report.stats["final read"] == 5


def test_clean_history_round_trips_through_a_file(tmp_path):
    path = tmp_path / "h.jsonl"
    history.write(path, clean().events)
    assert checker.check(history.read(path)).ok
    assert checker.main([str(path)]) == 0


def only(report: checker.Report, kind: str) -> None:
    assert report.found() == {kind}, report.summary()


def test_acked_write_missing_from_final_read_is_lost():
    h = clean()
    h.send("late", 1, 2)  # acked after the final read was taken: never read
    only(checker.check(h.events), "lost")


def test_committed_transaction_missing_from_final_read_is_lost():
    h = Hist()
    h.send("x", 0, 0, txn="t1")
    h.txn("t1", "commit_invoke", "commit_ok")
    h.final([])
    only(checker.check(h.events), "lost")


def test_acked_write_of_aborted_transaction_absent_is_not_lost():
    h = Hist()
    h.send("x", 0, 0, txn="t1")
    h.txn("t1", "abort_ok")
    h.final([])
    assert checker.check(h.events).ok


def test_value_read_then_gone_from_final_read_is_lost_after_read():
    h = clean(final=False)
    h.send("d", 1, 2, outcome="unknown")  # unknown to the producer, yet a consumer saw it
    h.poll("c0", [(1, 2, "d")])
    h.final(CLEAN_FINAL)
    only(checker.check(h.events), "lost_after_read")


def test_value_at_two_offsets_is_a_duplicate():
    h = clean(final_extra=[(1, 2, "a")])
    only(checker.check(h.events), "duplicate")


def test_readers_disagreeing_on_an_offset_is_divergent():
    h = clean()
    h.send("e", 1, 2, outcome="unknown")
    h.send("g", 1, 3, outcome="unknown")
    h.poll("c0", [(1, 2, "e")])
    h.poll("c2", [(1, 2, "g"), (1, 3, "e")], isolation="read_uncommitted")
    report = checker.check(h.events)
    # c2's "e" at offset 3 is also "e" at a second position: both are the fault
    assert report.counts["divergent"] == 1, report.summary()
    assert report.found() <= {"divergent", "duplicate", "lost_after_read"}


def test_ack_offset_disagreeing_with_the_log_is_divergent():
    h = Hist()
    h.send("a", 0, 0)
    h.send("b", 0, 0)  # two acks for one offset: one of them is wrong
    h.final([(0, 0, "a"), (0, 1, "b")])
    report = checker.check(h.events)
    assert "divergent" in report.found() and "lost" not in report.found(), report.summary()


def test_read_committed_poll_of_aborted_transaction_is_an_aborted_read():
    h = clean()
    h.poll("c0", [(0, 4, "y1")])
    only(checker.check(h.events), "aborted_read")


def test_read_committed_poll_before_commit_is_an_uncommitted_read():
    h = Hist()
    h.send("x", 0, 0, txn="t1")
    h.poll("c0", [(0, 0, "x")])  # before the producer even asked to commit
    h.txn("t1", "commit_invoke", "commit_ok")
    h.final([(0, 0, "x")])
    only(checker.check(h.events), "uncommitted_read")


def test_read_committed_poll_of_never_committed_transaction_is_an_uncommitted_read():
    h = Hist()
    h.send("x", 0, 0, txn="t1")
    h.txn("t1", "unknown")
    h.poll("c0", [(0, 0, "x")])
    h.final([(0, 0, "x")])
    only(checker.check(h.events), "uncommitted_read")


def test_offsets_going_back_within_an_assignment_are_non_monotonic():
    h = clean()
    h.poll("c0", [(0, 0, "a")])  # same epoch as the last poll of offset 0: not after it
    only(checker.check(h.events), "non_monotonic")


def test_offsets_going_back_within_one_poll_are_non_monotonic():
    h = Hist()
    h.send("a", 0, 0)
    h.send("b", 0, 1)
    h.poll("c0", [(0, 1, "b"), (0, 0, "a")])
    h.final([(0, 0, "a"), (0, 1, "b")])
    only(checker.check(h.events), "non_monotonic")


def test_value_never_sent_is_a_phantom():
    h = clean(final_extra=[(1, 2, "zzz")])
    only(checker.check(h.events), "phantom")


def test_history_without_final_read_does_not_pass():
    h = clean(final=False)
    h.poll("final", CLEAN_FINAL, final=True)  # the final read never finished
    report = checker.check(h.events)
    assert not report.ok and report.errors


def test_torn_last_line_of_a_killed_run_is_ignored(tmp_path):
    path = tmp_path / "h.jsonl"
    history.write(path, clean().events)
    with open(path, "a") as f:
        f.write('{"t": 9.0, "type": "po')
    assert len(history.read(path)) == len(clean().events)


def transform_history(outputs: list[str]) -> list[dict]:
    final = [["in", 0, i, v] for i, v in enumerate(["a", "b", "c"])]
    final += [["out", 0, i, v] for i, v in enumerate(outputs)]
    return [{"t": 1.0, "type": "poll", "process": "final", "final": True, "epoch": 0, "records": final}]


def test_transform_loop_exactly_once_reports_nothing():
    found = checker.check_transform(transform_history(["out:a", "out:b", "out:c"]), "in", "out", "out:")
    assert not any(found.values()), found


def test_transform_loop_skipping_or_repeating_an_input_is_reported():
    found = checker.check_transform(transform_history(["out:a", "out:a", "out:z"]), "in", "out", "out:")
    assert found == {"skipped": ["b", "c"], "processed_twice": ["out:a"], "unsourced": ["out:z"]}


@pytest.mark.parametrize("kind", checker.FAULT_KINDS)
def test_every_fault_kind_has_a_test(kind):
    tested = {
        "lost": test_acked_write_missing_from_final_read_is_lost,
        "lost_after_read": test_value_read_then_gone_from_final_read_is_lost_after_read,
        "duplicate": test_value_at_two_offsets_is_a_duplicate,
        "divergent": test_readers_disagreeing_on_an_offset_is_divergent,
        "aborted_read": test_read_committed_poll_of_aborted_transaction_is_an_aborted_read,
        "uncommitted_read": test_read_committed_poll_before_commit_is_an_uncommitted_read,
        "non_monotonic": test_offsets_going_back_within_an_assignment_are_non_monotonic,
        "phantom": test_value_never_sent_is_a_phantom,
    }
    assert kind in tested
