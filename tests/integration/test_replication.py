"""Partition replication (issue 21) on a three-node cluster of real
processes: replication factor 3, min.insync.replicas 2, acks=all.

Each test checks what a user relies on: every acknowledged record is on
the followers too (a follower that becomes leader serves it), a leader
SIGKILLed under load loses no acknowledged record and an idempotent
producer writes none twice, a returning broker catches up and rejoins the
ISR, and acks=all is refused (NOT_ENOUGH_REPLICAS) when too few replicas
are in sync while acks=1 still works.
"""

from __future__ import annotations

import time
import urllib.request
import uuid

import pytest
from confluent_kafka import KafkaException, Producer

import clients
import kafka_raw
from test_cluster import LEADER_WAIT_S, SESSION_TIMEOUT_MS, Cluster, leaders

# replica.lag.time.max.ms for the tests: a follower not caught up this long
# leaves the ISR (Kafka's default is 30 s; the tests cannot wait that long).
REPLICA_LAG_MS = 3_000
NOT_ENOUGH_REPLICAS = 19


@pytest.fixture
def cluster(broker_factory) -> Cluster:
    return Cluster(
        broker_factory,
        extra_args=["--replica-lag-time-max-ms", str(REPLICA_LAG_MS)],
    ).start()


def topic_name() -> str:
    return f"repl-{uuid.uuid4().hex[:8]}"


def isr(md: dict, topic: str) -> dict[int, list[int]]:
    [t] = [t for t in md["topics"] if t["name"] == topic]
    return {p["partition"]: sorted(p["isr"]) for p in t["partitions"]}


def kill_follower_out_of_isr(cluster: Cluster, topic: str, leader: int, follower: int) -> None:
    """SIGKILL `follower` and wait until partition 0's leader dropped it
    from the ISR (fenced, or lagging past replica.lag.time.max.ms)."""
    cluster.nodes[follower].kill9()
    cluster.wait_for(
        "the dead follower out of the ISR",
        lambda md: follower not in isr(md, topic)[0],
        via=leader,
        topics=[topic],
        timeout_s=SESSION_TIMEOUT_MS / 1000 + LEADER_WAIT_S,
    )


def create_rf3(cluster: Cluster, topic: str, partitions: int, min_insync: int = 2) -> dict[int, int]:
    clients.create_topic(
        cluster.bootstrap(1),
        topic,
        partitions,
        config={"min.insync.replicas": str(min_insync)},
        replication_factor=3,
    )
    md = cluster.wait_for(
        "every partition led with three in sync",
        lambda md: all(v == [1, 2, 3] for v in isr(md, topic).values())
        and -1 not in leaders(md, topic).values(),
        via=1,
        topics=[topic],
    )
    return leaders(md, topic)


def test_replication_rf3_acks_all_records_survive_leader_sigkill_exactly_once(cluster):
    topic = topic_name()
    placed = create_rf3(cluster, topic, 1)
    leader = placed[0]
    survivor = next(i for i in cluster.nodes if i != leader)
    first = [(f"k{i}".encode(), f"a{i}".encode(), 0) for i in range(300)]
    clients.produce_all(cluster.bootstrap(), topic, first, acks="all", **{"enable.idempotence": True})

    cluster.nodes[leader].kill9()
    md = cluster.wait_for(
        "another ISR member leads",
        lambda md: leaders(md, topic)[0] not in (-1, leader),
        via=survivor,
        topics=[topic],
        timeout_s=SESSION_TIMEOUT_MS / 1000 + LEADER_WAIT_S,
    )
    new_leader = leaders(md, topic)[0]
    assert leader not in isr(md, topic)[0], md
    # acks=all goes on with two of three in sync (min.insync.replicas=2)
    second = [(f"k{i}".encode(), f"b{i}".encode(), 0) for i in range(300, 500)]
    live = cluster.bootstrap(*(i for i in cluster.nodes if i != leader))
    clients.produce_all(live, topic, second, acks="all", **{"enable.idempotence": True})

    got = clients.consume_all(cluster.bootstrap(new_leader), topic, 1, expect=len(first) + len(second))
    values = [r.value for r in got]
    assert len(values) == len(set(values)), "a record was written twice"
    assert sorted(values) == sorted(v for _, v, _ in first + second)
    offsets = [r.offset for r in got]
    assert offsets == list(range(len(offsets))), "offsets are dense from 0"

    # the killed broker comes back, catches up and rejoins the ISR
    cluster.nodes[leader].start()
    cluster.wait_for(
        "the returning broker back in the ISR",
        lambda md: isr(md, topic)[0] == [1, 2, 3],
        via=survivor,
        topics=[topic],
        timeout_s=LEADER_WAIT_S,
    )


