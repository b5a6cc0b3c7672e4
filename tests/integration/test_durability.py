"""Persistence: graceful restart, kill -9 under acks=all load, segment roll."""

from __future__ import annotations

import os
import re
import time

import pytest
from confluent_kafka import KafkaError

import clients
from clients import assert_dense, by_partition, consume_all, create_topic, produce_all


def test_restart_reads_everything(broker):
    specs = {"persist-three": 3, "persist-one": 1}
    t0 = int(time.time() * 1000) - 60_000
    for topic, parts in specs.items():
        create_topic(broker.bootstrap, topic, parts)
        produce_all(
            broker.bootstrap,
            topic,
            [
                (f"key-{i % 50}".encode(), os.urandom(i % 300), None, t0 + i, [("i", str(i).encode())])
                for i in range(3000)
            ],
            **{"compression.type": "lz4" if parts == 1 else "none"},
        )
    before = {t: consume_all(broker.bootstrap, t, n, expect=3000) for t, n in specs.items()}

    broker.stop()  # SIGTERM: must exit 0 within 20 s
    broker.start()

    for topic, parts in specs.items():
        assert clients.partition_count(broker.bootstrap, topic) == parts
        after = consume_all(broker.bootstrap, topic, parts, expect=3000)
        key = lambda r: (r.partition, r.offset)  # noqa: E731
        assert sorted(after, key=key) == sorted(before[topic], key=key), f"{topic} changed across restart"
    # appends continue at the old end
    produce_all(broker.bootstrap, "persist-one", [(None, b"after-restart")])
    recs = consume_all(broker.bootstrap, "persist-one", 1, expect=3001)
    assert_dense(recs)
    assert recs[-1].offset == 3000 and recs[-1].value == b"after-restart"


def test_restart_twice_and_change_shard_count(broker):
    """Data written with 2 shards is served after restarting with 1 shard and
    then with 2 again: ownership is re-derived, nothing is lost."""
    create_topic(broker.bootstrap, "reshard", 4)
    produce_all(broker.bootstrap, "reshard", [(None, f"{p}-{i}".encode(), p) for p in range(4) for i in range(100)])
    for shards in (1, 2):
        broker.stop()
        broker.shards = shards
        broker.start()
        recs = consume_all(broker.bootstrap, "reshard", 4, expect=400)
        assert_dense(recs)
        for p, rs in by_partition(recs).items():
            assert [r.value for r in rs] == [f"{p}-{i}".encode() for i in range(100)]


def test_segment_roll_and_layout(broker_factory):
    """Small segments: several <base_offset:020>.log files per partition,
    all readable, also after a restart."""
    b = broker_factory(extra_args=["--segment-bytes", str(1024 * 1024)])
    topic = "rolling"
    create_topic(b.bootstrap, topic, 1)
    n = 5000
    values = [os.urandom(1000) for _ in range(n)]
    produce_all(b.bootstrap, topic, [(None, v, 0) for v in values], **{"batch.size": 64 * 1024})
    part_dir = b.data_dir / f"{topic}-0"
    assert part_dir.is_dir(), f"missing partition dir {part_dir}; data dir has {sorted(os.listdir(b.data_dir))}"
    logs = sorted(f for f in os.listdir(part_dir) if f.endswith(".log"))
    assert all(re.fullmatch(r"\d{20}\.log", f) for f in logs), logs
    assert len(logs) >= 4, f"5 MB with 1 MiB segments left only {logs}"
    assert logs[0] == f"{0:020}.log"
    bases = [int(f[:20]) for f in logs]
    assert bases == sorted(set(bases))
    for _ in range(2):
        recs = consume_all(b.bootstrap, topic, 1, expect=n)
        assert_dense(recs)
        assert [r.value for r in recs] == values
        b.restart()


