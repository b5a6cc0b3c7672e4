"""Consumer groups with real clients: rebalances, committed offsets (also
across broker restarts), kcat -G, kafka-python, and the admin APIs."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from confluent_kafka import Consumer, ConsumerGroupState, KafkaError, KafkaException, TopicPartition

import clients
from clients import create_topic, produce_all

session_timeout_ms = 6000
rebalance_wait_s_max = 45.0


def group_consumer(bootstrap: str, group: str, **conf) -> Consumer:
    base = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": session_timeout_ms,
        "heartbeat.interval.ms": 500,
        "fetch.wait.max.ms": 100,
    }
    base.update(conf)
    return Consumer(base)


def poll_until(consumers: list[Consumer], done, timeout_s: float = rebalance_wait_s_max, on_msg=None) -> None:
    """Polls every consumer in turn until done() holds."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout_s}s; assignments: {[assigned(c) for c in consumers]}"
            )
        for c in consumers:
            m = c.poll(0.05)
            if m is None:
                continue
            if m.error() is not None:
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(m.error())
            if on_msg is not None:
                on_msg(c, m)


def assigned(c: Consumer) -> set[int]:
    return {tp.partition for tp in c.assignment()}


def fill(bootstrap: str, topic: str, partitions: int, per_partition: int) -> None:
    produce_all(
        bootstrap,
        topic,
        [(b"k", f"{p}-{i}".encode(), p) for p in range(partitions) for i in range(per_partition)],
    )


def test_two_confluent_consumers_split_then_one_takes_over(broker):
    topic, group = "g-split", "group-split"
    create_topic(broker.bootstrap, topic, 4)
    fill(broker.bootstrap, topic, 4, 10)
    c1 = group_consumer(broker.bootstrap, group)
    c2 = group_consumer(broker.bootstrap, group)
    try:
        c1.subscribe([topic])
        c2.subscribe([topic])
        poll_until(
            [c1, c2],
            lambda: len(assigned(c1)) == 2 and len(assigned(c2)) == 2,
        )
        assert assigned(c1) | assigned(c2) == {0, 1, 2, 3}
        c2.close()
        poll_until([c1], lambda: assigned(c1) == {0, 1, 2, 3})
    finally:
        c1.close()


def test_dead_member_partitions_move_after_session_timeout(broker):
    topic, group = "g-dead", "group-dead"
    create_topic(broker.bootstrap, topic, 4)
    # A consumer in its own process, killed with SIGKILL: no LeaveGroup.
    script = textwrap.dedent(
        f"""
        import sys, time
        from confluent_kafka import Consumer
        c = Consumer({{"bootstrap.servers": "{broker.bootstrap}", "group.id": "{group}",
                      "session.timeout.ms": {session_timeout_ms}, "heartbeat.interval.ms": 500}})
        c.subscribe(["{topic}"])
        while True:
            c.poll(0.1)
            if c.assignment():
                print("assigned", flush=True)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    c1 = group_consumer(broker.bootstrap, group)
    try:
        assert child.stdout.readline().strip() == "assigned"
        c1.subscribe([topic])
        poll_until([c1], lambda: len(assigned(c1)) == 2)
        child.kill()
        child.wait()
        killed_at = time.monotonic()
        poll_until([c1], lambda: assigned(c1) == {0, 1, 2, 3})
        took = time.monotonic() - killed_at
        assert took < session_timeout_ms / 1000 + 10, f"takeover took {took:.1f}s"
    finally:
        child.kill()
        c1.close()


def wait_port_released(host: str, port: int, timeout_s: float = 20.0) -> None:
    """After kill -9 the kernel tears down the dead broker's io_uring ring
    asynchronously; until then its listening socket (held by a pending
    accept) still completes handshakes, and a restart would refuse to bind."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
        except OSError:
            return
        time.sleep(0.1)
    raise AssertionError(f"{host}:{port} still accepts connections {timeout_s}s after kill -9")


def consume_and_commit(bootstrap: str, topic: str, group: str, count: int) -> list[tuple[int, int]]:
    """Consumes `count` records in the group, commits synchronously, closes."""
    c = group_consumer(bootstrap, group)
    seen: list[tuple[int, int]] = []
    try:
        c.subscribe([topic])
        poll_until([c], lambda: len(seen) >= count, on_msg=lambda _c, m: seen.append((m.partition(), m.offset())))
        c.commit(asynchronous=False)
    finally:
        c.close()
    return seen


def committed(bootstrap: str, topic: str, group: str, partitions: int) -> dict[int, int]:
    c = group_consumer(bootstrap, group)
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=20)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def test_committed_offsets_resume_after_consumer_restart(broker):
    topic, group = "g-resume", "group-resume"
    create_topic(broker.bootstrap, topic, 2)
    fill(broker.bootstrap, topic, 2, 50)
    first = consume_and_commit(broker.bootstrap, topic, group, 100)
    assert len(set(first)) == 100
    fill(broker.bootstrap, topic, 2, 5)
    second = consume_and_commit(broker.bootstrap, topic, group, 10)
    assert sorted(second) == [(p, o) for p in range(2) for o in range(50, 55)], second
    assert committed(broker.bootstrap, topic, group, 2) == {0: 55, 1: 55}


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_committed_offsets_survive_broker_restart(broker, how):
    topic, group = f"g-restart-{how}", f"group-restart-{how}"
    create_topic(broker.bootstrap, topic, 3)
    fill(broker.bootstrap, topic, 3, 20)
    consume_and_commit(broker.bootstrap, topic, group, 60)
    assert committed(broker.bootstrap, topic, group, 3) == {0: 20, 1: 20, 2: 20}
    if how == "kill9":
        broker.kill9()
        wait_port_released(broker.host, broker.port)
        broker.start()
    else:
        broker.restart()
    assert committed(broker.bootstrap, topic, group, 3) == {0: 20, 1: 20, 2: 20}
    fill(broker.bootstrap, topic, 3, 2)
    resumed = consume_and_commit(broker.bootstrap, topic, group, 6)
    assert sorted(resumed) == [(p, o) for p in range(3) for o in (20, 21)]


