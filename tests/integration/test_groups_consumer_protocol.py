"""KIP-848 consumer groups (group.protocol=consumer) with librdkafka through
confluent-kafka: server-side assignment, members leaving or dying, commits
with member epochs, a broker restart, hand-made bad heartbeats, and the
admin views. Also: offsets partitions are loaded at start (ListGroups
right after a restart)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter

import pytest
from confluent_kafka import Consumer, ConsumerGroupType, KafkaError, KafkaException, TopicPartition

import clients
from clients import create_topic, produce_all
from kafka_raw import Reader, Writer

session_timeout_ms = 6000
heartbeat_interval_ms = 500
broker_args = [
    f"--group-consumer-session-timeout-ms={session_timeout_ms}",
    f"--group-consumer-heartbeat-interval-ms={heartbeat_interval_ms}",
]
wait_s_max = 45.0
consumer_group_heartbeat = 68

# Kafka error codes used below.
UNKNOWN_MEMBER_ID = 25
INVALID_REQUEST = 42
UNSUPPORTED_ASSIGNOR = 112
FENCED_MEMBER_EPOCH = 110
UNRELEASED_INSTANCE_ID = 111


@pytest.fixture
def kbroker(broker_factory):
    return broker_factory(extra_args=broker_args)


def new_consumer(bootstrap: str, group: str, **conf) -> Consumer:
    # In this mode librdkafka refuses session.timeout.ms and
    # partition.assignment.strategy: the broker owns both.
    base = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "group.protocol": "consumer",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "fetch.wait.max.ms": 100,
    }
    base.update(conf)
    return Consumer(base)


def assigned(c: Consumer) -> set[int]:
    return {tp.partition for tp in c.assignment()}


def poll_until(consumers, done, on_msg=None, timeout_s: float = wait_s_max, transient=()) -> None:
    """Polls every consumer until done(); errors other than EOF and the
    `transient` codes fail the test."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; assignments: {[sorted(assigned(c)) for c in consumers]}")
        # A batch per call: one message per 50 ms wait would make a member
        # whose partitions are drained slow the others to a crawl.
        for c in consumers:
            for m in c.consume(num_messages=500, timeout=0.05):
                if m.error() is not None:
                    if m.error().code() in (KafkaError._PARTITION_EOF, *transient):
                        continue
                    raise KafkaException(m.error())
                if on_msg is not None:
                    on_msg(c, m)


def fill(bootstrap: str, topic: str, partitions: int, per_partition: int) -> set[bytes]:
    values = [f"{p}-{i}".encode() for p in range(partitions) for i in range(per_partition)]
    produce_all(bootstrap, topic, [(b"k", v, int(v.split(b"-")[0])) for v in values])
    return set(values)


class Tally:
    """Counts every record seen and commits it synchronously (so a member
    that stops can never have consumed past what it committed)."""

    def __init__(self) -> None:
        self.seen: Counter[bytes] = Counter()

    def __call__(self, c: Consumer, m) -> None:
        self.seen[m.value()] += 1
        commit_retrying(c, m)