def test_replication_rf3_min_insync_refuses_acks_all_but_not_acks_1(cluster):
    topic = topic_name()
    placed = create_rf3(cluster, topic, 1, min_insync=3)
    leader = placed[0]
    follower = next(i for i in cluster.nodes if i != leader)
    with cluster.nodes[leader].raw() as c:
        ok = c.produce(topic, 0, kafka_raw.record_batch_v2([(b"k", b"all-three")]), acks=-1)
    assert ok["error_code"] == 0, ok

    kill_follower_out_of_isr(cluster, topic, leader, follower)
    with cluster.nodes[leader].raw() as c:
        refused = c.produce(topic, 0, kafka_raw.record_batch_v2([(b"k", b"two")]), acks=-1)
        assert refused["error_code"] == NOT_ENOUGH_REPLICAS, refused
        one = c.produce(topic, 0, kafka_raw.record_batch_v2([(b"k", b"acks-1")]), acks=1)
        assert one["error_code"] == 0, one
    # the leader's /metrics shows the partition under-replicated
    text = urllib.request.urlopen(f"{cluster.nodes[leader].admin_url}/metrics", timeout=10).read().decode()
    labels = f'topic="{topic}",partition="0",shard="0"'
    assert f"corestream_partition_under_replicated{{{labels}}} 1" in text, text[-2000:]
    assert f'corestream_replica_lag_offsets{{{labels},replica="{follower}"}}' in text


# The high-watermark checkpoint is written this often (HW_CHECKPOINT_INTERVAL
# in src/replication/hw_checkpoint.rs).
HW_CHECKPOINT_INTERVAL_S = 5.0


def checkpointed_hw(node, topic: str, partition: int) -> int | None:
    """The high watermark in a broker's replication-offset-checkpoint (one
    shard: file .0), or None when it has no entry for the partition."""
    path = node.data_dir / "replication-offset-checkpoint.0"
    if not path.exists():
        return None
    lines = path.read_text().splitlines()
    for line in lines[2:]:
        name, index, hw, _topic_id = line.split(" ")
        if name == topic and int(index) == partition:
            return int(hw)
    return None


def test_replication_hw_checkpoint_restarted_cluster_serves_committed_records_at_once(cluster):
    topic = topic_name()
    placed = create_rf3(cluster, topic, 1)
    leader = placed[0]
    follower, absent = [i for i in cluster.nodes if i != leader]
    records = [(f"k{i}".encode(), f"v{i}".encode(), 0) for i in range(300)]
    clients.produce_all(cluster.bootstrap(), topic, records, acks="all")
    # Followers learn the high watermark with their next fetch; the
    # checkpoint is written within an interval of it moving.
    clients.wait_for(
        "every replica's checkpoint at the high watermark",
        lambda: all(checkpointed_hw(n, topic, 0) == len(records) for n in cluster.nodes.values()),
        timeout_s=3 * HW_CHECKPOINT_INTERVAL_S,
    )
    # A crash of the whole cluster: nothing is fenced, the ISR stays 1,2,3.
    for node in cluster.nodes.values():
        node.kill9()
    for i in (leader, follower):
        assert checkpointed_hw(cluster.nodes[i], topic, 0) == len(records)
    # Two of three come back. The absent one stays in the ISR until the
    # controller fences it: without the checkpoint the leader would show
    # consumers nothing meanwhile (the high watermark would start at the
    # log start and wait for every ISR member to fetch).
    for i in (leader, follower):
        cluster.nodes[i].start(wait=False)
    for i in (leader, follower):
        cluster.nodes[i].wait_ready(timeout_s=60)
    back = cluster.bootstrap(leader, follower)
    cluster.wait_for(
        "a live leader",
        lambda md: leaders(md, topic)[0] in (leader, follower),
        via=follower,
        topics=[topic],
    )
    assert clients.watermarks(back, topic, 0) == (0, len(records))
    got = clients.consume_all(back, topic, 1, timeout_s=10, **{"isolation.level": "read_committed"})
    assert [r.value for r in got] == [v for _, v, _ in records]


