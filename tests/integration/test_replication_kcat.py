"""An old librdkafka (2.0.2, Debian's kcat 1.7.1) producing through a
leader move: the partition's leader is stopped (SIGTERM: controlled
shutdown moves its leadership to an ISR member) while kcat produces with
acks=all and idempotence. kcat must see NOT_LEADER_OR_FOLLOWER (or the
closed connection), refresh its metadata and follow the new leader, and
every record it acknowledged must come back exactly once, at dense
offsets. librdkafka 2.0.2 negotiates ApiVersions and picks Produce and
InitProducerId versions differently from the librdkafka in
confluent-kafka; this guards that path.
"""

from __future__ import annotations

import subprocess
from collections import Counter

import clients
from test_cluster import LEADER_WAIT_S, leaders
from test_replication import cluster, create_rf3, topic_name  # noqa: F401

RECORDS = 2_000
# The leader is stopped once this many are acknowledged, with most still
# to come.
RECORDS_BEFORE_MOVE = 100
KCAT_EXIT_WAIT_S = 120.0
# Longer than a leader move and a metadata refresh on a loaded machine.
MESSAGE_TIMEOUT_MS = 60_000


def kcat_version() -> str:
    return subprocess.run(["kcat", "-V"], capture_output=True, text=True, timeout=10).stdout


def test_kcat_librdkafka_2_0_2_producer_follows_a_leader_move_and_loses_nothing(cluster):
    assert "librdkafka 2.0.2" in kcat_version(), kcat_version()
    topic = topic_name()
    old_leader = create_rf3(cluster, topic, 1)[0]
    # kcat 1.7.1 reads stdin in large blocks, so the records are all given
    # at once and kcat is slowed instead: one message queued at a time,
    # each acks=all, so it is still producing when the leader goes.
    kcat = subprocess.Popen(
        [
            "kcat", "-b", cluster.bootstrap(), "-P", "-t", topic, "-p", "0",
            "-X", "acks=all",
            "-X", "enable.idempotence=true",
            "-X", "queue.buffering.max.messages=1",
            "-X", "linger.ms=0",
            "-X", f"message.timeout.ms={MESSAGE_TIMEOUT_MS}",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert kcat.stdin is not None
        kcat.stdin.write(b"".join(b"v%05d\n" % i for i in range(RECORDS)))
        kcat.stdin.close()
        seen = {"hw": 0}

        def some_written() -> bool:
            seen["hw"] = clients.watermarks(cluster.bootstrap(old_leader), topic, 0)[1]
            return seen["hw"] >= RECORDS_BEFORE_MOVE

        try:
            clients.wait_for("the first records written", some_written, timeout_s=LEADER_WAIT_S)
        except AssertionError:
            kcat.kill()
            _, err = kcat.communicate(timeout=10)
            raise AssertionError(f"kcat wrote too little; its stderr: {err.decode(errors='replace')[-3000:]}")
        # The move must happen mid-stream for the test to mean anything.
        assert seen["hw"] < RECORDS and kcat.poll() is None, f"kcat finished before the move ({seen})"
        cluster.nodes[old_leader].stop()
        rc = kcat.wait(timeout=KCAT_EXIT_WAIT_S)
    finally:
        if kcat.poll() is None:
            kcat.kill()
            kcat.wait(timeout=10)
    stderr = kcat.stderr.read().decode(errors="replace") if kcat.stderr else ""
    # Transport errors to the stopped broker are expected (kcat prints
    # them); a record not delivered is not.
    assert rc == 0 and "Delivery failed" not in stderr, (rc, stderr[-3000:])

    live = [i for i in cluster.nodes if i != old_leader]
    md = cluster.wait_for(
        "a new leader",
        lambda md: leaders(md, topic)[0] in live,
        via=live[0],
        topics=[topic],
    )
    assert leaders(md, topic)[0] != old_leader
    total = RECORDS
    got = clients.consume_all(cluster.bootstrap(*live), topic, 1, expect=total)
    counts = Counter(r.value for r in got)
    wanted = {b"v%05d" % i for i in range(total)}
    assert set(counts) == wanted, sorted(wanted ^ set(counts))[:10]
    assert all(n == 1 for n in counts.values()), [v for v, n in counts.items() if n > 1][:10]
    clients.assert_dense(got)
    # kcat kept each record in order across the move (one partition,
    # idempotent producer: no reordering on retry).
    assert [r.value for r in got] == sorted(wanted)
