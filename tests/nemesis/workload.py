"""Recording clients: every produce attempt and its outcome, every poll, and
the final read go into the history (history.py) as they happen.

Producers are librdkafka (confluent-kafka) with acks=all and
enable.idempotence, as Jepsen's Kafka test and the issue ask: retries are
the client's, so a batch in flight at a crash is retried against the
restarted or new leader and must not be stored twice.

Outcomes. librdkafka reports one delivery result per message; what it
means for the history:
  - no error: "ok", with the partition and offset the broker gave;
  - an error the broker returns before appending anything (the record or
    request is refused as such: DEFINITE_FAILURES) is "fail";
  - anything else (message timeout, connection lost, purged at shutdown,
    a fatal idempotence error) is "unknown": the batch may be in the log.
Values are unique per run ("<process>-<seq>"), so the checker can follow
each one.

Consumers assign() every partition from the beginning, read_committed by
default, and record each consume() call as one poll. Every (re)assignment
or seek starts a new epoch; the monotonic check holds only within one.
"""

from __future__ import annotations

import random
import threading
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

import clients  # noqa: E402  (tests/integration)
from nemesis.history import History

# librdkafka: a message not delivered within this time is reported failed
# (outcome unknown). Longer than a restart plus the session timeout, so a
# killed leader's partitions are retried, not given up.
MESSAGE_TIMEOUT_MS = 30_000
RETRY_BACKOFF_MS = 100
# Leader moves are found by metadata refreshes; Kafka's default (5 min)
# would leave a producer on a dead leader for the whole run.
METADATA_REFRESH_MS = 1_000
PRODUCE_RATE_PER_S_DEFAULT = 200
FLUSH_WAIT_S_MAX = 60.0
POLL_BATCH_MAX = 500
POLL_WAIT_S = 0.2
FINAL_READ_WAIT_S_MAX = 120.0
CONSUMER_FETCH_WAIT_MS = 100

DEFINITE_FAILURES = frozenset({
    KafkaError.MSG_SIZE_TOO_LARGE,
    KafkaError.INVALID_RECORD,
    KafkaError.INVALID_MSG,  # CORRUPT_MESSAGE (2)
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    KafkaError._INVALID_ARG,
    KafkaError._UNKNOWN_TOPIC,
    KafkaError._UNKNOWN_PARTITION,
})


def outcome_of(err: KafkaError | None) -> str:
    if err is None:
        return "ok"
    return "fail" if err.code() in DEFINITE_FAILURES else "unknown"


def producer_config(bootstrap: str, **overrides) -> dict:
    conf = {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "message.timeout.ms": MESSAGE_TIMEOUT_MS,
        "retry.backoff.ms": RETRY_BACKOFF_MS,
        "topic.metadata.refresh.interval.ms": METADATA_REFRESH_MS,
        "linger.ms": 5,
        "logger": clients.librdkafka_log,
    }
    conf.update(overrides)
    return conf


class ProducerWorker(threading.Thread):
    """Produces unique values round-robin over the partitions at a steady
    rate until stopped, then flushes; recreates its producer after a fatal
    error (whose in-flight messages are then "unknown")."""

    def __init__(self, name: str, history: History, bootstrap: str, topic: str, partitions: int,
                 seed: int, rate_per_s: float = PRODUCE_RATE_PER_S_DEFAULT, **overrides) -> None:
        super().__init__(name=name, daemon=True)
        self.history, self.topic, self.partitions = history, topic, partitions
        self.rng = random.Random(seed)
        self.interval_s = 1.0 / rate_per_s
        self.conf = producer_config(bootstrap, error_cb=self._on_error, **overrides)
        self.stop_event = threading.Event()
        self.fatal = threading.Event()
        self.sent = 0

    def _on_error(self, err: KafkaError) -> None:
        self.history.append({"type": "error", "process": self.name, "error": str(err), "fatal": err.fatal()})
        if err.fatal():
            self.fatal.set()

    def _on_delivery(self, err, msg) -> None:
        e = {"type": "send", "process": self.name, "value": msg.value().decode(), "topic": msg.topic(),
             "txn": None, "outcome": outcome_of(err)}
        if err is None:
            e.update(partition=msg.partition(), offset=msg.offset())
        else:
            e.update(partition=msg.partition(), error=str(err))
        self.history.append(e)

    def run(self) -> None:
        p = Producer(self.conf)
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            if self.fatal.is_set():
                self._close(p)
                self.fatal.clear()
                p = Producer(self.conf)
            value = f"{self.name}-{self.sent}"
            partition = self.sent % self.partitions
            self.history.append({"type": "invoke", "process": self.name, "value": value, "topic": self.topic,
                                 "partition": partition, "txn": None})
            while True:
                try:
                    p.produce(self.topic, value=value.encode(), partition=partition, on_delivery=self._on_delivery)
                    break
                except BufferError:
                    p.poll(0.05)
            self.sent += 1
            next_at += self.interval_s
            p.poll(max(0.0, next_at - time.monotonic()))
        self._close(p)

    def _close(self, p: Producer) -> None:
        p.flush(FLUSH_WAIT_S_MAX)
        if len(p):
            p.purge()  # reported to _on_delivery as _PURGE_*: outcome unknown
            p.flush(5)

    def stop(self) -> None:
        self.stop_event.set()


