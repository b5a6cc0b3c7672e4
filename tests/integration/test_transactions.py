"""Transactions: commit/abort visibility under read_committed, the
consume-transform-produce loop exactly once across a producer crash,
zombie fencing, timeouts, state across a broker crash, and bad input
(KIP-98, KIP-890 part 1)."""

import struct
import subprocess
import sys
import time
from pathlib import Path

import clients
import kafka_raw
import pytest
from confluent_kafka import KafkaException, TopicPartition
from kafka_raw import Reader, Writer

INIT_PRODUCER_ID = 22
ADD_PARTITIONS_TO_TXN = 24
END_TXN = 26
DESCRIBE_TRANSACTIONS = 65

INVALID_PRODUCER_EPOCH = 47
INVALID_TXN_STATE = 48
INVALID_PRODUCER_ID_MAPPING = 49
PRODUCER_FENCED = 90
TRANSACTIONAL_ID_NOT_FOUND = 105

READ_COMMITTED = {"isolation.level": "read_committed"}
# librdkafka's default is read_committed: the raw log needs it said.
READ_UNCOMMITTED = {"isolation.level": "read_uncommitted"}
WORKER = Path(__file__).parent / "workers" / "eos_worker.py"


def txn_producer(bootstrap: str, txn_id: str, **conf):
    p = clients.producer(bootstrap, **{"transactional.id": txn_id, "enable.idempotence": True, **conf})
    p.init_transactions(30)
    return p


def values(recs) -> list[bytes]:
    return sorted(r.value for r in recs)


# ---------------------------------------------------------------- raw requests


def init_producer_id(conn, txn_id: str, timeout_ms: int = 60_000) -> tuple[int, int, int]:
    body = Writer().string(txn_id).int32(timeout_ms).bytes()
    r = Reader(conn.roundtrip(INIT_PRODUCER_ID, 0, body))
    r.int32()
    return r.int16(), r.int64(), r.int16()


def add_partitions(conn, txn_id: str, pid: int, epoch: int, topic: str, parts: list[int], version: int = 1):
    w = Writer().string(txn_id).int64(pid).int16(epoch).int32(1).string(topic).int32(len(parts))
    for p in parts:
        w.int32(p)
    r = Reader(conn.roundtrip(ADD_PARTITIONS_TO_TXN, version, w.bytes()))
    r.int32()
    codes = {}
    for _ in range(r.int32()):
        r.string()
        for _ in range(r.int32()):
            partition = r.int32()
            codes[partition] = r.int16()
    return codes


def end_txn(conn, txn_id: str, pid: int, epoch: int, commit: bool, version: int = 1) -> int:
    body = Writer().string(txn_id).int64(pid).int16(epoch).boolean(commit).bytes()
    r = Reader(conn.roundtrip(END_TXN, version, body))
    r.int32()
    return r.int16()


def compact_string(w: Writer, s: str) -> Writer:
    b = s.encode()
    return w.uvarint(len(b) + 1).raw(b)


def read_compact_string(r: Reader) -> str:
    n = r.uvarint() - 1
    return r._take(n).decode()


def describe_transaction(conn, txn_id: str) -> dict:
    """DescribeTransactions v0 (flexible) for one id."""
    body = compact_string(Writer().uvarint(2), txn_id).uvarint(0).bytes()
    cid = conn.send_request(DESCRIBE_TRANSACTIONS, 0, body, flexible_header=True)
    r = Reader(conn.recv_response(cid, flexible_header=True))
    r.int32()  # throttle
    assert r.uvarint() == 2, "one state"
    out = {"error_code": r.int16(), "id": read_compact_string(r), "state": read_compact_string(r)}
    out["timeout_ms"], out["start_ms"] = r.int32(), r.int64()
    out["producer_id"], out["epoch"] = r.int64(), r.int16()
    topics = {}
    for _ in range(r.uvarint() - 1):
        name = read_compact_string(r)
        topics[name] = [r.int32() for _ in range(r.uvarint() - 1)]
        r.uvarint()  # tagged fields
    out["topics"] = topics
    return out