LEADER_NOT_AVAILABLE = 5
NOT_LEADER_OR_FOLLOWER = 6
UNCLEAN_OFFLINE_HOLD_S = 4.0


def replicas(md: dict, topic: str) -> list[int]:
    [t] = [t for t in md["topics"] if t["name"] == topic]
    return t["partitions"][0]["replicas"]


def metric_sum(cluster: Cluster, name: str) -> float:
    """The sum of an unlabelled metric over the live brokers."""
    total = 0.0
    for node in cluster.nodes.values():
        if not node.alive():
            continue
        text = urllib.request.urlopen(f"{node.admin_url}/metrics", timeout=10).read().decode()
        for line in text.splitlines():
            if line.startswith(name + " "):
                total += float(line.split(" ")[1])
    return total


def lose_the_whole_isr(cluster: Cluster, topic: str) -> tuple[int, int, int, int]:
    """RF 2 of 3 brokers: the follower dies and leaves the ISR, records are
    written to the leader alone, then the leader dies while the controller
    quorum is lost, and the follower comes back: the ISR ([leader]) has no
    live member and the follower is out of sync. Returns (leader,
    follower, records both have, records only the leader has)."""
    clients.create_topic(
        cluster.bootstrap(), topic, 1, config={"min.insync.replicas": "1"}, replication_factor=2
    )
    md = cluster.wait_for(
        "the partition led with two in sync",
        lambda md: len(isr(md, topic).get(0, [])) == 2 and leaders(md, topic).get(0, -1) != -1,
        via=1,
        topics=[topic],
    )
    leader = leaders(md, topic)[0]
    follower = next(r for r in replicas(md, topic) if r != leader)
    bystander = next(i for i in cluster.nodes if i not in (leader, follower))
    both = [(f"k{i}".encode(), f"both{i}".encode(), 0) for i in range(100)]
    clients.produce_all(cluster.bootstrap(leader), topic, both, acks="all")
    cluster.nodes[follower].kill9()
    cluster.wait_for(
        "the dead follower out of the ISR",
        lambda md: isr(md, topic)[0] == [leader],
        via=bystander,
        topics=[topic],
        timeout_s=SESSION_TIMEOUT_MS / 1000 + LEADER_WAIT_S,
    )
    only_leader = [(f"k{i}".encode(), f"only{i}".encode(), 0) for i in range(50)]
    clients.produce_all(cluster.bootstrap(leader), topic, only_leader, acks="all")
    # Two of three down: no quorum, so nothing is fenced until one returns.
    cluster.nodes[leader].kill9()
    cluster.nodes[follower].start(wait=False)
    cluster.nodes[follower].wait_ready(timeout_s=60)
    return leader, follower, len(both), len(only_leader)