def commit_retrying(c: Consumer, m) -> None:
    """Commits, retrying STALE_MEMBER_EPOCH: a commit that races a heartbeat
    bumping the member's epoch carries the old one (Kafka answers the same;
    librdkafka then hurries a heartbeat, and the retry has the new epoch)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            c.commit(message=m, asynchronous=False)
            return
        except KafkaException as e:
            if e.args[0].code() != KafkaError.STALE_MEMBER_EPOCH or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def balanced(consumers, per_member: int) -> bool:
    parts = [assigned(c) for c in consumers]
    union = set().union(*parts)
    return all(len(p) == per_member for p in parts) and len(union) == per_member * len(consumers)


def test_consumer_protocol_three_members_consume_every_record_once(kbroker):
    topic, group = "kip848-once", "kip848-once-g"
    create_topic(kbroker.bootstrap, topic, 6)
    members = [new_consumer(kbroker.bootstrap, group) for _ in range(3)]
    try:
        for c in members:
            c.subscribe([topic])
        poll_until(members, lambda: balanced(members, 2))
        expected = fill(kbroker.bootstrap, topic, 6, 1000)
        tally = Tally()
        poll_until(members, lambda: len(tally.seen) == len(expected), on_msg=tally)
        assert set(tally.seen) == expected
        dupes = {v: n for v, n in tally.seen.items() if n != 1}
        assert not dupes, f"records seen more than once: {list(dupes.items())[:5]}"
        committed = members[0].committed([TopicPartition(topic, p) for p in range(6)], timeout=10)
        assert [tp.offset for tp in committed] == [1000] * 6
    finally:
        for c in members:
            c.close()


@pytest.mark.parametrize("assignor", ["uniform", "range"])
def test_consumer_protocol_assignment_is_balanced(kbroker, assignor):
    topic, group = f"kip848-{assignor}", f"kip848-{assignor}-g"
    create_topic(kbroker.bootstrap, topic, 6)
    members = [new_consumer(kbroker.bootstrap, group, **{"group.remote.assignor": assignor}) for _ in range(3)]
    try:
        for c in members:
            c.subscribe([topic])
        poll_until(members, lambda: balanced(members, 2))
        if assignor == "range":
            # Contiguous ranges, as Kafka's range assignor gives.
            ranges = sorted(sorted(assigned(c)) for c in members)
            assert ranges == [[0, 1], [2, 3], [4, 5]]
        admin = clients.admin(kbroker.bootstrap)
        d = admin.describe_consumer_groups([group])[group].result(timeout=10)
        assert d.partition_assignor == assignor
        assert d.type == ConsumerGroupType.CONSUMER
        assert len(d.members) == 3
        assert sorted(p.partition for m in d.members for p in m.assignment.topic_partitions) == list(range(6))
    finally:
        for c in members:
            c.close()


def test_consumer_protocol_closed_member_partitions_move_nothing_skipped(kbroker):
    topic, group = "kip848-close", "kip848-close-g"
    create_topic(kbroker.bootstrap, topic, 6)
    expected = fill(kbroker.bootstrap, topic, 6, 200)
    members = [new_consumer(kbroker.bootstrap, group) for _ in range(3)]
    tally = Tally()
    try:
        for c in members:
            c.subscribe([topic])
        poll_until(members, lambda: balanced(members, 2), on_msg=tally)
        poll_until(members, lambda: len(tally.seen) >= len(expected) // 3, on_msg=tally)
        members.pop().close()  # leaves with epoch -1: a new assignment at once
        started = time.monotonic()
        poll_until(members, lambda: balanced(members, 3), on_msg=tally)
        assert time.monotonic() - started < session_timeout_ms / 1000, "moved only after a session timeout"
        more = {f"{p}-x{i}".encode() for p in range(6) for i in range(50)}
        produce_all(kbroker.bootstrap, topic, [(b"k", v, int(v.split(b"-")[0])) for v in more])
        expected |= more
        poll_until(members, lambda: set(tally.seen) >= expected, on_msg=tally)
        assert set(tally.seen) == expected
        assert all(n == 1 for n in tally.seen.values()), "a record was consumed twice"
    finally:
        for c in members:
            c.close()


KILLED_MEMBER = textwrap.dedent(
    """
    import sys, time
    from confluent_kafka import Consumer
    bootstrap, group, topic, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "consumer",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    consumed = 0
    while consumed < count:
        m = c.poll(0.1)
        if m is None or m.error():
            continue
        while True:
            try:
                c.commit(message=m, asynchronous=False)
                break
            except Exception:
                time.sleep(0.05)
        consumed += 1
        print(m.value().decode(), flush=True)
    print("done", flush=True)
    time.sleep(600)  # still a member (heartbeats go on) until killed
    """
)


def test_consumer_protocol_killed_member_partitions_move_after_session_timeout(kbroker):
    topic, group = "kip848-kill", "kip848-kill-g"
    create_topic(kbroker.bootstrap, topic, 6)
    members = [new_consumer(kbroker.bootstrap, group) for _ in range(2)]
    victim = subprocess.Popen(
        [sys.executable, "-c", KILLED_MEMBER, kbroker.bootstrap, group, topic, "20"],
        stdout=subprocess.PIPE,
        text=True,
    )
    tally = Tally()
    try:
        for c in members:
            c.subscribe([topic])
        # Wait until the victim holds its 2 partitions (the others 2 each).
        poll_until(members, lambda: balanced(members, 2), on_msg=tally)
        expected = fill(kbroker.bootstrap, topic, 6, 100)
        victim_seen: list[bytes] = []
        deadline = time.monotonic() + wait_s_max
        while time.monotonic() < deadline:
            line = victim.stdout.readline().strip()
            if line == "done":
                break
            if line:
                victim_seen.append(line.encode())
        assert len(victim_seen) == 20, "the third member did not consume its 20 records"
        victim.kill()
        victim.wait()
        killed_at = time.monotonic()
        poll_until(members, lambda: balanced(members, 3), on_msg=tally)
        took = time.monotonic() - killed_at
        assert took >= session_timeout_ms / 1000 * 0.5, f"moved after {took:.1f}s, before the session could expire"
        try:
            poll_until(members, lambda: set(tally.seen) | set(victim_seen) >= expected, on_msg=tally)
        except AssertionError as e:
            missing = sorted(expected - set(tally.seen) - set(victim_seen))
            raise AssertionError(f"{e}; never consumed: {missing[:20]} ({len(missing)})") from None
        # Resuming from its commits skips nothing; its last commit covers all
        # it printed, so nothing it handled is handled again.
        assert set(tally.seen) | set(victim_seen) == expected
        assert not set(tally.seen) & set(victim_seen), "records the dead member committed were redelivered"
    finally:
        if victim.poll() is None:
            victim.kill()
        for c in members:
            c.close()


def test_consumer_protocol_resumes_from_committed_offsets_after_restart(kbroker):
    topic, group = "kip848-restart", "kip848-restart-g"
    create_topic(kbroker.bootstrap, topic, 3)
    expected = fill(kbroker.bootstrap, topic, 3, 100)
    c = new_consumer(kbroker.bootstrap, group)
    tally = Tally()
    try:
        c.subscribe([topic])
        poll_until([c], lambda: len(tally.seen) >= 150, on_msg=tally)
    finally:
        c.close()
    kbroker.restart()
    c = new_consumer(kbroker.bootstrap, group)
    try:
        c.subscribe([topic])
        poll_until([c], lambda: set(tally.seen) >= expected, on_msg=tally)
        assert set(tally.seen) == expected
        assert all(n == 1 for n in tally.seen.values()), "restart re-delivered committed records"
    finally:
        c.close()


def test_consumer_protocol_member_carries_on_across_restart(kbroker):
    """A live member keeps its epoch and partitions through a restart: the
    group state is rebuilt from __consumer_offsets."""
    topic, group = "kip848-live", "kip848-live-g"
    create_topic(kbroker.bootstrap, topic, 4)
    c = new_consumer(kbroker.bootstrap, group)
    try:
        c.subscribe([topic])
        poll_until([c], lambda: len(assigned(c)) == 4)
        before = describe_raw(kbroker, group)
        kbroker.restart()
        after = describe_raw(kbroker, group)
        assert after["group_epoch"] == before["group_epoch"]
        assert after["members"] == before["members"]
        expected = fill(kbroker.bootstrap, topic, 4, 10)
        tally = Tally()
        # A fetch or offset lookup that raced the stop may report an error.
        transient = (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._TRANSPORT)
        poll_until([c], lambda: set(tally.seen) >= expected, on_msg=tally, transient=transient)
    finally:
        c.close()


# -- hand-made requests


def compact_str(w: Writer, s: str | None) -> Writer:
    if s is None:
        return w.uvarint(0)
    b = s.encode()
    return w.uvarint(len(b) + 1).raw(b)


def heartbeat_v0(
    group: str,
    member_id: str,
    epoch: int,
    topics: list[str] | None,
    assignor: str | None = None,
    instance_id: str | None = None,
    rebalance_timeout_ms: int = 30000,
    owned: list[tuple[bytes, list[int]]] | None = None,
) -> bytes:
    w = Writer()
    compact_str(w, group)
    compact_str(w, member_id)
    w.int32(epoch)
    compact_str(w, instance_id)
    compact_str(w, None)  # rack
    w.int32(rebalance_timeout_ms)
    if topics is None:
        w.uvarint(0)
    else:
        w.uvarint(len(topics) + 1)
        for t in topics:
            compact_str(w, t)
    compact_str(w, assignor)
    if owned is None:
        w.uvarint(0)
    else:
        w.uvarint(len(owned) + 1)
        for topic_id, parts in owned:
            w.raw(topic_id).uvarint(len(parts) + 1)
            for p in parts:
                w.int32(p)
            w.uvarint(0)
    w.uvarint(0)  # tagged fields
    return w.bytes()


def read_compact_str(r: Reader) -> str | None:
    n = r.uvarint()
    return None if n == 0 else r._take(n - 1).decode()


def heartbeat(conn, body: bytes) -> dict:
    cid = conn.send_request(consumer_group_heartbeat, 0, body, flexible_header=True)
    r = Reader(conn.recv_response(cid, flexible_header=True))
    out = {"throttle": r.int32(), "error": r.int16(), "message": read_compact_str(r)}
    out["member_id"] = read_compact_str(r)
    out["epoch"] = r.int32()
    out["interval"] = r.int32()
    assignment = []
    if r.int8() >= 0:
        for _ in range(r.uvarint() - 1):
            topic_id = r._take(16)
            parts = [r.int32() for _ in range(r.uvarint() - 1)]
            r.uvarint()
            assignment.append((topic_id, parts))
        r.uvarint()
    out["assignment"] = assignment
    return out


def describe_raw(kbroker, group: str) -> dict:
    """ConsumerGroupDescribe v0 by hand: epochs and members' epochs."""
    with kbroker.raw() as conn:
        w = Writer().uvarint(2)
        compact_str(w, group)
        w.boolean(False).uvarint(0)
        cid = conn.send_request(69, 0, w.bytes(), flexible_header=True)
        r = Reader(conn.recv_response(cid, flexible_header=True))
        r.int32()
        groups = []
        for _ in range(r.uvarint() - 1):
            g = {"error": r.int16(), "message": read_compact_str(r), "id": read_compact_str(r)}
            g["state"] = read_compact_str(r)
            g["group_epoch"], g["assignment_epoch"] = r.int32(), r.int32()
            g["assignor"] = read_compact_str(r)
            members = {}
            for _ in range(r.uvarint() - 1):
                member_id = read_compact_str(r)
                read_compact_str(r), read_compact_str(r)  # instance, rack
                epoch = r.int32()
                read_compact_str(r), read_compact_str(r)  # client id, host
                for _ in range(r.uvarint() - 1):
                    read_compact_str(r)
                read_compact_str(r)  # regex
                for _ in range(2):  # assignment, target assignment
                    for _ in range(r.uvarint() - 1):
                        r._take(16), read_compact_str(r)
                        [r.int32() for _ in range(r.uvarint() - 1)]
                        r.uvarint()
                    r.uvarint()
                r.uvarint()
                members[member_id] = epoch
            g["members"] = members
            r.int32()  # authorized operations
            r.uvarint()
            groups.append(g)
        return groups[0]


