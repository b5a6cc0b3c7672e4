"""Crash the real broker at the cleaner's durable steps while it applies the
transaction rules (issue 5), restart it on the same data dir without the
hook, and check what read_committed and read_uncommitted consumers see.

The compacted topic holds plain writes and the committed and aborted
transactions of two confluent-kafka transactional producers over the same
keys. With `delete.retention.ms=0` the first pass removes the aborted data
and gives the orphaned markers their delete horizon, and the next pass
(100 ms later) removes those markers and rewrites or removes the segments'
`.txnindex`: the compaction steps abort the first pass (hit 1) or a later
segment of it (`:2`), `cleaned_txnindex_written` aborts the marker pass
right after an aborted-index file lost its entries, before the segment
without their markers is swapped in.

Guaranteed after the crash (first restart, housekeeping idle, so the files
are what the crash left):
- read_committed from the earliest offset reads only committed records, each
  the one produced at its offset, and the last record read per key is its
  latest committed value at its original offset (older committed values may
  still be there: the pass did not finish);
- read_uncommitted reads only records produced at their offsets (aborted
  data may still be there when the crash came before the rewrite);
- no `.txnindex` entry names a marker that is not in the log (it would hide
  the producer's later committed data from read_committed consumers).
After a second restart with housekeeping on, new values for every key make
every old segment cleanable: cleaning completes, both isolation levels read
exactly the latest value per key, and the broker never aborts again.
"""

from __future__ import annotations

import struct

import pytest

import clients
from clients import consume_all, create_topic, produce_all, wait_for
from test_crash_lifecycle import (
    alter,
    check_interval_ms,
    check_interval_ms_idle,
    earliest,
    log_since_last_start,
    partition_files,
    restart_without_hook,
    start_with_hook,
    wait_for_abort,
    wait_s_max,
)

# Steps only the transaction rules reach (test_crash_lifecycle's coverage
# check counts them).
TXN_ONLY_STEPS = ["cleaned_txnindex_written", "cleaned_txnindex_written:2"]
STEPS = [
    "cleaned_temp_created",
    "cleaned_data_written",
    "cleaned_temp_truncated",
    "cleaned_temp_synced",
    "old_index_removed",
    "cleaned_renamed",
    "cleaned_dir_synced",
    "cleaned_time_index_written",
    "cleaned_offset_index_written",
    "cleaned_renamed:2",
] + TXN_ONLY_STEPS

segment_bytes = 4096
keys = 10
rounds = 12
fillers = 40
value_pad = b"." * 80
committed_conf = {"isolation.level": "read_committed"}
uncommitted_conf = {"isolation.level": "read_uncommitted"}


def txn_producer(bootstrap: str, txn_id: str):
    p = clients.producer(bootstrap, **{"transactional.id": txn_id, "enable.idempotence": True})
    p.init_transactions(30)
    return p


def produce_history(bootstrap: str, topic: str) -> dict[int, tuple[bytes, bytes, bool]]:
    """Transactions of two producers, one in three aborted, plain writes
    between them, then filler records that roll the segments holding the
    last markers. Returns {offset: (key, value, committed)}."""
    producers = [txn_producer(bootstrap, f"crash-txn-{i}") for i in range(2)]
    produced: dict[int, tuple[bytes, bytes, bool]] = {}
    for r in range(rounds):
        p = producers[r % 2]
        abort = r % 3 == 1
        acked: list[tuple[bytes, int, bytes]] = []

        def on_delivery(err, msg, acked=acked):
            assert err is None, err
            acked.append((msg.key(), msg.offset(), msg.value()))

        p.begin_transaction()
        kind = b"aborted" if abort else b"committed"
        for i in range(r % 3, keys, 2):
            p.produce(topic, key=b"k%d" % i, value=kind + b"-%d-" % r + value_pad, partition=0,
                      on_delivery=on_delivery)
        p.flush(30)
        if abort:
            p.abort_transaction(30)
        else:
            p.commit_transaction(30)
        for key, offset, value in acked:
            produced[offset] = (key, value, not abort)
        if r % 4 == 3:
            recs = [(b"k%d" % i, b"plain-%d-" % r + value_pad, 0) for i in range(r % 5, keys, 4)]
            for (_, offset, value), rec in zip(produce_all(bootstrap, topic, recs), recs):
                produced[offset] = (rec[0], value, True)
    recs = [(b"filler%d" % i, b"filler-" + value_pad, 0) for i in range(fillers)]
    for (_, offset, value), rec in zip(produce_all(bootstrap, topic, recs), recs):
        produced[offset] = (rec[0], value, True)
    assert any(not c for _, _, c in produced.values())
    return produced


def latest_committed(produced: dict[int, tuple[bytes, bytes, bool]]) -> dict[bytes, tuple[int, bytes]]:
    return {key: (offset, value) for offset, (key, value, committed) in sorted(produced.items()) if committed}


def read(b, topic: str, conf: dict) -> list:
    recs = consume_all(b.bootstrap, topic, [0], **conf)
    offsets = [r.offset for r in recs]
    assert offsets == sorted(set(offsets)), "offsets not strictly increasing"
    return recs