def consumer_config(bootstrap: str, isolation: str = "read_committed", **overrides) -> dict:
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": "nemesis-unused",  # assign() only: never joins the group
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
        "isolation.level": isolation,
        "fetch.wait.max.ms": CONSUMER_FETCH_WAIT_MS,
        "topic.metadata.refresh.interval.ms": METADATA_REFRESH_MS,
        "check.crcs": True,
        "logger": clients.librdkafka_log,
    }
    conf.update(overrides)
    return conf


def poll_event(process: str, epoch: int, isolation: str, msgs: list, final: bool = False) -> tuple[dict, list]:
    """(poll event, partition EOF messages) of one consume() result."""
    records, eofs = [], []
    for m in msgs:
        err = m.error()
        if err is None:
            value = m.value().decode() if m.value() is not None else None
            records.append([m.topic(), m.partition(), m.offset(), value])
        elif err.code() == KafkaError._PARTITION_EOF:
            eofs.append(m)
    event = {"type": "poll", "process": process, "epoch": epoch, "isolation": isolation, "final": final,
             "records": records}
    return event, eofs


class ConsumerWorker(threading.Thread):
    """Reads every partition from the beginning until stopped, recording
    each non-empty poll."""

    def __init__(self, name: str, history: History, bootstrap: str, topic: str, partitions: int,
                 isolation: str = "read_committed") -> None:
        super().__init__(name=name, daemon=True)
        self.history, self.topic, self.partitions, self.isolation = history, topic, partitions, isolation
        self.conf = consumer_config(bootstrap, isolation)
        self.stop_event = threading.Event()
        self.polled = 0

    def run(self) -> None:
        c = Consumer(self.conf)
        try:
            c.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in range(self.partitions)])
            self.history.append({"type": "assign", "process": self.name, "epoch": 0})
            while not self.stop_event.is_set():
                msgs = c.consume(num_messages=POLL_BATCH_MAX, timeout=POLL_WAIT_S)
                for m in msgs:
                    err = m.error()
                    if err is not None and err.code() != KafkaError._PARTITION_EOF:
                        self.history.append({"type": "error", "process": self.name, "error": str(err)})
                event, _ = poll_event(self.name, 0, self.isolation, msgs)
                if event["records"]:
                    self.history.append(event)
                    self.polled += len(event["records"])
        finally:
            c.close()

    def stop(self) -> None:
        self.stop_event.set()


def final_read(history: History, bootstrap: str, topic: str, partitions: int,
               timeout_s: float = FINAL_READ_WAIT_S_MAX) -> int:
    """Reads every partition, read_committed, from the beginning to the end
    it had when the read began (the high watermark; the last stable offset
    once no transaction is open), records it as final polls and then a
    final_read event. Returns the record count. Run it with every partition
    led and the workload stopped."""
    c = Consumer(consumer_config(bootstrap))
    ends = {}
    for p in range(partitions):
        ends[p] = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30, cached=False)[1]
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        done: set[int] = {p for p, end in ends.items() if end == 0}
        count = 0
        deadline = time.monotonic() + timeout_s
        while len(done) < partitions:
            if time.monotonic() > deadline:
                raise AssertionError(f"final read of {topic}: partitions {sorted(set(ends) - done)} not read to "
                                     f"their end {ends} within {timeout_s}s")
            msgs = c.consume(num_messages=POLL_BATCH_MAX, timeout=POLL_WAIT_S)
            event, eofs = poll_event("final", 0, "read_committed", msgs, final=True)
            if event["records"]:
                history.append(event)
                count += len(event["records"])
            for m in eofs:
                if m.offset() >= ends[m.partition()]:
                    done.add(m.partition())
        history.append({"type": "final_read", "process": "final",
                        "end_offsets": {f"{topic}/{p}": end for p, end in ends.items()}})
        return count
    finally:
        c.close()


TXN_INIT_WAIT_S = 60.0
TXN_COMMIT_WAIT_S = 60.0
TXN_TIMEOUT_MS = 30_000
OUTPUT_PREFIX = "out:"