def test_unclean_leader_election_disabled_keeps_the_partition_offline_until_an_isr_member_returns(cluster):
    topic = topic_name()
    leader, follower, both, only_leader = lose_the_whole_isr(cluster, topic)
    cluster.wait_for(
        "the partition offline once its last ISR member is fenced",
        lambda md: leaders(md, topic)[0] == -1,
        via=follower,
        topics=[topic],
        timeout_s=SESSION_TIMEOUT_MS / 1000 + LEADER_WAIT_S,
    )
    # It stays offline: the live out-of-sync replica is not elected.
    time.sleep(UNCLEAN_OFFLINE_HOLD_S)
    md = cluster.metadata(follower, [topic])
    assert leaders(md, topic)[0] == -1, md
    with cluster.nodes[follower].raw() as c:
        refused = c.produce(topic, 0, kafka_raw.record_batch_v2([(b"k", b"lost?")]), acks=-1)
    assert refused["error_code"] in (LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER), refused
    assert metric_sum(cluster, "corestream_unclean_leader_elections_total") == 0
    # The ISR member returns and leads with every record it acknowledged.
    cluster.nodes[leader].start()
    cluster.wait_for(
        "the returning ISR member leads",
        lambda md: leaders(md, topic)[0] == leader,
        via=follower,
        topics=[topic],
    )
    got = clients.consume_all(cluster.bootstrap(leader, follower), topic, 1, expect=both + only_leader)
    assert len(got) == both + only_leader


def test_unclean_leader_election_enabled_elects_the_out_of_sync_replica_and_counts_it(broker_factory):
    cluster = Cluster(
        broker_factory,
        extra_args=[
            "--replica-lag-time-max-ms",
            str(REPLICA_LAG_MS),
            "--unclean-leader-election-enable",
            "true",
        ],
    ).start()
    topic = topic_name()
    leader, follower, both, only_leader = lose_the_whole_isr(cluster, topic)
    md = cluster.wait_for(
        "the out-of-sync replica elected",
        lambda md: leaders(md, topic)[0] == follower,
        via=follower,
        topics=[topic],
        timeout_s=SESSION_TIMEOUT_MS / 1000 + LEADER_WAIT_S,
    )
    assert isr(md, topic)[0] == [follower], md
    assert metric_sum(cluster, "corestream_unclean_leader_elections_total") >= 1
    # What only the old leader held is lost; the rest is served, and new
    # writes go on.
    after = [(f"k{i}".encode(), f"after{i}".encode(), 0) for i in range(20)]
    clients.produce_all(cluster.bootstrap(follower), topic, after, acks="all")
    got = clients.consume_all(cluster.bootstrap(follower), topic, 1, expect=both + len(after))
    values = [r.value for r in got]
    assert values[:both] == [f"both{i}".encode() for i in range(both)]
    assert values[both:] == [v for _, v, _ in after]
    # The old leader returns, truncates its divergent tail and rejoins.
    cluster.nodes[leader].start()
    cluster.wait_for(
        "the old leader back in the ISR",
        lambda md: isr(md, topic)[0] == sorted([leader, follower]),
        via=follower,
        topics=[topic],
    )
    assert clients.watermarks(cluster.bootstrap(follower), topic, 0)[1] == both + len(after)


def kill_and_return_the_preferred_leader(cluster: Cluster, topic: str) -> tuple[int, int]:
    """RF 3: the preferred (first) replica leads, dies, another leads, and
    the preferred one returns to the ISR. Returns (preferred, other)."""
    placed = create_rf3(cluster, topic, 1)
    md = cluster.metadata(1, [topic])
    preferred = replicas(md, topic)[0]
    assert placed[0] == preferred, md
    clients.produce_all(cluster.bootstrap(), topic, [(b"k", b"v", 0)] * 10, acks="all")
    cluster.nodes[preferred].kill9()
    survivor = next(i for i in cluster.nodes if i != preferred)
    cluster.wait_for(
        "another replica leads",
        lambda md: leaders(md, topic)[0] not in (-1, preferred),
        via=survivor,
        topics=[topic],
        timeout_s=SESSION_TIMEOUT_MS / 1000 + LEADER_WAIT_S,
    )
    cluster.nodes[preferred].start()
    return preferred, survivor


