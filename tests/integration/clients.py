"""Client-side helpers shared by the integration tests (confluent-kafka, i.e.
librdkafka, unless a name says otherwise).

Consumer groups are not implemented by the broker yet, so every consumer here
uses manual assign(): it never talks to a group coordinator.
"""

from __future__ import annotations

import logging
import struct
import time
from dataclasses import dataclass

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

admin_wait_s_max = 30.0
consume_wait_s_max = 120.0


@dataclass(frozen=True)
class Rec:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    headers: tuple = ()


# librdkafka's own log lines go to this logger (pytest shows captured log
# records for failing tests only) instead of straight to stderr, where clients
# left over from earlier tests would interleave reconnect noise.
librdkafka_log = logging.getLogger("librdkafka")


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 20000, "logger": librdkafka_log})


def create_topic(
    bootstrap: str, topic: str, partitions: int, config: dict | None = None, replication_factor: int = 1
) -> None:
    # keep the AdminClient referenced until the future resolves: a collected
    # client destroys its handle and fails pending futures with _DESTROY
    a = admin(bootstrap)
    fs = a.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=replication_factor, config=config or {})],
        operation_timeout=20,
        request_timeout=20,
    )
    fs[topic].result(timeout=admin_wait_s_max)
    del a
    wait_for_partitions(bootstrap, topic, partitions)


def partition_count(bootstrap: str, topic: str) -> int | None:
    md = admin(bootstrap).list_topics(timeout=20)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return None
    return len(t.partitions)


def wait_for_partitions(bootstrap: str, topic: str, partitions: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    n = None
    while time.monotonic() < deadline:
        n = partition_count(bootstrap, topic)
        if n == partitions:
            return
        time.sleep(0.1)
    raise AssertionError(f"topic {topic}: metadata shows {n} partitions, expected {partitions}")


def producer(bootstrap: str, **conf) -> Producer:
    base = {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": 60000,
        "enable.idempotence": False,  # the default; idempotence has its own tests
        "logger": librdkafka_log,
    }
    base.update(conf)
    return Producer(base)


def produce_all(
    bootstrap: str,
    topic: str,
    records: list[tuple],
    **conf,
) -> list[tuple[int, int, bytes | None]]:
    """Produce (key, value[, partition[, timestamp_ms[, headers]]]) tuples;
    wait for every delivery report; raise on any delivery error. Returns
    [(partition, offset, value)] in delivery-report order."""
    p = producer(bootstrap, **conf)
    acked: list[tuple[int, int, bytes | None]] = []
    errors: list[str] = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(f"{err} (key={msg.key()!r})")
        else:
            acked.append((msg.partition(), msg.offset(), msg.value()))

    for rec in records:
        kwargs = {"key": rec[0], "value": rec[1], "on_delivery": on_delivery}
        if len(rec) > 2 and rec[2] is not None:
            kwargs["partition"] = rec[2]
        if len(rec) > 3 and rec[3] is not None:
            kwargs["timestamp"] = rec[3]
        if len(rec) > 4 and rec[4]:
            kwargs["headers"] = list(rec[4])
        while True:
            try:
                p.produce(topic, **kwargs)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(120)
    assert left == 0, f"{left} records still undelivered after 120 s"
    assert not errors, f"{len(errors)} delivery errors, first: {errors[:5]}"
    assert len(acked) == len(records)
    return acked


def consumer(bootstrap: str, **conf) -> Consumer:
    base = {
        "bootstrap.servers": bootstrap,
        "group.id": "corestream-tests-unused",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 100,
        "check.crcs": True,
        "logger": librdkafka_log,
    }
    base.update(conf)
    return Consumer(base)


def consume_all(
    bootstrap: str,
    topic: str,
    partitions: list[int] | int,
    expect: int | None = None,
    timeout_s: float = consume_wait_s_max,
    start_offset: int = OFFSET_BEGINNING,
    **conf,
) -> list[Rec]:
    """Read every assigned partition from start_offset to its end (partition
    EOF = the high watermark the broker reported). If expect is given, keep
    reading until at least that many records arrived. Returns the records in
    arrival order."""
    if isinstance(partitions, int):
        partitions = list(range(partitions))
    c = consumer(bootstrap, **conf)
    try:
        c.assign([TopicPartition(topic, p, start_offset) for p in partitions])
        at_eof: set[int] = set()
        out: list[Rec] = []
        deadline = time.monotonic() + timeout_s
        while True:
            done = len(at_eof) == len(partitions) and (expect is None or len(out) >= expect)
            if done:
                break
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"consume {topic}: timed out after {timeout_s}s with {len(out)} records"
                    f" (expected {expect}), partitions at EOF: {sorted(at_eof)}"
                )
            for m in c.consume(num_messages=10000, timeout=0.5):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        at_eof.add(m.partition())
                        continue
                    raise KafkaException(err)
                at_eof.discard(m.partition())
                ts_type, ts = m.timestamp()
                out.append(
                    Rec(m.partition(), m.offset(), m.key(), m.value(), ts, tuple(m.headers() or ()))
                )
        return out
    finally:
        c.close()


def by_partition(recs: list[Rec]) -> dict[int, list[Rec]]:
    out: dict[int, list[Rec]] = {}
    for r in recs:
        out.setdefault(r.partition, []).append(r)
    return out


def assert_dense(recs: list[Rec], start: int = 0) -> None:
    """Per partition: offsets start at `start`, strictly +1, arrive in order."""
    for p, rs in by_partition(recs).items():
        offs = [r.offset for r in rs]
        assert offs == list(range(start, start + len(offs))), (
            f"partition {p}: offsets not dense from {start}: first gap near "
            f"{next((i for i, (a, b) in enumerate(zip(offs, range(start, 10**12))) if a != b), None)}"
            f" (first 10: {offs[:10]}, count {len(offs)})"
        )


def watermarks(bootstrap: str, topic: str, partition: int) -> tuple[int, int]:
    c = consumer(bootstrap)
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=20, cached=False)
    finally:
        c.close()


def wait_for(what: str, check, timeout_s: float = 60.0, interval_s: float = 0.2):
    """Calls check() until it returns something truthy, and returns that;
    fails naming `what` and the last value after timeout_s."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def batch_headers(data: bytes):
    """(attributes, record count) of each v2 batch in segment file bytes,
    up to the first zero length (the preallocated tail)."""
    pos = 0
    while pos + 61 <= len(data):
        length = struct.unpack_from(">i", data, pos + 8)[0]
        if length <= 0:
            return
        yield struct.unpack_from(">h", data, pos + 21)[0], struct.unpack_from(">i", data, pos + 57)[0]
        pos += length + 12
