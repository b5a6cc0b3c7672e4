"""Idempotent producers: InitProducerId, per-partition dedup of retried
batches, sequence gaps and epochs refused, and dedup that survives a broker
crash (the producer table is rebuilt from the log)."""

import clients
import kafka_raw
from kafka_raw import Reader, Writer

INIT_PRODUCER_ID = 22
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
INVALID_PRODUCER_EPOCH = 47


def init_producer_id(conn: kafka_raw.RawConn, transactional_id: str | None = None) -> tuple[int, int, int]:
    """InitProducerId v0: (error_code, producer_id, epoch)."""
    body = Writer().string(transactional_id).int32(60_000).bytes()
    r = Reader(conn.roundtrip(INIT_PRODUCER_ID, 0, body))
    r.int32()  # throttle
    return r.int16(), r.int64(), r.int16()


def batch(pid: int, epoch: int, seq: int, values: list[bytes]) -> bytes:
    return kafka_raw.record_batch_v2(
        [(None, v) for v in values], producer_id=pid, producer_epoch=epoch, base_sequence=seq
    )


def assert_dense_and_ordered_per_key(recs) -> None:
    """No gap in any partition, and per key the values (b"v<i>") arrive in
    produce order."""
    for p, part in clients.by_partition(recs).items():
        clients.assert_dense(part)
        seen: dict[bytes, int] = {}
        for r in part:
            i = int(r.value[1:])
            assert seen.get(r.key, -1) < i, ("order per key", p, r)
            seen[r.key] = i


def test_idempotence_confluent_producer_exactly_once(broker):
    clients.create_topic(broker.bootstrap, "idem", 3)
    n = 20_000
    acked = clients.produce_all(
        broker.bootstrap,
        "idem",
        [(f"k{i % 50}".encode(), f"v{i}".encode()) for i in range(n)],
        **{"enable.idempotence": True, "max.in.flight.requests.per.connection": 5},
    )
    recs = clients.consume_all(broker.bootstrap, "idem", 3, expect=n)
    assert len(recs) == n
    assert sorted(r.value for r in recs) == sorted(f"v{i}".encode() for i in range(n))
    assert_dense_and_ordered_per_key(recs)
    assert {(p, o) for p, o, _ in acked} == {(r.partition, r.offset) for r in recs}


def test_idempotence_confluent_producer_retries_dropped_responses(broker_factory):
    """The broker appends but drops every 7th Produce response (closing the
    connection, a test-only fault hook): the producer retries batches the
    broker already has, and the log still holds each record exactly once,
    in order, with no gap."""
    b = broker_factory(extra_args=["--fault-drop-produce-response-every", "7"])
    clients.create_topic(b.bootstrap, "idem-drop", 3)
    n = 6000
    clients.produce_all(
        b.bootstrap,
        "idem-drop",
        [(f"k{i % 30}".encode(), f"v{i}".encode()) for i in range(n)],
        **{
            "enable.idempotence": True,
            "max.in.flight.requests.per.connection": 5,
            "linger.ms": 1,
            "batch.num.messages": 40,
        },
    )
    dropped = b.log_tail().count("fault injection: Produce response dropped")
    assert dropped >= 3, f"the fault hook fired {dropped} times"
    recs = clients.consume_all(b.bootstrap, "idem-drop", 3, expect=n)
    assert len(recs) == n, "no duplicates"
    assert sorted(r.value for r in recs) == sorted(f"v{i}".encode() for i in range(n))
    assert_dense_and_ordered_per_key(recs)


def test_init_producer_id_unique_across_restart(broker):
    with broker.raw() as c:
        e1, p1, ep1 = init_producer_id(c)
        e2, p2, _ = init_producer_id(c)
    assert (e1, e2, ep1) == (0, 0, 0)
    assert p1 >= 0 and p2 > p1
    broker.kill9()
    broker.start()
    with broker.raw() as c:
        e3, p3, _ = init_producer_id(c)
    assert e3 == 0 and p3 > p2, (p1, p2, p3)


def test_init_producer_id_transactional_bumps_epoch(broker):
    """With a transactional id the same producer id comes back with the
    epoch bumped each time (the transaction coordinator fences the previous
    instance); across a crash too."""
    with broker.raw() as c:
        e1, p1, ep1 = init_producer_id(c, "txn-a")
        e2, p2, ep2 = init_producer_id(c, "txn-a")
    assert (e1, e2) == (0, 0)
    assert p1 >= 0 and p2 == p1 and ep2 == ep1 + 1
    broker.kill9()
    broker.start()
    with broker.raw() as c:
        e3, p3, ep3 = init_producer_id(c, "txn-a")
    assert (e3, p3, ep3) == (0, p1, ep2 + 1)


def test_produce_duplicate_batch_answers_original_offset(broker):
    clients.create_topic(broker.bootstrap, "dups", 1)
    with broker.raw() as c:
        _, pid, epoch = init_producer_id(c)
        first = c.produce("dups", 0, batch(pid, epoch, 0, [b"a", b"b"]))
        second = c.produce("dups", 0, batch(pid, epoch, 2, [b"c"]))
        again = c.produce("dups", 0, batch(pid, epoch, 0, [b"a", b"b"]))
        gap = c.produce("dups", 0, batch(pid, epoch, 7, [b"x"]))
        old_epoch = c.produce("dups", 0, batch(pid, epoch - 1, 3, [b"y"]))
    assert (first["error_code"], first["base_offset"]) == (0, 0)
    assert (second["error_code"], second["base_offset"]) == (0, 2)
    assert (again["error_code"], again["base_offset"]) == (0, 0), again
    assert gap["error_code"] == OUT_OF_ORDER_SEQUENCE_NUMBER, gap
    assert old_epoch["error_code"] == INVALID_PRODUCER_EPOCH, old_epoch
    recs = clients.consume_all(broker.bootstrap, "dups", 1)
    assert [r.value for r in recs] == [b"a", b"b", b"c"]


def _dedup_survives(broker, restart) -> None:
    clients.create_topic(broker.bootstrap, "dedup-restart", 1)
    with broker.raw() as c:
        _, pid, epoch = init_producer_id(c)
        for seq in range(0, 30, 3):
            r = c.produce("dedup-restart", 0, batch(pid, epoch, seq, [b"%d" % (seq + i) for i in range(3)]))
            assert r["error_code"] == 0
    restart()
    with broker.raw() as c:
        # A retry of the last batch after the restart is still a duplicate...
        r = c.produce("dedup-restart", 0, batch(pid, epoch, 27, [b"27", b"28", b"29"]))
        assert (r["error_code"], r["base_offset"]) == (0, 27), r
        # ...and the sequence continues where it was.
        r = c.produce("dedup-restart", 0, batch(pid, epoch, 30, [b"30"]))
        assert (r["error_code"], r["base_offset"]) == (0, 30), r
    recs = clients.consume_all(broker.bootstrap, "dedup-restart", 1)
    assert [r.value for r in recs] == [b"%d" % i for i in range(31)]


def test_produce_dedup_survives_kill9(broker):
    def crash_and_start():
        broker.kill9()
        broker.start()

    _dedup_survives(broker, crash_and_start)


def test_produce_dedup_survives_clean_restart(broker):
    _dedup_survives(broker, broker.restart)