def test_elect_leaders_v2_preferred_moves_leadership_back_to_the_first_replica(broker_factory):
    from confluent_kafka import ElectionType, TopicPartition

    cluster = Cluster(
        broker_factory,
        extra_args=["--replica-lag-time-max-ms", str(REPLICA_LAG_MS), "--auto-leader-rebalance-enable", "false"],
    ).start()
    topic = topic_name()
    preferred, survivor = kill_and_return_the_preferred_leader(cluster, topic)
    cluster.wait_for(
        "the preferred replica back in the ISR",
        lambda md: isr(md, topic)[0] == [1, 2, 3],
        via=survivor,
        topics=[topic],
    )
    # Without the automatic rebalance, leadership stays where it went.
    md = cluster.metadata(survivor, [topic])
    assert leaders(md, topic)[0] != preferred, md
    admin = clients.admin(cluster.bootstrap())
    tp = TopicPartition(topic, 0)
    result = admin.elect_leaders(ElectionType.PREFERRED, [tp]).result(timeout=30)
    assert result == {tp: None}, result
    cluster.wait_for(
        "the preferred replica leads",
        lambda md: leaders(md, topic)[0] == preferred,
        via=survivor,
        topics=[topic],
    )
    # Asked again: nothing to do (ELECTION_NOT_NEEDED).
    again = admin.elect_leaders(ElectionType.PREFERRED, [tp]).result(timeout=30)
    assert again[tp] is not None and again[tp].code() == 84, again
    # UNCLEAN on a led partition: nothing to do either.
    unclean = admin.elect_leaders(ElectionType.UNCLEAN, [tp]).result(timeout=30)
    assert unclean[tp] is not None and unclean[tp].code() == 84, unclean
    missing = TopicPartition(topic, 7)
    unknown = admin.elect_leaders(ElectionType.PREFERRED, [missing]).result(timeout=30)
    assert unknown[missing] is not None and unknown[missing].code() == 3, unknown
    assert metric_sum(cluster, "corestream_clean_leader_elections_total") >= 1


def test_auto_leader_rebalance_moves_leadership_back_after_the_preferred_leader_returns(broker_factory):
    cluster = Cluster(
        broker_factory,
        extra_args=["--replica-lag-time-max-ms", str(REPLICA_LAG_MS), "--leader-imbalance-check-interval-seconds", "2"],
    ).start()
    topic = topic_name()
    preferred, survivor = kill_and_return_the_preferred_leader(cluster, topic)
    cluster.wait_for(
        "the preferred replica leads again by itself",
        lambda md: leaders(md, topic)[0] == preferred and isr(md, topic)[0] == [1, 2, 3],
        via=survivor,
        topics=[topic],
    )
    got = clients.consume_all(cluster.bootstrap(), topic, 1, expect=10)
    assert len(got) == 10


def scrape_all(cluster: Cluster) -> dict[int, str]:
    return {
        i: urllib.request.urlopen(f"{n.admin_url}/metrics", timeout=10).read().decode()
        for i, n in cluster.nodes.items()
        if n.alive()
    }


def sample(text: str, name: str, labels: str = "") -> float | None:
    prefix = f"{name}{{{labels}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix):])
    return None