def test_kcat_balanced_consumer(broker):
    topic, group = "g-kcat", "group-kcat"
    create_topic(broker.bootstrap, topic, 3)
    fill(broker.bootstrap, topic, 3, 10)
    out = subprocess.run(
        ["kcat", "-b", broker.bootstrap, "-G", group, "-o", "beginning", "-e", "-f", "%p %o\n",
         "-X", "session.timeout.ms=6000", topic],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert out.returncode == 0, out.stderr
    got = sorted(tuple(map(int, line.split())) for line in out.stdout.splitlines() if line.strip())
    assert got == [(p, o) for p in range(3) for o in range(10)]
    # kcat commits automatically: the group resumes at the end.
    deadline = time.monotonic() + 20
    while committed(broker.bootstrap, topic, group, 3) != {0: 10, 1: 10, 2: 10}:
        assert time.monotonic() < deadline, committed(broker.bootstrap, topic, group, 3)
        time.sleep(0.5)


def test_kafka_python_group_consumer(broker):
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition as KTP

    topic, group = "g-kpy", "group-kpy"
    create_topic(broker.bootstrap, topic, 2)
    fill(broker.bootstrap, topic, 2, 25)
    c = KafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=10000,
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=500,
    )
    try:
        got = []
        deadline = time.monotonic() + 60
        while len(got) < 50 and time.monotonic() < deadline:
            for records in c.poll(timeout_ms=500).values():
                got.extend((r.partition, r.offset) for r in records)
        assert sorted(got) == [(p, o) for p in range(2) for o in range(25)]
        c.commit()
        assert c.committed(KTP(topic, 0)) == 25 and c.committed(KTP(topic, 1)) == 25
    finally:
        c.close()
    assert committed(broker.bootstrap, topic, group, 2) == {0: 25, 1: 25}


