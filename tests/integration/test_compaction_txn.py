"""The cleaner and transactions (issue 5), with confluent-kafka
transactional producers on a compacted topic: committed and aborted
transactions write the same keys, interleaved with plain writes. After
cleaning, read_committed and read_uncommitted consumers both see exactly
the latest committed value per key at its original offset and no aborted
record; the log shrank; aborted transactions' markers go, and so do the
markers of committed transactions none of whose records is left."""

from __future__ import annotations

import time

import pytest

import clients
from clients import batch_headers, consume_all, create_topic, produce_all, wait_for

check_interval_ms = 200
delete_retention_ms = 3_000
keys = 20
rounds = 30
value_pad = b"." * 100


@pytest.fixture
def cleaner_broker(broker_factory, tmp_path):
    cfg = tmp_path / "cleaner.toml"
    cfg.write_text(f"log.retention.check.interval.ms = {check_interval_ms}\n")
    return broker_factory(extra_args=["--config", str(cfg)])


def txn_producer(bootstrap: str, txn_id: str):
    p = clients.producer(bootstrap, **{"transactional.id": txn_id, "enable.idempotence": True})
    p.init_transactions(30)
    return p


def closed_segments(b, topic: str) -> list:
    return sorted((b.data_dir / f"{topic}-0").glob("*.log"))[:-1]


def scan(b, topic: str) -> tuple[int, int, int]:
    """(bytes, records, control batches holding a record) of the closed
    segments."""
    size = records = markers = 0
    for f in closed_segments(b, topic):
        data = f.read_bytes()
        size += len(data)
        for attributes, count in batch_headers(data):
            if attributes & 0x20:
                markers += count > 0
            else:
                records += count
    return size, records, markers


def test_compaction_txn_aborted_gone_committed_latest_markers_removed(cleaner_broker):
    b = cleaner_broker
    topic = "compact-txn"
    create_topic(
        b.bootstrap,
        topic,
        1,
        {
            "cleanup.policy": "compact",
            "segment.bytes": "4096",
            "segment.ms": "1000",
            "min.cleanable.dirty.ratio": "0.01",
            "min.compaction.lag.ms": "0",
            "delete.retention.ms": str(delete_retention_ms),
        },
    )
    producers = [txn_producer(b.bootstrap, f"compact-txn-{i}") for i in range(2)]
    latest: dict[bytes, tuple[int, bytes]] = {}
    owner: dict[bytes, int] = {}  # key -> the committed transaction holding its latest value
    produced = aborted_count = 0
    for r in range(rounds):
        p = producers[r % 2]
        abort = r % 3 == 1
        acked: list[tuple[bytes, int, bytes]] = []

        def on_delivery(err, msg, acked=acked):
            assert err is None, err
            acked.append((msg.key(), msg.offset(), msg.value()))

        p.begin_transaction()
        for i in range(r % 7, keys, 2):
            key = f"k{i:02d}".encode()
            kind = b"aborted" if abort else b"committed"
            p.produce(topic, key=key, value=kind + b"-%d-" % r + value_pad, partition=0, on_delivery=on_delivery)
        p.flush(30)
        if abort:
            p.abort_transaction(30)
            aborted_count += len(acked)
        else:
            p.commit_transaction(30)
            for key, offset, value in acked:
                latest[key] = (offset, value)
                owner[key] = r
        produced += len(acked)
        # Plain writes between transactions, to a few of the same keys.
        if r % 4 == 3:
            recs = [(f"k{i:02d}".encode(), b"plain-%d-" % r + value_pad, 0) for i in range(r % 5, keys, 5)]
            for (_, offset, value), rec in zip(produce_all(b.bootstrap, topic, recs), recs):
                latest[rec[0]] = (offset, value)
                owner.pop(rec[0], None)
            produced += len(recs)
    assert aborted_count > 0
    # The first keys end with a plain write: their transactions' data all go.
    recs = [(f"k{i:02d}".encode(), b"final-plain" + value_pad, 0) for i in range(5)]
    for (_, offset, value), rec in zip(produce_all(b.bootstrap, topic, recs), recs):
        latest[rec[0]] = (offset, value)
        owner.pop(rec[0], None)
    produced += len(recs)
    time.sleep(1.2)  # past segment.ms: the sentinel rolls, closing the rest
    (_, sentinel_offset, _), = produce_all(b.bootstrap, topic, [(b"sentinel", b"s", 0)])
    latest[b"sentinel"] = (sentinel_offset, b"s")
    for p in producers:
        p.flush(10)
    markers_left = len(set(owner.values()))
    committed_rounds = rounds - len([r for r in range(rounds) if r % 3 == 1])
    # Some committed transactions keep a latest value (their markers stay),
    # the others' markers must go with the aborted ones.
    assert 0 < markers_left < committed_rounds, (markers_left, committed_rounds)

    last = {}

    def settled():
        size, records, markers = scan(b, topic)
        last.update(size=size, records=records, markers=markers, want=(len(latest) - 1, markers_left))
        # Every closed record is a latest value (the sentinel is active).
        return (size, records, markers) if records == len(latest) - 1 and markers == markers_left else None

    try:
        size, records, markers = wait_for(
            "cleaning down to latest values and live markers", settled, timeout_s=delete_retention_ms / 1000 + 60
        )
    except AssertionError as e:
        raise AssertionError(f"{e}: {last}") from None
    assert size < produced * len(value_pad) / 3, f"log shrank: {size} bytes for {produced} records produced"
    # Every ABORT marker went, and its aborted-index entry with it.
    part = b.data_dir / f"{topic}-0"
    assert sum(f.stat().st_size for f in part.glob("*.txnindex")) == 0

    def read_both():
        for isolation in ["read_committed", "read_uncommitted"]:
            got = consume_all(b.bootstrap, topic, [0], **{"isolation.level": isolation})
            assert not [r for r in got if r.value.startswith(b"aborted")], f"{isolation}: aborted record read"
            seen = {r.key: (r.offset, r.value) for r in got}
            assert len(seen) == len(got), f"{isolation}: a key read twice"
            assert seen == latest, f"{isolation}: latest committed value per key at its offset"

    read_both()
    # Restarted without the producer snapshot, the producer table is replayed
    # from the cleaned log: no transaction may reopen (the LSO would stick
    # and read_committed would stop short).
    b.stop()
    (part / "producer_state.json").unlink(missing_ok=True)
    b.start()
    read_both()
    b.assert_alive()