def test_replication_metrics_count_isr_changes_acks_all_waits_and_fetched_bytes(cluster):
    from test_metrics import CLUSTER_ONLY_METRICS, dashboard_metric_names

    topic = topic_name()
    placed = create_rf3(cluster, topic, 1)
    leader = placed[0]
    follower = next(i for i in cluster.nodes if i != leader)
    records = [(f"k{i}".encode(), b"x" * 100, 0) for i in range(200)]
    clients.produce_all(cluster.bootstrap(), topic, records, acks="all")
    kill_follower_out_of_isr(cluster, topic, leader, follower)
    cluster.nodes[follower].start()
    cluster.wait_for(
        "the follower back in the ISR",
        lambda md: isr(md, topic)[0] == [1, 2, 3],
        via=leader,
        topics=[topic],
    )
    texts = scrape_all(cluster)
    lead = texts[leader]
    shard = 'shard="0"'
    # The follower left the ISR (fenced, or dropped for lagging) and came
    # back: one shrink and one expansion as the leader saw them.
    assert sample(lead, "corestream_isr_shrinks_total", shard) >= 1, lead[-3000:]
    assert sample(lead, "corestream_isr_expands_total", shard) >= 1, lead[-3000:]
    waits = sample(lead, "corestream_acks_all_wait_seconds_count", shard)
    assert waits is not None and waits >= 1, "acks=all produces waited for the ISR"
    assert sample(lead, "corestream_acks_all_wait_seconds_sum", shard) < 60
    # The follower that stayed up fetched every record (the restarted one
    # had them already: its counter started again at its restart).
    stayed = next(i for i in cluster.nodes if i not in (leader, follower))
    fetched = sample(texts[stayed], "corestream_replication_fetched_bytes_total", shard)
    assert fetched is not None and fetched >= 200 * 100, fetched
    assert sample(texts[follower], "corestream_replication_fetched_bytes_total", shard) is not None
    assert sum(sample(t, "corestream_offline_partitions") or 0 for t in texts.values()) == 0
    assert sample(lead, "corestream_unclean_leader_elections_total") == 0
    # Every cluster-only name the Grafana dashboard uses is served here.
    served = {line.split("{")[0].split(" ")[0] for t in texts.values() for line in t.splitlines() if not line.startswith("#")}
    wanted = dashboard_metric_names() & CLUSTER_ONLY_METRICS
    assert wanted <= served, sorted(wanted - served)


def txn_coordinator(cluster: Cluster, via: int, transactional_id: str) -> int:
    """The broker coordinating `transactional_id` (FindCoordinator v1)."""
    body = kafka_raw.Writer().string(transactional_id).int8(1).bytes()
    with cluster.nodes[via].raw() as c:
        r = kafka_raw.Reader(c.roundtrip(10, 1, body))
    r.int32()  # throttle_time_ms
    error, _message, node_id = r.int16(), r.string(), r.int32()
    assert error == 0, f"FindCoordinator error {error}"
    return node_id


def test_txn_markers_wait_for_the_isr_so_a_commit_is_not_visible_on_the_leader_alone(cluster):
    """A transaction marker is written with acks=all, as Kafka writes it: a
    partition whose ISR is below min.insync.replicas refuses it, so the
    commit is not complete (and read_committed readers see nothing) until a
    replica returns; then the commit finishes and every record is seen once.
    Before, the marker was acknowledged once on the leader's disk: a
    failover could lose it and leave the transaction open forever."""
    topic = topic_name()
    placed = create_rf3(cluster, topic, 1, min_insync=3)
    leader = placed[0]
    txn_id = f"tx-{uuid.uuid4().hex[:8]}"
    p = clients.producer(cluster.bootstrap(), **{"transactional.id": txn_id, "enable.idempotence": True})
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(10):
        p.produce(topic, f"v{i}".encode(), partition=0)
    p.flush(30)
    coordinator = txn_coordinator(cluster, leader, txn_id)
    follower = next(i for i in cluster.nodes if i not in (leader, coordinator))
    kill_follower_out_of_isr(cluster, topic, leader, follower)
    with pytest.raises(KafkaException):
        p.commit_transaction(5)
    committed = {"isolation.level": "read_committed"}
    seen = clients.consume_all(cluster.bootstrap(leader), topic, 1, timeout_s=15, **committed)
    assert seen == [], "a commit was visible with its marker on too few replicas"

    cluster.nodes[follower].start()
    cluster.wait_for(
        "the follower back in the ISR",
        lambda md: isr(md, topic)[0] == [1, 2, 3],
        via=leader,
        topics=[topic],
    )
    p.commit_transaction(30)  # a timed-out commit is retried (librdkafka's contract)
    got = clients.consume_all(cluster.bootstrap(leader), topic, 1, expect=10, **committed)
    assert sorted(r.value for r in got) == sorted(f"v{i}".encode() for i in range(10))