# ---------------------------------------------------------------- real clients


def test_txn_commit_visible_abort_invisible_to_read_committed(broker):
    clients.create_topic(broker.bootstrap, "txv", 2)
    p = txn_producer(broker.bootstrap, "txv-1")
    p.begin_transaction()
    for i in range(100):
        p.produce("txv", value=b"c%d" % i, partition=i % 2)
    p.commit_transaction(30)
    p.begin_transaction()
    for i in range(50):
        p.produce("txv", value=b"a%d" % i, partition=i % 2)
    p.flush(30)  # the aborted records reach the log
    p.abort_transaction(30)
    p.begin_transaction()
    p.produce("txv", value=b"last", partition=0)
    p.commit_transaction(30)

    committed = clients.consume_all(broker.bootstrap, "txv", 2, **READ_COMMITTED)
    assert values(committed) == sorted([b"c%d" % i for i in range(100)] + [b"last"])
    uncommitted = clients.consume_all(broker.bootstrap, "txv", 2, expect=151, **READ_UNCOMMITTED)
    assert values(uncommitted) == sorted(
        [b"c%d" % i for i in range(100)] + [b"a%d" % i for i in range(50)] + [b"last"]
    )


def test_txn_open_transaction_holds_back_read_committed(broker):
    """An open transaction stops read_committed consumers at its first
    offset (the last stable offset), non-transactional records after it
    included, until it commits."""
    clients.create_topic(broker.bootstrap, "txlso", 1)
    p = txn_producer(broker.bootstrap, "txlso-1")
    p.begin_transaction()
    p.produce("txlso", value=b"t0", partition=0)
    p.flush(30)
    clients.produce_all(broker.bootstrap, "txlso", [(None, b"plain", 0)])
    assert clients.consume_all(broker.bootstrap, "txlso", 1, **READ_COMMITTED) == []
    assert values(clients.consume_all(broker.bootstrap, "txlso", 1, **READ_UNCOMMITTED)) == [b"plain", b"t0"]
    p.commit_transaction(30)
    assert values(clients.consume_all(broker.bootstrap, "txlso", 1, **READ_COMMITTED)) == [b"plain", b"t0"]


def test_txn_consume_transform_produce_exactly_once_across_producer_crash(broker):
    n = 3000
    clients.create_topic(broker.bootstrap, "eos-in", 3)
    clients.create_topic(broker.bootstrap, "eos-out", 3)
    clients.produce_all(broker.bootstrap, "eos-in", [(None, b"%d" % i, i % 3) for i in range(n)])
    args = [sys.executable, str(WORKER), broker.bootstrap, "eos-in", "eos-out", "3", str(n)]
    crashed = subprocess.run(args + ["3"], capture_output=True, timeout=120)
    assert crashed.returncode == 3, crashed.stderr.decode()[-2000:]
    # The crashed instance left an open transaction with records in the log.
    dirty = clients.consume_all(broker.bootstrap, "eos-out", 3, **READ_UNCOMMITTED)
    finished = subprocess.run(args + ["0"], capture_output=True, timeout=120)
    assert finished.returncode == 0, finished.stderr.decode()[-2000:]
    out = clients.consume_all(broker.bootstrap, "eos-out", 3, expect=n, **READ_COMMITTED)
    assert values(out) == sorted(b"out-%d" % i for i in range(n)), "each input exactly once"
    everything = clients.consume_all(broker.bootstrap, "eos-out", 3, **READ_UNCOMMITTED)
    assert len(everything) > n and len(dirty) > 0, "the crashed transaction's records are in the log, aborted"


def test_txn_zombie_producer_is_fenced(broker):
    clients.create_topic(broker.bootstrap, "zombie", 1)
    old = txn_producer(broker.bootstrap, "zombie-1")
    old.begin_transaction()
    old.produce("zombie", value=b"from-old", partition=0)
    old.flush(30)
    new = txn_producer(broker.bootstrap, "zombie-1")  # fences `old`, aborts its transaction
    new.begin_transaction()
    new.produce("zombie", value=b"from-new", partition=0)
    new.commit_transaction(30)
    with pytest.raises(KafkaException) as fenced:
        old.commit_transaction(10)
    assert fenced.value.args[0].fatal() or "fenced" in str(fenced.value).lower(), fenced.value
    assert values(clients.consume_all(broker.bootstrap, "zombie", 1, **READ_COMMITTED)) == [b"from-new"]