class TxnLoopWorker(threading.Thread):
    """A consume-transform-produce loop, Kafka's exactly-once pattern: a
    group consumer (read_committed) reads `in_topic`; each batch becomes one
    transaction that writes "out:<value>" to `out_topic` and commits the
    consumer's positions with it (send_offsets_to_transaction).

    On an abortable error the transaction is aborted and the consumer
    rewinds to its committed offsets (a new epoch); on a fatal one, producer
    and consumer are made again. Each transaction is "<transactional id>#n"
    in the history; its writes are sends with that txn."""

    def __init__(self, name: str, history: History, bootstrap: str, in_topic: str, out_topic: str,
                 group: str, transactional_id: str) -> None:
        super().__init__(name=name, daemon=True)
        self.history, self.bootstrap = history, bootstrap
        self.in_topic, self.out_topic, self.group, self.tid = in_topic, out_topic, group, transactional_id
        self.stop_event = threading.Event()
        self.epoch = 0
        self.txns = 0
        self.committed = 0

    def _bump_epoch(self, *_args) -> None:
        self.epoch += 1
        self.history.append({"type": "assign", "process": self.name, "epoch": self.epoch})

    def _clients(self) -> tuple[Consumer, Producer]:
        consumer = Consumer(consumer_config(self.bootstrap, **{"group.id": self.group, "enable.partition.eof": False}))
        consumer.subscribe([self.in_topic], on_assign=self._bump_epoch, on_revoke=self._bump_epoch)
        producer = Producer(producer_config(self.bootstrap, **{"transactional.id": self.tid,
                                                              "transaction.timeout.ms": TXN_TIMEOUT_MS}))
        producer.init_transactions(TXN_INIT_WAIT_S)
        return consumer, producer

    def run(self) -> None:
        consumer, producer = self._clients()
        try:
            while not self.stop_event.is_set():
                msgs = [m for m in consumer.consume(num_messages=POLL_BATCH_MAX, timeout=POLL_WAIT_S)
                        if m.error() is None]
                if not msgs:
                    continue
                event, _ = poll_event(self.name, self.epoch, "read_committed", msgs)
                self.history.append(event)
                try:
                    self._transform(consumer, producer, msgs)
                except KafkaException as e:
                    consumer, producer = self._recover(consumer, producer, e)
        finally:
            consumer.close()
            producer.flush(5)

    def _transform(self, consumer: Consumer, producer: Producer, msgs: list) -> None:
        self.txns += 1
        txn = f"{self.tid}#{self.txns}"
        producer.begin_transaction()
        for m in msgs:
            value = OUTPUT_PREFIX + m.value().decode()
            self.history.append({"type": "invoke", "process": self.name, "value": value, "topic": self.out_topic,
                                 "partition": m.partition(), "txn": txn})
            producer.produce(self.out_topic, value=value.encode(), partition=m.partition(),
                             on_delivery=lambda err, msg, txn=txn: self._on_delivery(err, msg, txn))
        producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                             consumer.consumer_group_metadata(), TXN_COMMIT_WAIT_S)
        self.history.append({"type": "txn", "process": self.name, "txn": txn, "phase": "commit_invoke"})
        producer.commit_transaction(TXN_COMMIT_WAIT_S)
        self.history.append({"type": "txn", "process": self.name, "txn": txn, "phase": "commit_ok"})
        self.committed += 1

    def _on_delivery(self, err, msg, txn: str) -> None:
        e = {"type": "send", "process": self.name, "value": msg.value().decode(), "topic": msg.topic(),
             "txn": txn, "outcome": outcome_of(err), "partition": msg.partition()}
        if err is None:
            e["offset"] = msg.offset()
        self.history.append(e)

    def _recover(self, consumer: Consumer, producer: Producer, e: KafkaException) -> tuple[Consumer, Producer]:
        err = e.args[0]
        txn = f"{self.tid}#{self.txns}"
        self.history.append({"type": "error", "process": self.name, "error": str(err), "txn": txn})
        if err.txn_requires_abort():
            try:
                producer.abort_transaction(TXN_COMMIT_WAIT_S)
                self.history.append({"type": "txn", "process": self.name, "txn": txn, "phase": "abort_ok"})
                self._rewind(consumer)
                return consumer, producer
            except KafkaException as again:
                err = again.args[0]
        self.history.append({"type": "txn", "process": self.name, "txn": txn, "phase": "unknown"})
        if err.retriable() and not err.fatal():
            self._rewind(consumer)  # the commit may or may not have happened: read from what is committed
            return consumer, producer
        consumer.close()
        return self._clients()

    def _rewind(self, consumer: Consumer) -> None:
        assignment = consumer.assignment()
        committed = consumer.committed(assignment, timeout=TXN_COMMIT_WAIT_S)
        for tp in committed:
            tp.offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            consumer.seek(tp)
        self._bump_epoch()

    def stop(self) -> None:
        self.stop_event.set()