def partition_gauges(node, topic: str) -> dict[str, int]:
    text = urllib.request.urlopen(f"{node.admin_url}/metrics", timeout=10).read().decode()
    out = {}
    for name in ("log_start_offset", "log_end_offset"):
        prefix = f'corestream_partition_{name}{{topic="{topic}",partition="0",'
        [line] = [line for line in text.splitlines() if line.startswith(prefix)]
        out[name] = int(float(line.rsplit(" ", 1)[1]))
    return out


def test_follower_behind_the_leaders_log_start_resets_its_log_and_rejoins_the_isr(cluster):
    """A follower away while DeleteRecords (or retention) moved the leader's
    log start past the follower's end cannot fetch what it lacks: the
    leader answers OFFSET_OUT_OF_RANGE. As Kafka's follower does, it asks
    the leader for its log start, empties its own log, starts again there,
    catches up and rejoins the ISR; a new leader elected from it serves
    every record from that log start on."""
    from confluent_kafka import TopicPartition

    topic = topic_name()
    clients.create_topic(
        cluster.bootstrap(1), topic, 1,
        config={"min.insync.replicas": "2", "segment.bytes": str(64 * 1024)},
        replication_factor=3,
    )
    md = cluster.wait_for(
        "the partition led with three in sync",
        lambda md: isr(md, topic).get(0) == [1, 2, 3] and leaders(md, topic)[0] != -1,
        via=1, topics=[topic],
    )
    leader = leaders(md, topic)[0]
    follower = next(i for i in cluster.nodes if i != leader)
    first = [(None, f"a{i:05d}".encode() * 100, 0) for i in range(200)]
    clients.produce_all(cluster.bootstrap(), topic, first, acks="all")
    kill_follower_out_of_isr(cluster, topic, leader, follower)
    second = [(None, f"b{i:05d}".encode() * 100, 0) for i in range(400)]
    clients.produce_all(cluster.bootstrap(leader), topic, second, acks="all")
    cut = 500  # past the follower's end (200), in a later segment
    admin = clients.admin(cluster.bootstrap(leader))
    for f in admin.delete_records([TopicPartition(topic, 0, cut)]).values():
        f.result(15)
    assert partition_gauges(cluster.nodes[leader], topic)["log_start_offset"] >= 200

    cluster.nodes[follower].start()
    cluster.wait_for(
        "the follower back in the ISR",
        lambda md: isr(md, topic)[0] == [1, 2, 3],
        via=leader, topics=[topic],
    )
    lead, back = partition_gauges(cluster.nodes[leader], topic), partition_gauges(cluster.nodes[follower], topic)
    assert back["log_end_offset"] == lead["log_end_offset"] == 600, (back, lead)
    # The leader's start (500) is inside the second produce's batch (200..599):
    # the reset replica starts at that batch's base, as Kafka's follower does.
    assert 200 <= back["log_start_offset"] <= lead["log_start_offset"] == cut, (back, lead)
    log = open(cluster.nodes[follower].log_path, errors="replace").read()
    assert "log reset: the leader's log starts past this replica's end" in log

    # The reset replica holds the same records: lead from it.
    cluster.nodes[leader].kill9()
    md = cluster.wait_for(
        "another ISR member leads",
        lambda md: leaders(md, topic)[0] not in (-1, leader),
        via=follower, topics=[topic], timeout_s=SESSION_TIMEOUT_MS / 1000 + LEADER_WAIT_S,
    )
    new_leader = leaders(md, topic)[0]
    start = lead["log_start_offset"]
    got = clients.consume_all(cluster.bootstrap(new_leader), topic, 1, start_offset=start, expect=600 - start)
    assert [r.offset for r in got] == list(range(start, 600))
    assert [r.value for r in got] == [v for _, v, _ in (first + second)[start:]]