def test_txn_timeout_aborts_and_fences(broker_factory):
    b = broker_factory(extra_args=["--transaction-abort-check-ms", "200"])
    clients.create_topic(b.bootstrap, "txtimeout", 1)
    p = txn_producer(b.bootstrap, "slow-1", **{"transaction.timeout.ms": 1500, "message.timeout.ms": 1500})
    p.begin_transaction()
    p.produce("txtimeout", value=b"late", partition=0)
    p.flush(30)
    with b.raw() as c:
        assert describe_transaction(c, "slow-1")["state"] == "Ongoing"
    deadline = time.monotonic() + 15
    while True:
        with b.raw() as c:
            state = describe_transaction(c, "slow-1")
        if state["state"] == "CompleteAbort" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert state["state"] == "CompleteAbort", state
    clients.produce_all(b.bootstrap, "txtimeout", [(None, b"after", 0)])
    assert values(clients.consume_all(b.bootstrap, "txtimeout", 1, **READ_COMMITTED)) == [b"after"]
    with pytest.raises(KafkaException):
        p.commit_transaction(10)


def test_txn_state_survives_broker_kill9(broker):
    clients.create_topic(broker.bootstrap, "txcrash", 2)
    p = txn_producer(broker.bootstrap, "txcrash-1")
    p.begin_transaction()
    for i in range(20):
        p.produce("txcrash", value=b"c%d" % i, partition=i % 2)
    p.commit_transaction(30)
    p.begin_transaction()
    for i in range(10):
        p.produce("txcrash", value=b"open%d" % i, partition=i % 2)
    p.flush(30)
    broker.kill9()
    broker.start()
    # Rebuilt from the log: the open transaction still holds back read_committed.
    assert values(clients.consume_all(broker.bootstrap, "txcrash", 2, **READ_COMMITTED)) == sorted(
        b"c%d" % i for i in range(20)
    )
    with broker.raw() as c:
        described = describe_transaction(c, "txcrash-1")
    assert described["state"] == "Ongoing" and described["topics"] == {"txcrash": [0, 1]}, described
    # A new instance aborts it; then everything committed is readable.
    q = txn_producer(broker.bootstrap, "txcrash-1")
    q.begin_transaction()
    q.produce("txcrash", value=b"new", partition=0)
    q.commit_transaction(30)
    got = clients.consume_all(broker.bootstrap, "txcrash", 2, **READ_COMMITTED)
    assert values(got) == sorted([b"c%d" % i for i in range(20)] + [b"new"])


def test_txn_idle_transactional_id_expires(broker_factory):
    b = broker_factory(extra_args=["--transaction-abort-check-ms", "200", "--transactional-id-expiration-ms", "1500"])
    clients.create_topic(b.bootstrap, "txexp", 1)
    with b.raw() as c:
        err, old_pid, _ = init_producer_id(c, "exp-1")
        assert err == 0
        err, busy_pid, _ = init_producer_id(c, "exp-busy")
        assert err == 0
        assert add_partitions(c, "exp-busy", busy_pid, 0, "txexp", [0]) == {0: 0}
    deadline = time.monotonic() + 15
    while True:
        with b.raw() as c:
            gone = describe_transaction(c, "exp-1")["error_code"] == TRANSACTIONAL_ID_NOT_FOUND
        if gone or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert gone, "idle id not expired"
    with b.raw() as c:
        # An open transaction is never expired (its timeout, 60 s, aborts it first).
        assert describe_transaction(c, "exp-busy")["state"] == "Ongoing"
    # The tombstone is durable: a restart does not bring the id back.
    b.restart()
    with b.raw() as c:
        assert describe_transaction(c, "exp-1")["error_code"] == TRANSACTIONAL_ID_NOT_FOUND
        # Reusing an expired id starts afresh with a new producer id.
        err, new_pid, epoch = init_producer_id(c, "exp-1")
        assert err == 0 and new_pid != old_pid and epoch == 0


