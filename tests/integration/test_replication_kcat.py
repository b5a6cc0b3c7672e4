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
import time
from collections import Counter

import clients
from test_cluster import LEADER_WAIT_S, leaders
from test_replication import cluster, create_rf3, topic_name  # noqa: F401

RECORDS_BEFORE = 100
RECORDS_AFTER = 100
KCAT_EXIT_WAIT_S = 90.0
# Longer than a leader move and a metadata refresh on a loaded machine.
MESSAGE_TIMEOUT_MS = 60_000


def kcat_version() -> str:
    return subprocess.run(["kcat", "-V"], capture_output=True, text=True, timeout=10).stdout


def test_kcat_librdkafka_2_0_2_producer_follows_a_leader_move_and_loses_nothing(cluster):
    assert "librdkafka 2.0.2" in kcat_version(), kcat_version()
    topic = topic_name()
    old_leader = create_rf3(cluster, topic, 1)[0]
    kcat = subprocess.Popen(
        [
            "kcat", "-b", cluster.bootstrap(), "-P", "-t", topic, "-p", "0",
            "-X", "acks=all",
            "-X", "enable.idempotence=true",
            "-X", f"message.timeout.ms={MESSAGE_TIMEOUT_MS}",
            "-X", "topic.metadata.refresh.interval.ms=1000",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert kcat.stdin is not None
        kcat.stdin.write(b"".join(b"v%05d\n" % i for i in range(RECORDS_BEFORE)))
        kcat.stdin.flush()
        # The first half is acknowledged by the old leader before it goes.
        clients.wait_for(
            "the first records written",
            lambda: clients.watermarks(cluster.bootstrap(old_leader), topic, 0)[1] >= RECORDS_BEFORE,
            timeout_s=LEADER_WAIT_S,
        )
        cluster.nodes[old_leader].stop()
        # The second half goes to whichever broker kcat finds leading now,
        # in small steps so some are in flight while it looks.
        for start in range(RECORDS_BEFORE, RECORDS_BEFORE + RECORDS_AFTER, 10):
            kcat.stdin.write(b"".join(b"v%05d\n" % i for i in range(start, start + 10)))
            kcat.stdin.flush()
            time.sleep(0.05)
        kcat.stdin.close()
        rc = kcat.wait(timeout=KCAT_EXIT_WAIT_S)
    finally:
        if kcat.poll() is None:
            kcat.kill()
            kcat.wait(timeout=10)
    stderr = kcat.stderr.read().decode(errors="replace") if kcat.stderr else ""
    assert rc == 0 and "Delivery failed" not in stderr and "ERROR" not in stderr, (rc, stderr[-3000:])

    live = [i for i in cluster.nodes if i != old_leader]
    md = cluster.wait_for(
        "a new leader",
        lambda md: leaders(md, topic)[0] in live,
        via=live[0],
        topics=[topic],
    )
    assert leaders(md, topic)[0] != old_leader
    total = RECORDS_BEFORE + RECORDS_AFTER
    got = clients.consume_all(cluster.bootstrap(*live), topic, 1, expect=total)
    counts = Counter(r.value for r in got)
    wanted = {b"v%05d" % i for i in range(total)}
    assert set(counts) == wanted, sorted(wanted ^ set(counts))[:10]
    assert all(n == 1 for n in counts.values()), [v for v, n in counts.items() if n > 1][:10]
    clients.assert_dense(got)
    # kcat kept each record in order across the move (one partition,
    # idempotent producer: no reordering on retry).
    assert [r.value for r in got] == sorted(wanted)