@pytest.mark.slow
def test_kill9_during_acks_all_produce(broker):
    """kill -9 while an acks=all producer streams: after restart every
    acknowledged record is present exactly once at its acknowledged offset,
    and offsets are dense."""
    topic = "kill9"
    parts = 3
    create_topic(broker.bootstrap, topic, parts)
    acked: dict[bytes, tuple[int, int]] = {}
    failed = 0

    def on_delivery(err, msg):
        nonlocal failed
        if err is None:
            acked[msg.value()] = (msg.partition(), msg.offset())
        else:
            failed += 1

    # retries=0: nothing is re-sent after the crash, so every value is
    # written at most once and duplicates are a broker bug.
    p = clients.producer(
        broker.bootstrap,
        acks="all",
        retries=0,
        **{"linger.ms": 2, "batch.size": 64 * 1024, "message.timeout.ms": 30000},
    )
    i = 0
    killed_at = None
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, f"only {len(acked)} acks after 120 s"
        value = f"r{i:08d}|".encode() + b"x" * 200
        try:
            p.produce(topic, value=value, key=f"k{i % 100}".encode(), on_delivery=on_delivery)
            i += 1
        except BufferError:
            p.poll(0.01)
        p.poll(0)
        if killed_at is None and len(acked) >= 5000:
            broker.kill9()
            killed_at = len(acked)
            break
    in_flight = i - len(acked) - failed
    assert in_flight > 0, "nothing was in flight at the kill; the test did not test anything"
    p.purge()  # drop queued and in-flight records: no retries after restart
    p.flush(10)
    acked_snapshot = dict(acked)

    broker.start()
    recs = consume_all(broker.bootstrap, topic, parts)
    assert_dense(recs)
    values = [r.value for r in recs]
    assert len(values) == len(set(values)), "a record is stored twice"
    where = {r.value: (r.partition, r.offset) for r in recs}
    missing = [v for v in acked_snapshot if v not in where]
    assert not missing, f"{len(missing)} of {len(acked_snapshot)} acknowledged records lost, e.g. {missing[:3]}"
    moved = [(v, acked_snapshot[v], where[v]) for v in acked_snapshot if where[v] != acked_snapshot[v]]
    assert not moved, f"{len(moved)} acknowledged records at other offsets, e.g. {moved[:3]}"
    # within a partition, records keep produce order
    for part, rs in by_partition(recs).items():
        seq = [int(r.value[1:9]) for r in rs]
        assert seq == sorted(seq), f"partition {part}: records out of produce order"
    # and the log accepts new appends after recovery
    produce_all(broker.bootstrap, topic, [(None, b"after", 0)])
    hw = clients.watermarks(broker.bootstrap, topic, 0)[1]
    assert hw == len(by_partition(recs).get(0, [])) + 1


def test_sigterm_during_acks_all_produce(broker):
    """SIGTERM while an acks=all producer streams: the broker exits 0 within
    20 s, and after a restart every acknowledged record is at its
    acknowledged offset, each stored once."""
    import signal
    import subprocess

    topic = "sigterm-load"
    create_topic(broker.bootstrap, topic, 2)
    acked: dict[bytes, tuple[int, int]] = {}

    def on_delivery(err, msg):
        if err is None:
            acked[msg.value()] = (msg.partition(), msg.offset())

    p = clients.producer(broker.bootstrap, retries=0, **{"linger.ms": 2, "message.timeout.ms": 20000})
    i = 0
    deadline = time.monotonic() + 60
    signalled_at = None
    while True:
        assert time.monotonic() < deadline, f"only {len(acked)} acks after 60 s"
        try:
            p.produce(topic, value=f"s{i:08d}".encode() + b"y" * 100, on_delivery=on_delivery)
            i += 1
        except BufferError:
            pass
        p.poll(0.001 if i % 100 == 0 else 0)
        if signalled_at is None and len(acked) >= 3000:
            broker.proc.send_signal(signal.SIGTERM)
            broker.expected_down = True
            signalled_at = time.monotonic()
        if signalled_at is not None and time.monotonic() - signalled_at > 1.0:
            break
    try:
        rc = broker.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("broker did not exit within 20 s of SIGTERM under load")
    assert rc == 0, f"exit status {rc} after SIGTERM under load"
    p.purge()
    p.flush(5)
    acked_snapshot = dict(acked)

    broker.start()
    recs = consume_all(broker.bootstrap, topic, 2)
    assert_dense(recs)
    values = [r.value for r in recs]
    assert len(values) == len(set(values)), "a record is stored twice"
    where = {r.value: (r.partition, r.offset) for r in recs}
    lost = [v for v in acked_snapshot if where.get(v) != acked_snapshot[v]]
    assert not lost, f"{len(lost)} acknowledged records missing or moved, e.g. {lost[:3]}"