def log_batches(b, topic: str) -> dict[int, tuple[int, int, int]]:
    """{base offset: (producer id, attributes, record count)} of every batch
    in the partition's segment files."""
    out = {}
    for f in sorted((b.data_dir / f"{topic}-0").glob("*.log")):
        data, pos = f.read_bytes(), 0
        while pos + 61 <= len(data):
            base, length = struct.unpack_from(">qi", data, pos)
            if length <= 0:
                break
            attributes = struct.unpack_from(">h", data, pos + 21)[0]
            producer_id = struct.unpack_from(">q", data, pos + 43)[0]
            count = struct.unpack_from(">i", data, pos + 57)[0]
            out[base] = (producer_id, attributes, count)
            pos += length + 12
    return out


def assert_txnindex_entries_have_markers(b, topic: str) -> None:
    """Every aborted-index entry (version i16, producer id, first offset,
    marker offset, LSO) names a control batch of its producer in the log."""
    batches = log_batches(b, topic)
    for f in sorted((b.data_dir / f"{topic}-0").glob("*.txnindex")):
        data = f.read_bytes()
        for at in range(0, len(data) - len(data) % 34, 34):
            _, producer_id, first, marker, _ = struct.unpack_from(">hqqqq", data, at)
            got = batches.get(marker)
            assert got is not None and got[0] == producer_id and got[1] & 0x20 and got[2] == 1, (
                f"{f.name}: entry (producer {producer_id}, {first}..{marker}) without its marker: {got}"
            )


def check_after_crash(b, topic: str, produced: dict) -> None:
    latest = latest_committed(produced)
    committed = read(b, topic, committed_conf)
    last = {}
    for r in committed:
        assert r.offset in produced, f"read_committed: offset {r.offset} was never produced"
        key, value, was_committed = produced[r.offset]
        assert (r.key, r.value) == (key, value), f"read_committed: offset {r.offset}: {(r.key, r.value)!r}"
        assert was_committed, f"read_committed read aborted {r.key!r}={r.value[:20]!r} at {r.offset}"
        last[r.key] = (r.offset, r.value)
    assert last == latest, "read_committed: last record per key is its latest committed value"
    for r in read(b, topic, uncommitted_conf):
        assert r.offset in produced, f"read_uncommitted: offset {r.offset} was never produced"
        assert (r.key, r.value) == produced[r.offset][:2], f"read_uncommitted: offset {r.offset}"
    assert_txnindex_entries_have_markers(b, topic)
    assert earliest(b, topic) == 0
    assert not [f for f in partition_files(b, topic) if f.endswith(".tmp")]


@pytest.mark.parametrize("step", STEPS)
def test_crash_during_txn_compaction_keeps_the_committed_view(broker_factory, step):
    b = start_with_hook(broker_factory, step)
    topic = "crash-compact-txn"
    # Housekeeping cannot act while the history is produced (delete policy,
    # no retention): the crash happens in the cleaning pass.
    create_topic(b.bootstrap, topic, 1, {"segment.bytes": str(segment_bytes), "retention.ms": "-1",
                                         "delete.retention.ms": "0"})
    produced = produce_history(b.bootstrap, topic)
    alter(b.bootstrap, topic, cleanup_policy="compact", min_compaction_lag_ms="0",
          min_cleanable_dirty_ratio="0")
    wait_for_abort(b, step)

    restart_without_hook(b, check_interval_ms_idle)
    check_after_crash(b, topic, produced)
    b.stop()

    # Housekeeping on: new values for every key leave nothing of the old
    # segments once a pass completes. Records with fresh keys after them
    # roll the segment holding the new values: like Kafka's, the cleaner
    # reads keys only from closed segments, so a value still in the active
    # segment supersedes nothing yet.
    restart_without_hook(b, check_interval_ms)
    all_keys = sorted({key for key, _, _ in produced.values()})
    recs = [(key, b"new-" + key + value_pad, 0) for key in all_keys]
    more = produce_all(b.bootstrap, topic, recs)
    for (_, offset, value), rec in zip(more, recs):
        produced[offset] = (rec[0], value, True)
    first_new = min(offset for _, offset, _ in more)
    rolls = [(b"roll%d" % i, b"roll-" + value_pad, 0) for i in range(2 * segment_bytes // len(value_pad))]
    for (_, offset, value), rec in zip(produce_all(b.bootstrap, topic, rolls), rolls):
        produced[offset] = (rec[0], value, True)

    def cleaned():
        got = read(b, topic, uncommitted_conf)
        return got if all(r.offset >= first_new for r in got) else None

    wait_for("cleaning to drop every old record", cleaned, timeout_s=wait_s_max)
    latest = latest_committed(produced)
    for conf in [committed_conf, uncommitted_conf]:
        got = read(b, topic, conf)
        assert {r.key: (r.offset, r.value) for r in got} == latest, conf
        assert len(got) == len(latest), f"{conf}: a key read twice"
    assert_txnindex_entries_have_markers(b, topic)
    assert "aborting at step" not in log_since_last_start(b)
    b.assert_alive()