WRITE_TXN_MARKERS = 27
UNKNOWN_TOPIC_OR_PARTITION = 3


def write_txn_markers(conn, pid: int, epoch: int, commit: bool, topics: dict[str, list[int]]) -> dict:
    """WriteTxnMarkers v1 (flexible), one marker: {(topic, partition): error code}."""
    w = Writer().uvarint(2).int64(pid).int16(epoch).int8(1 if commit else 0).uvarint(len(topics) + 1)
    for name, parts in topics.items():
        compact_string(w, name).uvarint(len(parts) + 1)
        for p in parts:
            w.int32(p)
        w.uvarint(0)
    w.int32(0).uvarint(0).uvarint(0)  # coordinator epoch, marker tags, request tags
    cid = conn.send_request(WRITE_TXN_MARKERS, 1, w.bytes(), flexible_header=True)
    r = Reader(conn.recv_response(cid, flexible_header=True))
    assert r.uvarint() == 2, "one marker"
    assert r.int64() == pid
    codes = {}
    for _ in range(r.uvarint() - 1):
        name = read_compact_string(r)
        for _ in range(r.uvarint() - 1):
            partition = r.int32()
            codes[(name, partition)] = r.int16()
            r.uvarint()
        r.uvarint()
    return codes


def test_txn_write_txn_markers_v1_aborts_on_the_partition(broker):
    clients.create_topic(broker.bootstrap, "txwtm", 2)
    p = txn_producer(broker.bootstrap, "wtm-1")
    p.begin_transaction()
    for i in range(10):
        p.produce("txwtm", value=b"w%d" % i, partition=i % 2)
    p.flush(30)
    with broker.raw() as c:
        d = describe_transaction(c, "wtm-1")
        pid, epoch = d["producer_id"], d["epoch"]
        assert write_txn_markers(c, pid, epoch - 1, False, {"txwtm": [0]}) == {("txwtm", 0): INVALID_PRODUCER_EPOCH}
        codes = write_txn_markers(c, pid, epoch, False, {"txwtm": [0, 1, 7], "no-such-topic": [0]})
    assert codes == {
        ("txwtm", 0): 0,
        ("txwtm", 1): 0,
        ("txwtm", 7): UNKNOWN_TOPIC_OR_PARTITION,
        ("no-such-topic", 0): UNKNOWN_TOPIC_OR_PARTITION,
    }, codes
    # The partitions' transaction is closed by the ABORT markers: the LSO
    # moves and read_committed sees nothing of it; the raw log keeps it.
    assert clients.consume_all(broker.bootstrap, "txwtm", 2, expect=0, timeout_s=5, **READ_COMMITTED) == []
    raw = clients.consume_all(broker.bootstrap, "txwtm", 2, expect=10, **READ_UNCOMMITTED)
    assert values(raw) == sorted(b"w%d" % i for i in range(10))


# ---------------------------------------------------------------- bad input


def test_txn_end_txn_unknown_transactional_id(broker):
    with broker.raw() as c:
        assert end_txn(c, "never-seen", 1234, 0, True) == INVALID_PRODUCER_ID_MAPPING


