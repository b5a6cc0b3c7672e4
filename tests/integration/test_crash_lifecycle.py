"""Crash the real broker at every durable step of compaction and segment
deletion (retention by time, by size, DeleteRecords), restart it on the same
data dir without the hook, and check the log is valid and complete.

The hook is `--fault-abort-at <step>[:<n>]` (src/storage/fault.rs): the
broker prints `corestream fault injection: aborting at step <step>` and calls
abort(), so it dies by SIGABRT with its files exactly as a kill -9 at that
point leaves them. Each case arms the step, makes the housekeeping pass (or
DeleteRecords) reach it, asserts the process died there, restarts without
the hook and checks, with confluent-kafka:
- compaction: every acknowledged latest value per key (tombstones too) is
  readable at its original offset, every record read is one that was
  produced at that offset (nothing corrupt, CRCs checked by the client),
  produce works, and the next cleaning pass completes;
- deletion: the earliest offset is the old start (0) or the new one, every
  offset from it to the end is readable with its produced value, and once
  the pass is finished no file of a deleted segment is left.

The data is produced with housekeeping unable to act (cleanup.policy=delete
without retention, then altered), so the crash happens in the pass, not
during production: each case takes a few seconds.
"""

from __future__ import annotations

import re
import signal
import time

import pytest
from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, OffsetSpec, ResourceType

import clients
from clients import consume_all, create_topic, wait_for

check_interval_ms = 100
# After the restart that must show the crash's own result, housekeeping must
# not run before it is looked at.
check_interval_ms_idle = 600_000
death_wait_s_max = 30.0
wait_s_max = 30.0
segment_bytes = 4096
read_uncommitted = {"isolation.level": "read_uncommitted"}

COMPACTION_STEPS = [
    "cleaned_temp_created",
    "cleaned_data_written",
    "cleaned_temp_truncated",
    "cleaned_temp_synced",
    "old_index_removed",
    "cleaned_renamed",
    "cleaned_dir_synced",
    "cleaned_time_index_written",
    "cleaned_offset_index_written",
    # A later segment of the same pass: cleaned and uncleaned segments mix.
    "cleaned_renamed:2",
    "old_index_removed:3",
]
DELETION_STEPS = [
    "log_start_checkpoint_written",
    "segment_txnindex_removed",
    "segment_timeindex_removed",
    "segment_index_removed",
    "segment_log_removed",
    "deletion_dir_synced",
    # The second segment of the pass: one segment gone, the next half gone.
    "segment_index_removed:2",
    "segment_log_removed:2",
]
# retention.bytes runs the same code as retention.ms after choosing the
# prefix: a few steps suffice.
BYTES_STEPS = ["log_start_checkpoint_written", "segment_index_removed", "segment_log_removed:2"]


def test_every_step_is_covered():
    """The parametrized lists (here and in test_crash_compaction_txn.py)
    name every step the binary knows (the list the broker prints for an
    unknown step)."""
    import subprocess

    from conftest import broker_binary

    out = subprocess.run(
        [str(broker_binary()), "--fault-abort-at", "no_such_step"], capture_output=True, text=True, timeout=20
    )
    assert out.returncode == 2, out
    m = re.search(r"unknown step 'no_such_step'; steps: (.*)", out.stderr)
    assert m, out.stderr
    known = set(m.group(1).strip().split(", "))
    # Steps only the cleaner's transaction rules reach are run there.
    from test_crash_compaction_txn import TXN_ONLY_STEPS

    covered = {s.split(":")[0] for s in COMPACTION_STEPS + DELETION_STEPS + TXN_ONLY_STEPS}
    assert covered == known


# ---------------------------------------------------------------- helpers


def write_config(b, interval_ms: int):
    cfg = b.workdir / f"housekeeping-{interval_ms}.toml"
    cfg.write_text(f"log.retention.check.interval.ms = {interval_ms}\n")
    return ["--config", str(cfg)]


def start_with_hook(broker_factory, step: str):
    b = broker_factory(start=False)
    b.extra_args = write_config(b, check_interval_ms) + ["--fault-abort-at", step]
    b.start()
    return b


def produce_chunks(bootstrap: str, topic: str, records: list[tuple], chunk: int = 10) -> dict[int, tuple]:
    """Produce (key, value[, timestamp_ms]) with acks=all, flushing every
    `chunk` records (a batch or so each, so segments roll between them).
    Returns {offset: (key, value)} of the acknowledged records."""
    p = clients.producer(bootstrap, **{"linger.ms": 0})
    acked: dict[int, tuple] = {}
    errors: list[str] = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            acked[msg.offset()] = (msg.key(), msg.value())

    for i in range(0, len(records), chunk):
        for rec in records[i:i + chunk]:
            kwargs = {"key": rec[0], "value": rec[1], "partition": 0, "on_delivery": on_delivery}
            if len(rec) > 2:
                kwargs["timestamp"] = rec[2]
            p.produce(topic, **kwargs)
        assert p.flush(30) == 0, "records undelivered after 30 s"
    assert not errors, errors[:5]
    assert len(acked) == len(records)
    return acked


