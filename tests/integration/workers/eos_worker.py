"""A consume-transform-produce worker (exactly-once with transactions),
run as its own process so a test can crash it mid-transaction.

usage: eos_worker.py BOOTSTRAP IN_TOPIC OUT_TOPIC PARTITIONS TOTAL CRASH_AFTER_TXNS

Reads IN_TOPIC (read_committed, from the group's committed offsets), writes
b"out-" + value to OUT_TOPIC and commits the input offsets in the same
transaction. CRASH_AFTER_TXNS > 0: after that many commits, produce one
more transaction's records, flush them, and exit without committing (the
crash a new instance must clean up). Exits 0 once TOTAL inputs are
committed (by it or an earlier instance), or nothing new arrives for 10 s.
"""

import os
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

bootstrap, in_topic, out_topic = sys.argv[1], sys.argv[2], sys.argv[3]
partitions, total, crash_after = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])

consumer = Consumer(
    {
        "bootstrap.servers": bootstrap,
        "group.id": "eos-worker",
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 100,
    }
)
producer = Producer(
    {
        "bootstrap.servers": bootstrap,
        "transactional.id": "eos-worker-txn",
        "linger.ms": 5,
    }
)
producer.init_transactions(30)
consumer.assign([TopicPartition(in_topic, p) for p in range(partitions)])

committed_txns = 0
done = 0  # input records committed so far, by this and earlier instances
idle_since = time.monotonic()
while done < total and time.monotonic() - idle_since < 10:
    msgs = [m for m in consumer.consume(num_messages=200, timeout=0.5) if m.error() is None]
    if not msgs:
        continue
    idle_since = time.monotonic()
    producer.begin_transaction()
    for m in msgs:
        producer.produce(out_topic, value=b"out-" + m.value(), partition=m.partition())
    if crash_after and committed_txns == crash_after:
        producer.flush(30)
        os._exit(3)
    positions = consumer.position(consumer.assignment())
    producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 30)
    try:
        producer.commit_transaction(30)
    except KafkaException as e:
        print(f"commit failed: {e}", file=sys.stderr)
        sys.exit(4)
    committed_txns += 1
    # Input offsets start at 0: the positions add up to the records done.
    done = sum(max(p.offset, 0) for p in positions)
print(f"committed {committed_txns} transactions, {done} records", file=sys.stderr)
consumer.close()