def test_admin_list_describe_alter_delete_groups(broker):
    from confluent_kafka import ConsumerGroupTopicPartitions

    topic, group = "g-admin", "group-admin"
    create_topic(broker.bootstrap, topic, 2)
    fill(broker.bootstrap, topic, 2, 5)
    admin = clients.admin(broker.bootstrap)
    c = group_consumer(broker.bootstrap, group)
    try:
        c.subscribe([topic])
        poll_until([c], lambda: assigned(c) == {0, 1})
        c.commit(offsets=[TopicPartition(topic, 0, 3), TopicPartition(topic, 1, 4)], asynchronous=False)
        listed = admin.list_consumer_groups(request_timeout=20).result()
        ours = [g for g in listed.valid if g.group_id == group]
        assert ours and ours[0].state == ConsumerGroupState.STABLE, listed.valid
        desc = admin.describe_consumer_groups([group], request_timeout=20)[group].result()
        assert desc.state == ConsumerGroupState.STABLE
        assert len(desc.members) == 1
        member = desc.members[0]
        assert {tp.partition for tp in member.assignment.topic_partitions} == {0, 1}
        # A live group cannot be deleted.
        with pytest.raises(KafkaException) as e:
            admin.delete_consumer_groups([group], request_timeout=20)[group].result()
        assert e.value.args[0].code() == KafkaError.NON_EMPTY_GROUP
    finally:
        c.close()
    req = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0), TopicPartition(topic, 1)])]
    offsets = admin.list_consumer_group_offsets(req, request_timeout=20)[group].result()
    assert {tp.partition: tp.offset for tp in offsets.topic_partitions} == {0: 3, 1: 4}
    # --reset-offsets --to-earliest, through AlterConsumerGroupOffsets (OffsetCommit).
    alter = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])]
    admin.alter_consumer_group_offsets(alter, request_timeout=20)[group].result()
    assert committed(broker.bootstrap, topic, group, 2) == {0: 0, 1: 0}
    desc = admin.describe_consumer_groups([group], request_timeout=20)[group].result()
    assert desc.state == ConsumerGroupState.EMPTY
    admin.delete_consumer_groups([group], request_timeout=20)[group].result()
    listed = admin.list_consumer_groups(request_timeout=20).result()
    assert group not in {g.group_id for g in listed.valid}
    assert committed(broker.bootstrap, topic, group, 2) == {0: -1001, 1: -1001}


def test_aiokafka_group_consumer(broker):
    import asyncio

    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition as ATP

    topic, group = "g-aio", "group-aio"
    create_topic(broker.bootstrap, topic, 2)
    fill(broker.bootstrap, topic, 2, 20)

    async def run() -> tuple[list, dict]:
        c = AIOKafkaConsumer(
            topic,
            bootstrap_servers=broker.bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=500,
        )
        await c.start()
        try:
            got = []
            deadline = time.monotonic() + 60
            while len(got) < 40 and time.monotonic() < deadline:
                batches = await c.getmany(timeout_ms=500)
                for records in batches.values():
                    got.extend((r.partition, r.offset) for r in records)
            await c.commit()
            return got, {p: await c.committed(ATP(topic, p)) for p in range(2)}
        finally:
            await c.stop()

    got, offsets = asyncio.run(run())
    assert sorted(got) == [(p, o) for p in range(2) for o in range(20)]
    assert offsets == {0: 20, 1: 20}