def alter(bootstrap: str, topic: str, **configs: str) -> None:
    a = clients.admin(bootstrap)
    entries = [
        ConfigEntry(name.replace("_", "."), value, incremental_operation=AlterConfigOpType.SET)
        for name, value in configs.items()
    ]
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=entries)
    a.incremental_alter_configs([res], request_timeout=20)[res].result(timeout=30)


def wait_for_sigabrt(b, what: str) -> None:
    """The broker dies by SIGABRT within death_wait_s_max; `what` says what
    should have killed it."""
    deadline = time.monotonic() + death_wait_s_max
    while b.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    rc = b.proc.poll()
    assert rc is not None, f"broker still up {death_wait_s_max}s after {what}\n{b.log_tail()}"
    b.expected_down = True
    assert rc == -signal.SIGABRT, f"exit status {rc}, expected SIGABRT\n{b.log_tail()}"


def wait_for_abort(b, step: str) -> None:
    """The broker dies by SIGABRT after printing the hook's line for `step`."""
    wait_for_sigabrt(b, f"arming step {step}")
    name = step.split(":")[0]
    assert f"corestream fault injection: aborting at step {name} " in b.log_path.read_text(errors="replace")


def restart_without_hook(b, interval_ms: int) -> None:
    b.extra_args = write_config(b, interval_ms)
    b.start()


def earliest(b, topic: str) -> int:
    a = clients.admin(b.bootstrap)
    tp = TopicPartition(topic, 0)
    return a.list_offsets({tp: OffsetSpec.earliest()}, request_timeout=20)[tp].result(timeout=30).offset


def read_all(b, topic: str) -> list:
    recs = consume_all(b.bootstrap, topic, [0], **read_uncommitted)
    offsets = [r.offset for r in recs]
    assert offsets == sorted(set(offsets)), "offsets not strictly increasing"
    return recs


def assert_all_produced(recs: list, produced: dict[int, tuple]) -> None:
    """Every record read is the one produced at its offset."""
    for r in recs:
        assert r.offset in produced, f"offset {r.offset} was never acknowledged"
        assert (r.key, r.value) == produced[r.offset], f"offset {r.offset}: {(r.key, r.value)!r}"


def log_since_last_start(b) -> str:
    text = b.log_path.read_text(errors="replace")
    return text[text.rindex("===== start #"):]


def partition_files(b, topic: str) -> list:
    return sorted(p.name for p in (b.data_dir / f"{topic}-0").iterdir())


# ---------------------------------------------------------------- compaction


@pytest.mark.parametrize("step", COMPACTION_STEPS)
def test_crash_during_compaction_keeps_every_latest_value(broker_factory, step):
    b = start_with_hook(broker_factory, step)
    topic = "crash-compact"
    create_topic(b.bootstrap, topic, 1, {"segment.bytes": str(segment_bytes), "retention.ms": "-1"})
    keys = 40
    recs = [(f"k{i % keys}".encode(), f"v{i}-".encode() + b"x" * 60) for i in range(400)]
    recs += [(f"k{i}".encode(), None) for i in range(0, keys, 7)]  # tombstones
    recs += [(f"k{i}".encode(), f"after-tombstone-{i}".encode()) for i in range(0, keys, 14)]
    produced = produce_chunks(b.bootstrap, topic, recs)
    latest = {key: (offset, value) for offset, (key, value) in sorted(produced.items())}
    alter(b.bootstrap, topic, cleanup_policy="compact", min_compaction_lag_ms="0",
          min_cleanable_dirty_ratio="0")
    wait_for_abort(b, step)

    # First restart: housekeeping idle, so what is read is what the crash left.
    restart_without_hook(b, check_interval_ms_idle)
    got = read_all(b, topic)
    assert_all_produced(got, produced)
    at = {r.offset: r for r in got}
    for key, (offset, value) in latest.items():
        assert offset in at, f"latest record of {key!r} (offset {offset}) lost"
        assert at[offset].value == value
    assert earliest(b, topic) == 0
    assert not [f for f in partition_files(b, topic) if f.endswith(".tmp")]
    b.stop()

    # Second restart: produce works, and cleaning passes complete: new
    # values for every key make the old segments cleanable again.
    restart_without_hook(b, check_interval_ms)
    more = produce_chunks(b.bootstrap, topic, [(f"k{i}".encode(), f"new{i}".encode() + b"y" * 60)
                                               for i in range(keys)] * 2)
    produced.update(more)
    latest = {key: (offset, value) for offset, (key, value) in sorted(produced.items())}
    first_new = min(more)

    def cleaned():
        got = read_all(b, topic)
        return got if not any(r.key == b"k1" and r.offset < first_new for r in got) else None

    got = wait_for("a cleaning pass to drop the superseded values", cleaned, timeout_s=wait_s_max)
    assert_all_produced(got, produced)
    offsets = {r.offset for r in got}
    assert all(offset in offsets for offset, _ in latest.values())
    assert "aborting at step" not in log_since_last_start(b)


# ---------------------------------------------------------------- deletion