def test_consumer_group_heartbeat_v0_bad_input(kbroker):
    topic, group = "kip848-raw", "kip848-raw-g"
    create_topic(kbroker.bootstrap, topic, 2)
    with kbroker.raw() as conn:
        joined = heartbeat(conn, heartbeat_v0(group, "", 0, [topic]))
        assert joined["error"] == 0, joined
        assert joined["member_id"], "v0: the broker chooses the member id"
        assert joined["epoch"] >= 1
        assert joined["interval"] == heartbeat_interval_ms
        assert sorted(p for _, ps in joined["assignment"] for p in ps) == [0, 1]
        member, epoch = joined["member_id"], joined["epoch"]

        unknown = heartbeat(conn, heartbeat_v0(group, str(uuid.uuid4()), epoch, None))
        assert unknown["error"] == UNKNOWN_MEMBER_ID, unknown
        fenced = heartbeat(conn, heartbeat_v0(group, member, epoch + 7, None))
        assert fenced["error"] == FENCED_MEMBER_EPOCH, fenced
        # A second member: the first revokes one partition, then moves on to
        # the new epoch; its old epoch is then stale.
        second = heartbeat(conn, heartbeat_v0(group, "", 0, [topic]))
        assert second["error"] == 0 and second["epoch"] == epoch + 1, second
        [(topic_id, _)] = joined["assignment"]
        revoking = heartbeat(conn, heartbeat_v0(group, member, epoch, None, owned=[(topic_id, [0, 1])]))
        assert revoking["error"] == 0 and revoking["epoch"] == epoch, revoking
        [(_, kept)] = revoking["assignment"]
        assert len(kept) == 1, "one partition is being revoked"
        moved = heartbeat(conn, heartbeat_v0(group, member, epoch, None, owned=[(topic_id, kept)]))
        assert moved["error"] == 0 and moved["epoch"] == epoch + 1, moved
        stale = heartbeat(conn, heartbeat_v0(group, member, epoch, None))
        assert stale["error"] == FENCED_MEMBER_EPOCH, stale
        epoch = moved["epoch"]
        bad_assignor = heartbeat(conn, heartbeat_v0(group, "", 0, [topic], assignor="sticky"))
        assert bad_assignor["error"] == UNSUPPORTED_ASSIGNOR, bad_assignor
        assert "sticky" in bad_assignor["message"]
        no_subscription = heartbeat(conn, heartbeat_v0(group, "", 0, None))
        assert no_subscription["error"] == INVALID_REQUEST, no_subscription
        assert "SubscribedTopicNames" in no_subscription["message"]
        no_timeout = heartbeat(conn, heartbeat_v0(group, "", 0, [topic], rebalance_timeout_ms=-1))
        assert no_timeout["error"] == INVALID_REQUEST, no_timeout
        static = heartbeat(conn, heartbeat_v0(group, "s-1", 0, [topic], instance_id="inst"))
        assert static["error"] == 0, static
        taken = heartbeat(conn, heartbeat_v0(group, "s-2", 0, [topic], instance_id="inst"))
        assert taken["error"] == UNRELEASED_INSTANCE_ID, taken

        # The member is still fine after all that.
        ok = heartbeat(conn, heartbeat_v0(group, member, epoch, None))
        assert ok["error"] == 0 and ok["epoch"] >= epoch, ok
        left = heartbeat(conn, heartbeat_v0(group, member, -1, None))
        assert (left["error"], left["epoch"]) == (0, -1), left
        gone = heartbeat(conn, heartbeat_v0(group, member, ok["epoch"], None))
        assert gone["error"] == UNKNOWN_MEMBER_ID, gone
    kbroker.assert_alive()