@pytest.mark.slow
def test_kill9_repeated_recovery(broker):
    """Three kill -9 / restart cycles with acks=all writes in between: the
    log grows monotonically and stays dense."""
    topic = "kill9-cycles"
    create_topic(broker.bootstrap, topic, 2)
    expect: list[bytes] = []
    for cycle in range(3):
        batch = [(None, f"c{cycle}-{j}".encode(), j % 2) for j in range(2000)]
        produce_all(broker.bootstrap, topic, batch)
        expect += [b[1] for b in batch]
        broker.kill9()
        broker.start()
        recs = consume_all(broker.bootstrap, topic, 2, expect=len(expect))
        assert_dense(recs)
        assert sorted(r.value for r in recs) == sorted(expect)


def test_fetch_long_poll_wakes_on_append(broker):
    """A consumer parked at the log end with a 5 s max wait gets a new record
    far sooner than 5 s: long-poll is woken by the append."""
    topic = "long-poll"
    create_topic(broker.bootstrap, topic, 1)
    produce_all(broker.bootstrap, topic, [(None, b"first", 0)])
    c = clients.consumer(broker.bootstrap, **{"fetch.wait.max.ms": 5000, "fetch.min.bytes": 1})
    from confluent_kafka import TopicPartition

    try:
        c.assign([TopicPartition(topic, 0, 1)])
        # let the consumer park its fetch at offset 1
        m = c.poll(2.0)
        assert m is None or (m.error() and m.error().code() == KafkaError._PARTITION_EOF)
        time.sleep(1.0)
        latencies = []
        for k in range(3):
            sent = time.monotonic()
            produce_all(broker.bootstrap, topic, [(None, f"wake{k}".encode(), 0)], acks="1")
            got = None
            while time.monotonic() - sent < 10:
                m = c.poll(0.05)
                if m is not None and m.error() is None:
                    got = m
                    break
            assert got is not None and got.value() == f"wake{k}".encode()
            latencies.append(time.monotonic() - sent)
            time.sleep(0.5)
    finally:
        c.close()
    assert max(latencies) < 2.5, f"long-poll answered only after {latencies} s (max wait 5 s)"


def test_produce_acks_all_clients_reset_with_requests_in_flight(broker):
    """Clients that reset their connection (RST) with acks=all produces in
    flight: the broker can answer none of them, and the request tasks are
    dropped, but an append already taken is still flushed whole. Nothing
    may go offline, and no hole may open under the high watermark: after a
    restart the log is dense, every record is whole, and everything a
    well-behaved producer had acknowledged afterwards is there."""
    import socket
    import struct

    from kafka_raw import PRODUCE, Writer, record_batch_v2

    topic = "reset-mid-flight"
    create_topic(broker.bootstrap, topic, 1)
    filler = b"x" * 60_000  # big batches, so several flushes overlap the reset
    for client in range(30):
        with broker.raw() as c:
            v = c.pick_version(PRODUCE, 3, 8)
            # Sent back to back and reset at once: the first request's flush
            # is running when the rest arrive, so they form a second flush,
            # and the reset lands while it runs. Varying counts vary the
            # moment.
            for i in range(4 + client % 24):
                batch = record_batch_v2([(None, f"c{client:02d}-{i:02d}|".encode() + filler)])
                body = Writer().string(None).int16(-1).int32(10_000).int32(1).string(topic)
                body = body.int32(1).int32(0).bytes_(batch).bytes()
                c.send_request(PRODUCE, v, body)
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # closed with SO_LINGER 0: a reset, not a FIN
        time.sleep(0.05)

    acked: dict[bytes, int] = {}

    def on_delivery(err, msg):
        assert err is None, f"produce after the resets failed: {err}"
        acked[msg.value()] = msg.offset()

    p = clients.producer(broker.bootstrap, acks="all", retries=0)
    for i in range(200):
        p.produce(topic, value=f"after-{i:03d}".encode(), partition=0, on_delivery=on_delivery)
    assert p.flush(30) == 0
    assert len(acked) == 200

    broker.stop()
    broker.start()
    recs = consume_all(broker.bootstrap, topic, 1)
    assert_dense(recs)
    for r in recs:
        if not r.value.startswith(b"after-"):
            assert r.value.endswith(filler) and len(r.value) == 7 + len(filler), f"record {r.offset} not whole"
    where = {r.value: r.offset for r in recs}
    lost = [v for v, off in acked.items() if where.get(v) != off]
    assert not lost, f"{len(lost)} acknowledged records lost or moved, e.g. {lost[:3]}"
    stored = len(recs) - 200
    assert stored >= 30, f"only {stored} of the reset clients' records stored: the test reset too early"