def deletion_setup(b, topic: str, mode: str) -> tuple[dict[int, tuple], int]:
    """Produces 200 records over several segments, then makes the log start
    move: by retention.ms (the first half is an hour old), retention.bytes,
    or DeleteRecords. Returns the produced records and the expected new
    start for DeleteRecords (None otherwise: the pass computes it)."""
    create_topic(b.bootstrap, topic, 1, {"segment.bytes": str(segment_bytes), "retention.ms": "-1"})
    now = int(time.time() * 1000)
    recs = [(f"k{i}".encode(), f"v{i}-".encode() + b"z" * 100, now - 3_600_000 if i < 100 else now)
            for i in range(200)]
    produced = produce_chunks(b.bootstrap, topic, recs)
    if mode == "retention_ms":
        alter(b.bootstrap, topic, retention_ms="600000")
    elif mode == "retention_bytes":
        alter(b.bootstrap, topic, retention_bytes=str(3 * segment_bytes))
    else:
        a = clients.admin(b.bootstrap)
        tp = TopicPartition(topic, 0, 150)
        try:  # the broker aborts while answering: the request fails
            a.delete_records([tp], request_timeout=10)[tp].result(timeout=15)
        except KafkaException:
            pass
        else:
            raise AssertionError("DeleteRecords answered although the broker aborted in it")
        return produced, 150
    return produced, None


@pytest.mark.parametrize(
    "mode,step",
    [("retention_ms", s) for s in DELETION_STEPS]
    + [("delete_records", s) for s in DELETION_STEPS]
    + [("retention_bytes", s) for s in BYTES_STEPS],
)
def test_crash_during_segment_deletion_keeps_the_log_valid(broker_factory, mode, step):
    b = start_with_hook(broker_factory, step)
    topic = "crash-delete"
    produced, delete_to = deletion_setup(b, topic, mode)
    end = max(produced) + 1
    wait_for_abort(b, step)

    # First restart: housekeeping idle, so what is seen is what the crash left.
    restart_without_hook(b, check_interval_ms_idle)
    start_after_crash = earliest(b, topic)
    got = read_all(b, topic)
    assert [r.offset for r in got] == list(range(start_after_crash, end))
    assert_all_produced(got, produced)
    b.stop()

    # Second restart: the pass runs to its end; the log start settles.
    restart_without_hook(b, check_interval_ms)
    if delete_to is not None:
        new_start = delete_to
    else:
        def settled():
            first = earliest(b, topic)
            time.sleep(3 * check_interval_ms / 1000)
            return first if first > 0 and earliest(b, topic) == first else None

        new_start = wait_for("the log start to settle", settled, timeout_s=wait_s_max)
    # Of the two valid starts (old, new), every step comes after the
    # checkpoint write, so it must be the new one.
    assert start_after_crash == new_start, (start_after_crash, new_start)
    assert earliest(b, topic) == new_start
    got = read_all(b, topic)
    assert [r.offset for r in got] == list(range(new_start, end))
    assert_all_produced(got, produced)

    # No file of a deleted segment is left behind, once a pass has run.
    def no_leftovers():
        names = partition_files(b, topic)
        bases = {int(n.split(".")[0]) for n in names if n[0].isdigit()}
        logs = sorted(int(n.split(".")[0]) for n in names if n.endswith(".log"))
        below = [n for n in names if n[0].isdigit() and int(n.split(".")[0]) < logs[0]]
        first_holds_start = logs[0] <= new_start and (len(logs) == 1 or logs[1] > new_start)
        return first_holds_start and not below and bases <= set(logs)

    try:
        wait_for("no files of deleted segments", no_leftovers, timeout_s=wait_s_max)
    except AssertionError as e:
        raise AssertionError(f"{e}; log start {new_start}, files: {partition_files(b, topic)}") from None
    assert not [f for f in partition_files(b, topic) if f.endswith(".tmp")]
    more = produce_chunks(b.bootstrap, topic, [(b"after", b"restart")])
    assert list(more) == [end]


# ---------------------------------------------------------------- panics


def test_panic_on_a_shard_thread_aborts_the_whole_broker(broker_factory):
    """A panic (a bug) on a shard thread takes the process down by SIGABRT
    through the daemon's panic hook (src/ops/fatal.rs), instead of leaving a
    broker whose other shards serve on while the panicked one's partitions
    never answer. The next start recovers the log as after any crash."""
    step = "segment_log_removed"
    b = broker_factory(start=False)
    b.extra_args = write_config(b, check_interval_ms) + ["--fault-panic-at", step]
    b.start()
    topic = "crash-panic"
    produced, _ = deletion_setup(b, topic, "retention_ms")
    end = max(produced) + 1
    wait_for_sigabrt(b, f"a panic armed at step {step}")
    log = log_since_last_start(b)
    assert f"corestream fault injection: panicking at step {step}" in log, b.log_tail()
    assert re.search(r"corestreamd: panic on thread shard-[0-9-]+: aborting", log), b.log_tail()

    restart_without_hook(b, check_interval_ms_idle)
    start = earliest(b, topic)
    got = read_all(b, topic)
    assert [r.offset for r in got] == list(range(start, end))
    assert_all_produced(got, produced)