def test_consumer_protocol_group_on_classic_id_is_refused(kbroker):
    topic, group = "kip848-mixed", "kip848-mixed-g"
    create_topic(kbroker.bootstrap, topic, 2)
    classic = Consumer(
        {
            "bootstrap.servers": kbroker.bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
        }
    )
    try:
        classic.subscribe([topic])
        poll_until([classic], lambda: len(assigned(classic)) == 2)
        with kbroker.raw() as conn:
            r = heartbeat(conn, heartbeat_v0(group, "", 0, [topic]))
        assert r["error"] == 69, r  # GROUP_ID_NOT_FOUND: "not a consumer group"
    finally:
        classic.close()


def test_consumer_protocol_admin_list_and_describe(kbroker):
    topic, group = "kip848-admin", "kip848-admin-g"
    create_topic(kbroker.bootstrap, topic, 4)
    members = [new_consumer(kbroker.bootstrap, group, **{"client.id": f"kip848-{i}"}) for i in range(2)]
    try:
        for c in members:
            c.subscribe([topic])
        poll_until(members, lambda: balanced(members, 2))
        admin = clients.admin(kbroker.bootstrap)
        listed = admin.list_consumer_groups(types={ConsumerGroupType.CONSUMER}).result(timeout=10)
        ids = {g.group_id: g for g in listed.valid}
        assert group in ids, ids
        assert ids[group].type == ConsumerGroupType.CONSUMER
        classic_only = admin.list_consumer_groups(types={ConsumerGroupType.CLASSIC}).result(timeout=10)
        assert group not in {g.group_id for g in classic_only.valid}
        d = admin.describe_consumer_groups([group])[group].result(timeout=10)
        assert str(d.state).endswith("STABLE"), d.state
        assert sorted(m.client_id for m in d.members) == ["kip848-0", "kip848-1"]
        for m in d.members:
            assert len(m.assignment.topic_partitions) == 2
            assert {tp.topic for tp in m.assignment.topic_partitions} == {topic}
            assert sorted(tp.partition for tp in m.target_assignment.topic_partitions) == sorted(
                tp.partition for tp in m.assignment.topic_partitions
            )
    finally:
        for c in members:
            c.close()


def test_offsets_partitions_are_loaded_at_start(kbroker):
    """Committed offsets of a group no request touched since the restart
    are listed right away: every offsets partition is replayed before READY."""
    topic, group = "eager-load", "eager-load-g"
    create_topic(kbroker.bootstrap, topic, 1)
    admin = clients.admin(kbroker.bootstrap)
    from confluent_kafka import ConsumerGroupTopicPartitions

    req = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 5)])
    admin.alter_consumer_group_offsets([req])[group].result(timeout=10)
    kbroker.restart()
    assert "groups loaded" in kbroker.log_tail()
    admin = clients.admin(kbroker.bootstrap)
    listed = admin.list_consumer_groups().result(timeout=10)
    assert group in {g.group_id for g in listed.valid}