def test_kafkajs_group_consumer(broker):
    import json
    import shutil
    from pathlib import Path

    js_dir = Path(__file__).resolve().parents[1] / "js"
    node = shutil.which("node")
    assert node, "node not installed"
    topic, group = "g-kafkajs", "group-kafkajs"
    create_topic(broker.bootstrap, topic, 3)
    fill(broker.bootstrap, topic, 3, 10)
    out = subprocess.run(
        [node, str(js_dir / "group.js"), broker.bootstrap, topic, group, "30"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert sorted(map(tuple, result["records"])) == [(p, o) for p in range(3) for o in range(10)]
    assert result["committed"] == {"0": 10, "1": 10, "2": 10}


def test_static_member_restart_gets_partitions_back_without_rebalance(broker):
    topic, group = "g-static", "group-static"
    create_topic(broker.bootstrap, topic, 4)
    revoked: list[list[int]] = []

    def on_revoke(_c, parts):
        revoked.append([p.partition for p in parts])

    a = group_consumer(broker.bootstrap, group, **{"group.instance.id": "static-a"})
    b = group_consumer(broker.bootstrap, group, **{"group.instance.id": "static-b"})
    try:
        a.subscribe([topic])
        b.subscribe([topic], on_revoke=on_revoke)
        poll_until([a, b], lambda: len(assigned(a)) == 2 and len(assigned(b)) == 2)
        a_parts = assigned(a)
        revoked.clear()
        a.close()  # a static member sends no LeaveGroup
        a = group_consumer(broker.bootstrap, group, **{"group.instance.id": "static-a"})
        a.subscribe([topic])
        poll_until([a, b], lambda: assigned(a) == a_parts)
        # Wait past a few heartbeats: b must not have been rebalanced.
        end = time.monotonic() + 3
        poll_until([a, b], lambda: time.monotonic() > end)
        assert assigned(b) == {0, 1, 2, 3} - a_parts
        assert revoked == [], f"b was rebalanced: revoked {revoked}"
    finally:
        a.close()
        b.close()


def test_cooperative_sticky_revokes_only_moved_partitions(broker):
    topic, group = "g-coop", "group-coop"
    create_topic(broker.bootstrap, topic, 4)
    conf = {"partition.assignment.strategy": "cooperative-sticky"}
    revoked: list[int] = []

    def on_revoke(_c, parts):
        revoked.extend(p.partition for p in parts)

    c1 = group_consumer(broker.bootstrap, group, **conf)
    c2 = group_consumer(broker.bootstrap, group, **conf)
    try:
        c1.subscribe([topic], on_revoke=on_revoke)
        poll_until([c1], lambda: assigned(c1) == {0, 1, 2, 3})
        c2.subscribe([topic])
        poll_until([c1, c2], lambda: len(assigned(c1)) == 2 and len(assigned(c2)) == 2)
        assert sorted(revoked) == sorted(assigned(c2)), f"revoked {revoked}, moved {assigned(c2)}"
    finally:
        c1.close()
        c2.close()


# ------------------------------------------------- bad input, raw protocol
# Non-flexible versions: JoinGroup v2 (no MEMBER_ID_REQUIRED round),
# SyncGroup v2, Heartbeat v2, OffsetCommit v2.

from kafka_raw import Reader, Writer  # noqa: E402

JOIN_GROUP, HEARTBEAT, SYNC_GROUP, OFFSET_COMMIT = 11, 12, 14, 8


def raw_join(c, group: str, protocols: list[str], member_id: str = "", session_ms: int = 10000) -> dict:
    w = Writer().string(group).int32(session_ms).int32(30000).string(member_id).string("consumer")
    w.int32(len(protocols))
    for p in protocols:
        w.string(p).bytes_(b"\x00\x00\x00\x00\x00\x00")
    r = Reader(c.roundtrip(JOIN_GROUP, 2, w.bytes()))
    out = {"throttle": r.int32(), "error": r.int16(), "generation": r.int32()}
    out.update(protocol=r.string(), leader=r.string(), member_id=r.string())
    return out


def raw_sync(c, group: str, generation: int, member_id: str) -> int:
    w = Writer().string(group).int32(generation).string(member_id).int32(1).string(member_id).bytes_(b"")
    r = Reader(c.roundtrip(SYNC_GROUP, 2, w.bytes()))
    r.int32()
    return r.int16()


def heartbeat_body(group: str, generation: int, member_id: str) -> bytes:
    return Writer().string(group).int32(generation).string(member_id).bytes()


def test_bad_input_group_requests_get_error_codes(broker):
    topic = "g-bad"
    create_topic(broker.bootstrap, topic, 1)
    with broker.raw() as c:
        assert raw_join(c, "bad-g", [])["error"] == 23  # INCONSISTENT_GROUP_PROTOCOL
        assert raw_join(c, "bad-g", ["range"], session_ms=100)["error"] == 26  # INVALID_SESSION_TIMEOUT
        assert raw_join(c, "", ["range"])["error"] == 24  # INVALID_GROUP_ID
        assert raw_join(c, "bad-g", ["range"], member_id="nobody")["error"] == 25  # UNKNOWN_MEMBER_ID
        big = "x" * 10_000
        j = raw_join(c, big, ["range"])
        assert (j["error"], j["generation"], j["leader"]) == (0, 1, j["member_id"])
        assert raw_sync(c, big, j["generation"] - 1, j["member_id"]) == 22  # ILLEGAL_GENERATION
        assert raw_sync(c, big, j["generation"], j["member_id"]) == 0
        # Commit for a topic that does not exist, and a real one.
        w = Writer().string(big).int32(j["generation"]).string(j["member_id"]).int64(-1).int32(2)
        w.string("no-such-topic").int32(1).int32(0).int64(5).string("")
        w.string(topic).int32(1).int32(0).int64(7).string("meta")
        r = Reader(c.roundtrip(OFFSET_COMMIT, 2, w.bytes()))
        codes = {}
        for _ in range(r.int32()):
            name = r.string()
            for _ in range(r.int32()):
                partition = r.int32()
                codes[(name, partition)] = r.int16()
        assert codes == {("no-such-topic", 0): 3, (topic, 0): 0}
        # A heartbeat storm from 1,000 unknown members, pipelined; then the
        # real member still heartbeats fine.
        ids = [c.send_request(HEARTBEAT, 2, heartbeat_body(big, 1, f"fake-{i}")) for i in range(1000)]
        for cid in ids:
            r = Reader(c.recv_response(cid))
            r.int32()
            assert r.int16() == 25
        r = Reader(c.roundtrip(HEARTBEAT, 2, heartbeat_body(big, j["generation"], j["member_id"])))
        r.int32()
        assert r.int16() == 0
    broker.assert_alive()


# A group member in its own process (so it can be SIGKILLed): consumes in
# batches, prints "M p o" for every record it processed, commits the batch
# synchronously, then prints "C p next" for each committed partition, and
# "A p,p,..." whenever its assignment changes. Processing a batch with an
# offset >= `slow_from` takes `processing_s` (between "M" and the commit). Records of partitions revoked
# inside consume() are dropped unprocessed (their new owner reads them).
member_script = textwrap.dedent(
    """
    import sys
    from confluent_kafka import Consumer, TopicPartition
    import time
    bootstrap, group, topic, session_ms = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    processing_s, slow_from = float(sys.argv[5]), int(sys.argv[6])
    owned = set()
    def say(text):
        sys.stdout.write(text)
        sys.stdout.flush()
    def on_assign(c, tps):
        owned.clear(); owned.update(tp.partition for tp in tps)
        say("A " + ",".join(str(p) for p in sorted(owned)) + "\\n")
    def on_revoke(c, tps):
        owned.difference_update(tp.partition for tp in tps)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "session.timeout.ms": session_ms, "heartbeat.interval.ms": 500,
                  "fetch.wait.max.ms": 100})
    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    while True:
        batch = [m for m in c.consume(num_messages=200, timeout=0.1) if m.error() is None]
        batch = [m for m in batch if m.partition() in owned]
        if not batch:
            continue
        say("".join(f"M {m.partition()} {m.offset()}\\n" for m in batch))
        if any(m.offset() >= slow_from for m in batch):
            time.sleep(processing_s)
        nxt = {}
        for m in batch:
            nxt[m.partition()] = max(nxt.get(m.partition(), 0), m.offset() + 1)
        try:
            c.commit(offsets=[TopicPartition(topic, p, o) for p, o in nxt.items()], asynchronous=False)
        except Exception as e:
            say(f"F {e}\\n")
            continue
        say("".join(f"C {p} {o}\\n" for p, o in nxt.items()))
    """
)


class Member:
    """A member_script process; a thread collects what it prints."""

    def __init__(
        self, bootstrap: str, group: str, topic: str, processing_s: float = 0.0, slow_from: int = 0
    ) -> None:
        import threading

        self.proc = subprocess.Popen(
            [sys.executable, "-c", member_script, bootstrap, group, topic, str(session_timeout_ms), str(processing_s), str(slow_from)],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lock = threading.Lock()
        self.seen: list[tuple[int, int]] = []
        self.commits: dict[int, int] = {}
        self.failures: list[str] = []
        self.assignment: set[int] = set()
        self.assigned_at = 0.0
        self.kill_after: tuple[int, int] | None = None  # (records seen, offset floor)
        self.killed_at: float | None = None
        self.past_floor = 0
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self) -> None:
        for line in self.proc.stdout:
            kind, _, rest = line.rstrip("\n").partition(" ")
            with self.lock:
                if kind == "M":
                    p, o = map(int, rest.split())
                    self.seen.append((p, o))
                    floor = self.kill_after
                    if floor is not None and self.killed_at is None and o >= floor[1]:
                        self.past_floor += 1
                        if self.past_floor >= floor[0]:
                            self.proc.send_signal(signal.SIGKILL)
                            self.killed_at = time.monotonic()
                elif kind == "C":
                    p, o = map(int, rest.split())
                    self.commits[p] = o
                elif kind == "A":
                    self.assignment = {int(p) for p in rest.split(",") if p}
                    self.assigned_at = time.monotonic()
                elif kind == "F":
                    self.failures.append(rest)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def wait_for(what: str, cond, timeout_s: float = rebalance_wait_s_max, detail=lambda: "") -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; {detail()}")
        time.sleep(0.05)


def test_three_members_exactly_once_then_sigkill_takeover_resumes_from_commits(broker):
    topic, group, partitions = "g-three", "group-three", 6
    first_per_partition, second_per_partition = 10_000, 5_000
    create_topic(broker.bootstrap, topic, partitions)
    # In the second round the victim takes 0.2 s per batch between processing
    # and committing, so the kill lands in that window: an uncommitted tail.
    members = [
        Member(broker.bootstrap, group, topic, processing_s=p, slow_from=first_per_partition)
        for p in (0.2, 0, 0)
    ]
    victim, survivors = members[0], members[1:]

    def state() -> str:
        return "; ".join(
            f"member {i}: assigned {sorted(m.assignment)} seen {len(m.seen)} failures {m.failures[:3]}"
            for i, m in enumerate(members)
        )

    try:
        # Records go in once the group is stable with 2 partitions each: no
        # rebalance happens while the first 60,000 are consumed.
        wait_for(
            "a stable 3-way split",
            lambda: all(len(m.assignment) == 2 for m in members)
            and set().union(*(m.assignment for m in members)) == set(range(partitions)),
            detail=state,
        )
        fill(broker.bootstrap, topic, partitions, first_per_partition)
        total = partitions * first_per_partition
        wait_for("60,000 records consumed", lambda: sum(len(m.seen) for m in members) >= total, detail=state)
        time.sleep(0.5)  # anything extra (a duplicate) would show up now
        everything = [r for m in members for r in m.seen]
        assert len(everything) == total, f"{len(everything) - total} records consumed twice; {state()}"
        assert set(everything) == {(p, o) for p in range(partitions) for o in range(first_per_partition)}
        assert all(len(m.seen) == 2 * first_per_partition for m in members), state()
        assert not any(m.failures for m in members), state()
        assert {p: o for m in members for p, o in m.commits.items()} == {
            p: first_per_partition for p in range(partitions)
        }

        # Second round: the victim is SIGKILLed (by its reader thread, the
        # moment it has printed 1,000 of the new records), possibly between
        # processing and committing a batch.
        victim.kill_after = (1_000, first_per_partition)
        produce_all(
            broker.bootstrap,
            topic,
            [(b"k", f"{p}-{i}".encode(), p) for i in range(second_per_partition) for p in range(partitions)],
        )
        wait_for("the victim to be killed", lambda: victim.killed_at is not None, detail=state)
        victim.proc.wait()
        victim_partitions = set(victim.assignment)
        wait_for(
            "the survivors to take over every partition",
            lambda: set().union(*(m.assignment for m in survivors)) == set(range(partitions))
            and all(m.assigned_at > victim.killed_at for m in survivors),
            detail=state,
        )
        took = max(m.assigned_at for m in survivors) - victim.killed_at
        # A SIGKILLed member is only noticed when its session times out; the
        # rebalance that follows takes a heartbeat interval or two.
        assert took < session_timeout_ms / 1000 + 3, f"takeover took {took:.1f}s"

        total = partitions * (first_per_partition + second_per_partition)
        expected = {(p, o) for p in range(partitions) for o in range(first_per_partition + second_per_partition)}
        wait_for(
            "every record consumed after the takeover",
            lambda: {r for m in members for r in m.seen} >= expected,
            detail=state,
        )
        time.sleep(0.5)
        with victim.lock:
            victim_seen = list(victim.seen)
            victim_commits = dict(victim.commits)
        assert {r for m in members for r in m.seen} == expected  # no gaps, nothing invented
        survivor_seen = [r for m in survivors for r in m.seen]
        assert len(survivor_seen) == len(set(survivor_seen)), "survivors consumed a record twice"
        assert len(victim_seen) == len(set(victim_seen)), "the victim consumed a record twice"
        duplicates = set(victim_seen) & set(survivor_seen)
        # At-least-once: only the victim's processed-but-uncommitted tail is
        # read again, from its last committed offset on.
        assert duplicates, "the victim died with nothing uncommitted: the tail path was not exercised"
        for p, o in duplicates:
            assert p in victim_partitions, f"duplicate ({p}, {o}) from a partition the victim did not own"
            assert o >= victim_commits[p], f"duplicate ({p}, {o}) below the victim's last commit {victim_commits[p]}"
        assert not any(m.failures for m in survivors), state()
        print(f"takeover {took:.1f}s, {len(duplicates)} duplicates from the victim's uncommitted tail")
    finally:
        for m in members:
            m.stop()


def test_offsets_of_an_empty_group_expire_after_retention(broker_factory):
    # Kafka's offsets.retention.minutes, shortened with the ms override for tests.
    retention_ms = 3000
    broker = broker_factory(
        extra_args=["--offsets-retention-ms", str(retention_ms), "--offsets-retention-check-ms", "200"]
    )
    topic = "g-retention"
    create_topic(broker.bootstrap, topic, 2)
    fill(broker.bootstrap, topic, 2, 10)
    # "gone": consumed, committed, and its only member left: Empty.
    consume_and_commit(broker.bootstrap, topic, "group-gone", 20)
    left_at = time.monotonic()
    assert committed(broker.bootstrap, topic, "group-gone", 2) == {0: 10, 1: 10}
    # "live": keeps a member (librdkafka heartbeats in the background).
    live = group_consumer(broker.bootstrap, "group-live")
    try:
        live.subscribe([topic])
        seen: list = []
        poll_until([live], lambda: len(seen) >= 20, on_msg=lambda _c, m: seen.append(m))
        live.commit(asynchronous=False)
        deadline = time.monotonic() + 20
        while committed(broker.bootstrap, topic, "group-gone", 2) != {0: -1001, 1: -1001}:
            assert time.monotonic() < deadline, "offsets of the empty group did not expire"
            time.sleep(0.2)
        took = time.monotonic() - left_at
        assert took >= retention_ms / 1000 - 0.5, f"expired after {took:.1f}s, before the retention"
        time.sleep(1.5 * retention_ms / 1000)
        assert committed(broker.bootstrap, topic, "group-live", 2) == {0: 10, 1: 10}, "a group with members keeps them"
    finally:
        live.close()
    # The tombstones are durable: the expired offsets stay gone after a restart.
    broker.restart()
    assert committed(broker.bootstrap, topic, "group-gone", 2) == {0: -1001, 1: -1001}


def test_join_group_initial_rebalance_delay_default_one_generation(broker_factory):
    """With Kafka's default group.initial.rebalance.delay.ms (3 s), two
    consumers joining a new group within the delay share the first
    generation: each is assigned once and nothing is revoked."""
    broker = broker_factory(initial_rebalance_delay_ms=None)
    topic, group = "g-initial-delay", "group-initial-delay"
    create_topic(broker.bootstrap, topic, 4)
    events: dict[str, list[str]] = {"c1": [], "c2": []}

    def callbacks(name: str) -> dict:
        return {
            "on_assign": lambda c, ps: events[name].append(f"assign {len(ps)}"),
            "on_revoke": lambda c, ps: events[name].append(f"revoke {len(ps)}"),
        }

    c1 = group_consumer(broker.bootstrap, group)
    c2 = group_consumer(broker.bootstrap, group)
    try:
        c1.subscribe([topic], **callbacks("c1"))
        started = time.monotonic()
        c1.poll(0.5)
        c2.subscribe([topic], **callbacks("c2"))
        poll_until([c1, c2], lambda: len(assigned(c1)) == 2 and len(assigned(c2)) == 2)
        waited_s = time.monotonic() - started
        end = time.monotonic() + 2
        while time.monotonic() < end:  # a second rebalance would show here
            c1.poll(0.05)
            c2.poll(0.05)
        assert events == {"c1": ["assign 2"], "c2": ["assign 2"]}, events
        assert waited_s >= 2.5, f"the first join waited the initial delay, not {waited_s:.1f} s"
    finally:
        c1.close()
        c2.close()