def test_txn_produce_to_partition_not_added_is_refused(broker):
    """KIP-890 part 1: a transactional batch for a partition that is not in
    the ongoing transaction is refused and nothing is written."""
    clients.create_topic(broker.bootstrap, "notadded", 2)
    with broker.raw() as c:
        err, pid, epoch = init_producer_id(c, "na-1")
        assert err == 0
        assert add_partitions(c, "na-1", pid, epoch, "notadded", [0]) == {0: 0}
        batch = lambda seq, v: kafka_raw.record_batch_v2(  # noqa: E731
            [(None, v)], producer_id=pid, producer_epoch=epoch, base_sequence=seq, transactional=True
        )
        ok = c.produce("notadded", 0, batch(0, b"in-txn"), transactional_id="na-1")
        refused = c.produce("notadded", 1, batch(0, b"not-added"), transactional_id="na-1")
        no_id = c.produce("notadded", 0, batch(1, b"no-txn-id"))
        assert ok["error_code"] == 0, ok
        assert refused["error_code"] == INVALID_TXN_STATE, refused
        assert no_id["error_code"] != 0, no_id
        assert end_txn(c, "na-1", pid, epoch, True) == 0
        # After the commit the partition is no longer in a transaction.
        late = c.produce("notadded", 0, batch(1, b"after-commit"), transactional_id="na-1")
        assert late["error_code"] == INVALID_TXN_STATE, late
    assert values(clients.consume_all(broker.bootstrap, "notadded", 2, **READ_UNCOMMITTED)) == [b"in-txn"]


def test_txn_old_epoch_and_wrong_state_errors(broker):
    clients.create_topic(broker.bootstrap, "epochs", 1)
    with broker.raw() as c:
        _, pid, e0 = init_producer_id(c, "ep-1")
        _, pid2, e1 = init_producer_id(c, "ep-1")
        assert pid2 == pid and e1 == e0 + 1
        # An epoch that went backwards is fenced (v1: INVALID_PRODUCER_EPOCH,
        # v2+: PRODUCER_FENCED, KIP-588).
        assert add_partitions(c, "ep-1", pid, e0, "epochs", [0], version=1) == {0: INVALID_PRODUCER_EPOCH}
        assert add_partitions(c, "ep-1", pid, e0, "epochs", [0], version=2) == {0: PRODUCER_FENCED}
        assert add_partitions(c, "ep-1", pid + 1, e1, "epochs", [0]) == {0: INVALID_PRODUCER_ID_MAPPING}
        # EndTxn with no transaction open.
        assert end_txn(c, "ep-1", pid, e1, True) == INVALID_TXN_STATE
        # A sequence jump inside a transaction is refused like any idempotent gap.
        assert add_partitions(c, "ep-1", pid, e1, "epochs", [0]) == {0: 0}
        batch = kafka_raw.record_batch_v2(
            [(None, b"x")], producer_id=pid, producer_epoch=e1, base_sequence=5, transactional=True
        )
        r = c.produce("epochs", 0, batch, transactional_id="ep-1")
        assert r["error_code"] == 45, r  # OUT_OF_ORDER_SEQUENCE_NUMBER
        assert end_txn(c, "ep-1", pid, e1, False) == 0
        assert end_txn(c, "ep-1", pid, e1, False) == 0, "a retried EndTxn succeeds"
        assert end_txn(c, "ep-1", pid, e1, True) == INVALID_TXN_STATE
    assert clients.consume_all(broker.bootstrap, "epochs", 1, **READ_UNCOMMITTED) == []


def test_txn_offsets_pending_are_unstable_for_read_committed(broker):
    """Offsets sent in an open transaction are not the group's yet: a
    read_committed consumer (OffsetFetch require_stable) gets
    UNSTABLE_OFFSET_COMMIT and retries until the commit; a read_uncommitted
    one sees the old committed offset (none) at once."""
    import threading

    from confluent_kafka import TopicPartition

    clients.create_topic(broker.bootstrap, "unstable", 1)
    clients.produce_all(broker.bootstrap, "unstable", [(None, b"x", 0)] * 10)
    group = clients.consumer(broker.bootstrap, **{"group.id": "g-unstable"})
    group.assign([TopicPartition("unstable", 0, 0)])
    metadata = group.consumer_group_metadata()
    p = txn_producer(broker.bootstrap, "unstable-1")
    p.begin_transaction()
    p.produce("unstable", value=b"y", partition=0)
    p.send_offsets_to_transaction([TopicPartition("unstable", 0, 7)], metadata, 30)
    plain = clients.consumer(broker.bootstrap, **{"group.id": "g-unstable", **READ_UNCOMMITTED})
    assert plain.committed([TopicPartition("unstable", 0)], timeout=10)[0].offset < 0
    plain.close()
    committer = threading.Timer(1.5, lambda: p.commit_transaction(30))
    started = time.monotonic()
    committer.start()
    stable = clients.consumer(broker.bootstrap, **{"group.id": "g-unstable", **READ_COMMITTED})
    got = stable.committed([TopicPartition("unstable", 0)], timeout=20)[0].offset
    waited = time.monotonic() - started
    committer.join()
    stable.close()
    group.close()
    assert got == 7, got
    assert waited >= 1.0, f"the committed offset was returned before the transaction committed ({waited:.2f} s)"


# ---------------------------------------------------------------- aborted index per segment

TXN_ENTRY = struct.Struct(">hqqqq")  # version, producer id, first, last (marker), LSO


def txn_index_entries(b, topic: str) -> dict[int, list[tuple]]:
    """The `<base>.txnindex` files of partition 0: segment base -> entries."""
    out = {}
    for f in sorted((b.data_dir / f"{topic}-0").glob("*.txnindex")):
        data = f.read_bytes()
        assert len(data) % TXN_ENTRY.size == 0, f"torn index {f.name}"
        out[int(f.stem)] = [TXN_ENTRY.unpack_from(data, i) for i in range(0, len(data), TXN_ENTRY.size)]
    return out


def segment_bases(b, topic: str) -> list[int]:
    return sorted(int(f.stem) for f in (b.data_dir / f"{topic}-0").glob("*.log"))


def test_txn_aborted_index_is_per_segment_and_goes_with_its_segment(broker):
    topic = "txseg"
    clients.create_topic(broker.bootstrap, topic, 1, {"segment.bytes": "2048"})
    p = txn_producer(broker.bootstrap, "txseg-1")
    committed = []
    for t in range(8):  # ~1 KiB per transaction: segments roll between them
        p.begin_transaction()
        vals = [b"t%d-%02d-" % (t, i) + b"x" * 90 for i in range(10)]
        for v in vals:
            p.produce(topic, value=v, partition=0)
        p.flush(30)
        if t % 2:
            p.commit_transaction(30)
            committed += vals
        else:
            p.abort_transaction(30)

    bases = segment_bases(broker, topic)
    index = txn_index_entries(broker, topic)
    assert len(bases) > 4, bases
    assert not (broker.data_dir / f"{topic}-0" / "aborted.txnindex").exists()
    entries = [e for es in index.values() for e in es]
    assert len(entries) == 4, index
    for base, es in index.items():
        assert base in bases
        following = [x for x in bases if x > base]
        for version, _pid, first, marker, lso in es:
            # The entry lives in the segment holding its marker.
            assert version == 0 and first < marker < lso + 1
            assert base <= marker < (following[0] if following else 1 << 62)

    want = sorted(committed)
    assert values(clients.consume_all(broker.bootstrap, topic, 1, **READ_COMMITTED)) == want
    broker.kill9()
    broker.start()
    assert txn_index_entries(broker, topic) == index
    assert values(clients.consume_all(broker.bootstrap, topic, 1, **READ_COMMITTED)) == want

    # DeleteRecords past the first aborted transaction's marker: its
    # segment, index included, goes; the others stay and still filter.
    first_marker_segment = min(index)
    cut = [x for x in bases if x > first_marker_segment][0]
    admin = clients.admin(broker.bootstrap)
    for f in admin.delete_records([TopicPartition(topic, 0, cut)]).values():
        f.result(timeout=30)
    after = txn_index_entries(broker, topic)
    assert first_marker_segment not in after and len(after) >= 1, after
    assert all(base >= cut for base in after)
    got = values(clients.consume_all(broker.bootstrap, topic, 1, **READ_COMMITTED))
    assert got and set(got) <= set(want) and not any(v.startswith(b"t0-") for v in got)
    raw = values(clients.consume_all(broker.bootstrap, topic, 1, **READ_UNCOMMITTED))
    assert set(got) == {v for v in raw if int(v[1:2]) % 2}
