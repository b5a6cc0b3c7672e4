"""A three-node cluster (issue 20): controller quorum on openraft, brokers
registered with it, partitions spread over brokers, clients routed to
leaders, a dead controller replaced, a dead broker fenced and back.

Every node is a voter and a broker, `--shards 1` (three brokers and the
clients share two cores), with its own Kafka, admin and controller port.
Replication factor 1: a fenced broker's partitions have no leader until it
returns (replication is issue 21).
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
import uuid

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
from kafka import KafkaConsumer, TopicPartition

import clients
import kafka_raw
from conftest import Broker, free_port

NODES = 3
# broker.session.timeout.ms for the tests: well above a heartbeat (1 s) on
# a loaded two-core machine, short enough that fencing is seen quickly.
SESSION_TIMEOUT_MS = 3_000
CLUSTER_READY_WAIT_S = 60.0
LEADER_WAIT_S = 30.0
PARTITIONS = 12
EXIT_IDENTITY_MISMATCH = 78
EXIT_BAD_CONFIG = 2
LEADER_NOT_AVAILABLE = 5
# A follower voter's lag behind the active controller's log, in entries,
# right after a write: replication is pipelined and a heartbeat may be in
# flight, so a few entries, never more on an idle three-node cluster.
VOTER_LAG_ENTRIES_MAX = 5


class Cluster:
    def __init__(self, broker_factory, extra_args: list[str] | None = None) -> None:
        self.controller_ports = {i: free_port() for i in range(1, NODES + 1)}
        voters = ",".join(f"{i}@127.0.0.1:{p}" for i, p in self.controller_ports.items())
        self.nodes: dict[int, Broker] = {}
        for i in range(1, NODES + 1):
            self.nodes[i] = broker_factory(
                name=f"node{i}",
                start=False,
                shards=1,
                node_id=i,
                extra_args=[
                    "--controller-quorum-voters",
                    voters,
                    "--broker-session-timeout-ms",
                    str(SESSION_TIMEOUT_MS),
                    *(extra_args or []),
                ],
            )

    def start(self) -> "Cluster":
        # No node is ready before a quorum exists: start all, then wait.
        for node in self.nodes.values():
            node.start(wait=False)
        for node in self.nodes.values():
            node.wait_ready(timeout_s=CLUSTER_READY_WAIT_S)
        for i in self.nodes:
            self.wait_for("every broker registered", lambda md: len(md["brokers"]) == NODES, via=i)
        return self

    def bootstrap(self, *ids: int) -> str:
        ids = ids or tuple(i for i, n in self.nodes.items() if n.alive())
        return ",".join(self.nodes[i].bootstrap for i in ids)

    def metadata(self, via: int, topics: list[str] | None = None) -> dict:
        with self.nodes[via].raw() as c:
            return c.metadata(topics)

    def wait_for(self, what: str, check, via: int, topics: list[str] | None = None, timeout_s: float = LEADER_WAIT_S):
        deadline = time.monotonic() + timeout_s
        md = None
        while time.monotonic() < deadline:
            try:
                md = self.metadata(via, topics)
                if check(md):
                    return md
            except (OSError, AssertionError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"{what}: not within {timeout_s}s; last metadata {md}")


@pytest.fixture
def cluster(broker_factory) -> Cluster:
    return Cluster(broker_factory).start()


def topic_name() -> str:
    return f"cluster-{uuid.uuid4().hex[:8]}"


def leaders(md: dict, topic: str) -> dict[int, int]:
    [t] = [t for t in md["topics"] if t["name"] == topic]
    return {p["partition"]: p["leader"] for p in t["partitions"]}


def test_metadata_v8_cluster_lists_three_brokers_and_one_controller(cluster):
    # a node is ready once it registered; the others may still be joining
    views = [cluster.wait_for("three brokers", lambda md: len(md["brokers"]) == 3, via=i) for i in cluster.nodes]
    for md in views:
        assert sorted(b["node_id"] for b in md["brokers"]) == [1, 2, 3]
        ports = {b["node_id"]: b["port"] for b in md["brokers"]}
        assert ports == {i: n.port for i, n in cluster.nodes.items()}
    # one cluster id and one controller, seen alike from every node
    assert len({md["cluster_id"] for md in views}) == 1 and views[0]["cluster_id"]
    controllers = {md["controller_id"] for md in views}
    assert len(controllers) == 1 and controllers <= {1, 2, 3}, views
    [controller] = controllers
    # /metrics: the quorum as each voter sees it, and the membership
    for i, node in cluster.nodes.items():
        text = urllib.request.urlopen(f"{node.admin_url}/metrics", timeout=10).read().decode()
        samples = dict(
            line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
        )
        assert samples["corestream_cluster_broker_registered"] == "1", i
        assert samples["corestream_controller_active"] == ("1" if i == controller else "0"), i
        assert int(samples["corestream_controller_raft_term"]) >= 1
        assert int(samples["corestream_controller_raft_committed_index"]) > 0
        if i == controller:
            # one lag per follower (openraft may list the leader itself too)
            lagging = {
                int(k.split('voter="')[1].split('"')[0])
                for k in samples
                if k.startswith("corestream_controller_voter_lag_entries{")
            }
            assert set(cluster.nodes) - {controller} <= lagging, lagging


def test_create_topics_cluster_spreads_leaders_and_clients_follow_them(cluster):
    topic = topic_name()
    clients.create_topic(cluster.bootstrap(1), topic, PARTITIONS)
    md = cluster.wait_for(
        "12 partitions led",
        lambda md: len(leaders(md, topic)) == PARTITIONS and -1 not in leaders(md, topic).values(),
        via=2,
        topics=[topic],
    )
    placed = leaders(md, topic)
    assert set(placed.values()) == {1, 2, 3}, placed
    # every node answers with the same placement
    for i in cluster.nodes:
        assert leaders(cluster.metadata(i, [topic]), topic) == placed
    # a partition asked of a broker that does not lead it: NOT_LEADER_OR_FOLLOWER
    follower = next(i for i in cluster.nodes if i != placed[0])
    with cluster.nodes[follower].raw() as c:
        reply = c.produce(topic, 0, kafka_raw.record_batch_v2([(b"k", b"v")]))
    assert reply["error_code"] == 6, reply

    # librdkafka produces through one bootstrap and is routed to every leader
    records = [(f"k{i}".encode(), f"v{i}".encode(), i % PARTITIONS) for i in range(600)]
    acked = clients.produce_all(cluster.bootstrap(1), topic, records, acks="all")
    assert {p for p, _, _ in acked} == set(range(PARTITIONS))
    # kafka-python reads them all back through another bootstrap
    consumer = KafkaConsumer(bootstrap_servers=cluster.bootstrap(2), consumer_timeout_ms=20_000)
    consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
    consumer.seek_to_beginning()
    got = {}
    for msg in consumer:
        got[msg.key] = (msg.partition, msg.value)
        if len(got) == len(records):
            break
    consumer.close()
    assert got == {k: (p, v) for k, v, p in records}
    # kcat (librdkafka) lists the cluster and consumes a partition led elsewhere
    listed = subprocess.run(
        ["kcat", "-b", cluster.bootstrap(3), "-L", "-t", topic], capture_output=True, text=True, timeout=30
    )
    assert listed.returncode == 0, listed.stderr
    assert "3 brokers:" in listed.stdout and f"{PARTITIONS} partitions" in listed.stdout, listed.stdout
    remote = next(p for p, leader in placed.items() if leader != 3)
    consumed = subprocess.run(
        ["kcat", "-b", cluster.bootstrap(3), "-C", "-t", topic, "-p", str(remote), "-o", "beginning", "-e", "-f", "%k\n"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert consumed.returncode == 0, consumed.stderr
    expected = sorted(k.decode() for k, _, p in records if p == remote)
    assert sorted(consumed.stdout.split()) == expected


def test_consumer_group_cluster_commits_through_the_coordinator(cluster):
    topic = topic_name()
    clients.create_topic(cluster.bootstrap(1), topic, 6)
    records = [(f"k{i}".encode(), b"x", i % 6) for i in range(120)]
    clients.produce_all(cluster.bootstrap(2), topic, records)
    group = f"g-{uuid.uuid4().hex[:6]}"
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=cluster.bootstrap(3),
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=30_000,
    )
    seen = 0
    for _ in consumer:
        seen += 1
        if seen == len(records):
            break
    consumer.commit()
    consumer.close()
    assert seen == len(records)
    # the committed offsets are read back through another node
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap(1)})
    from confluent_kafka import ConsumerGroupTopicPartitions

    fut = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
    committed = fut[group].result(timeout=30).topic_partitions
    assert sum(tp.offset for tp in committed if tp.topic == topic) == len(records)


def test_controller_killed_cluster_elects_another_and_still_creates_topics(cluster):
    old = cluster.metadata(1)["controller_id"]
    cluster.nodes[old].kill9()
    survivor = next(i for i in cluster.nodes if i != old)
    started = time.monotonic()
    md = cluster.wait_for(
        "a new controller",
        lambda md: md["controller_id"] not in (-1, old),
        via=survivor,
    )
    elected_s = time.monotonic() - started
    assert md["controller_id"] in cluster.nodes
    # the new controller gives the dead broker a full session before fencing
    cluster.wait_for(
        "the dead controller fenced",
        lambda md: old not in {b["node_id"] for b in md["brokers"]},
        via=survivor,
        timeout_s=SESSION_TIMEOUT_MS / 1000 + 15,
    )
    topic = topic_name()
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap()})
    fs = admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)], request_timeout=30)
    fs[topic].result(timeout=60)
    md = cluster.wait_for(
        "the new topic on the survivors",
        lambda md: len(leaders(md, topic)) == 4 and -1 not in leaders(md, topic).values(),
        via=survivor,
        topics=[topic],
    )
    # the dead broker is fenced and holds none of the new leaderships
    assert old not in leaders(md, topic).values()
    # config changes go through the new controller too
    resource = ConfigResource("topic", topic, set_config={"retention.ms": "3600000"})
    admin.alter_configs([resource])[resource].result(timeout=60)
    described = admin.describe_configs([ConfigResource("topic", topic)])
    [entries] = [f.result(timeout=60) for f in described.values()]
    assert entries["retention.ms"].value == "3600000"
    print(f"controller re-elected in {elected_s:.2f}s")
    # and it comes back as a broker (and voter) of the same cluster
    cluster.nodes[old].start()
    md = cluster.wait_for("three brokers again", lambda md: len(md["brokers"]) == 3, via=old)


def test_broker_killed_cluster_fences_it_and_it_leads_again_with_its_data(cluster):
    topic = topic_name()
    clients.create_topic(cluster.bootstrap(1), topic, 6)
    records = [(f"k{i}".encode(), f"v{i}".encode(), i % 6) for i in range(60)]
    clients.produce_all(cluster.bootstrap(1), topic, records)
    controller = cluster.metadata(1)["controller_id"]
    victim = next(i for i in cluster.nodes if i != controller)
    watcher = controller
    placed = leaders(cluster.metadata(watcher, [topic]), topic)
    lost = sorted(p for p, leader in placed.items() if leader == victim)
    assert lost, placed
    cluster.nodes[victim].kill9()
    started = time.monotonic()
    md = cluster.wait_for(
        "the dead broker fenced",
        lambda md: victim not in {b["node_id"] for b in md["brokers"]},
        via=watcher,
        topics=[topic],
        timeout_s=SESSION_TIMEOUT_MS / 1000 + 15,
    )
    fenced_s = time.monotonic() - started
    [t] = md["topics"]
    for p in t["partitions"]:
        if p["partition"] in lost:
            assert p["leader"] == -1 and p["error_code"] == LEADER_NOT_AVAILABLE, p
        else:
            assert p["leader"] == placed[p["partition"]], p
    cluster.nodes[victim].start()
    cluster.wait_for(
        "the broker leads its partitions again",
        lambda md: leaders(md, topic) == placed,
        via=watcher,
        topics=[topic],
    )
    got = clients.consume_all(cluster.bootstrap(watcher), topic, 6, expect=len(records))
    assert sorted((r.key, r.value) for r in got) == sorted((k, v) for k, v, _ in records)
    print(f"broker fenced {fenced_s:.2f}s after SIGKILL (session {SESSION_TIMEOUT_MS} ms)")


def test_cluster_node_refuses_data_dir_of_another_node_id(cluster):
    node = cluster.nodes[2]
    node.stop()
    node.node_id = 7
    with pytest.raises(AssertionError):
        node.start()
    assert node.proc.returncode == EXIT_IDENTITY_MISMATCH
    assert "belongs to node 2" in node.log_tail()
    node.node_id = 2
    node.start()


def test_cluster_config_bad_voters_given_as_controller_voters_is_refused(broker_factory):
    node = broker_factory(
        name="bad", start=False, shards=1, node_id=1, extra_args=["--controller-voters", "1@127.0.0.1"]
    )
    node.start(wait=False)
    assert node.proc.wait(timeout=20) == EXIT_BAD_CONFIG
    node.expected_down = True
    assert "controller-quorum-voters" in node.log_tail()


def test_transactions_cluster_spanning_every_broker_commit_and_abort(cluster):
    """A transaction over partitions led by all three brokers: the leaders
    verify it with the coordinator's broker (AddPartitionsToTxn v4) and the
    coordinator writes markers through them (WriteTxnMarkers)."""
    topic = topic_name()
    clients.create_topic(cluster.bootstrap(1), topic, 6)
    md = cluster.wait_for(
        "6 partitions led", lambda md: -1 not in leaders(md, topic).values(), via=1, topics=[topic]
    )
    assert set(leaders(md, topic).values()) == {1, 2, 3}
    p = clients.producer(
        cluster.bootstrap(), **{"transactional.id": f"tx-{uuid.uuid4().hex[:6]}", "enable.idempotence": True}
    )
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(60):
        p.produce(topic, f"committed-{i}".encode(), partition=i % 6)
    p.commit_transaction(30)
    p.begin_transaction()
    for i in range(30):
        p.produce(topic, f"aborted-{i}".encode(), partition=i % 6)
    p.flush(30)
    p.abort_transaction(30)
    got = clients.consume_all(
        cluster.bootstrap(), topic, 6, expect=60, **{"isolation.level": "read_committed"}
    )
    assert sorted(r.value for r in got) == sorted(f"committed-{i}".encode() for i in range(60))


def test_cluster_info_cli_describe_quorum_shows_quorum_and_broker_states(cluster):
    """`corestream cluster info` (DescribeQuorum forwarded to the active
    controller, DescribeCluster v2 with fenced brokers) from every node,
    and the same quorum in the active controller's /metrics."""
    from test_ops import cli

    clients.create_topic(cluster.bootstrap(1), topic_name(), 3)  # some log entries
    controller = cluster.metadata(1)["controller_id"]
    for i, node in cluster.nodes.items():
        info = json.loads(cli(node, "--json", "cluster", "info").stdout)
        q = info["quorum"]
        assert q["leader_id"] == controller and q["term"] >= 1, (i, q)
        assert q["committed_index"] > 0 and q["last_log_index"] >= q["committed_index"], (i, q)
        assert sorted(v["id"] for v in q["voters"]) == [1, 2, 3], (i, q)
        # heartbeats keep the log moving; followers are at most a few entries behind
        for v in q["voters"]:
            assert 0 <= v["lag"] <= VOTER_LAG_ENTRIES_MAX and v["matched_index"] > 0, (i, q)
        [leader] = [v for v in q["voters"] if v["id"] == controller]
        assert (leader["matched_index"], leader["lag"]) == (q["last_log_index"], 0), (i, q)
        states = {s["node_id"]: s["state"] for s in info["broker_states"]}
        assert states == {1: "registered", 2: "registered", 3: "registered"}, (i, info)
    text = cli(cluster.nodes[1], "cluster", "info").stdout
    assert f"quorum: leader {controller}, term " in text and "MATCHED INDEX" in text and "registered" in text
    # the active controller's /metrics: the same voters, with matched indexes
    metrics = urllib.request.urlopen(f"{cluster.nodes[controller].admin_url}/metrics", timeout=10).read().decode()
    matched = [line for line in metrics.splitlines() if line.startswith("corestream_controller_voter_matched_index{")]
    assert len(matched) == 3 and all(int(line.rsplit(" ", 1)[1]) > 0 for line in matched), matched
    assert 'corestream_cluster_broker_fenced{broker="2"} 0' in metrics

    # a broker stopped (SIGKILL, no controlled shutdown) is shown fenced
    victim = next(i for i in cluster.nodes if i != controller)
    cluster.nodes[victim].kill9()
    cluster.wait_for(
        "the dead broker fenced",
        lambda md: victim not in {b["node_id"] for b in md["brokers"]},
        via=controller,
        timeout_s=SESSION_TIMEOUT_MS / 1000 + 15,
    )
    info = json.loads(cli(cluster.nodes[controller], "--json", "cluster", "info").stdout)
    states = {s["node_id"]: s["state"] for s in info["broker_states"]}
    assert states[victim] == "fenced" and list(states.values()).count("registered") == 2, info
    # the dead voter missed the fence (written after it died); the other
    # follower has it
    q = info["quorum"]
    lag = {v["id"]: v["lag"] for v in q["voters"]}
    assert q["leader_id"] == controller and lag[victim] > 0, q


def test_console_overview_cluster_shows_broker_states_and_the_quorum(cluster):
    """The console's /v1/overview (issue 24) on every node: three unfenced
    brokers, the active controller, the quorum's leader, epoch, high
    watermark and each voter's log end and lag, as DescribeQuorum and
    DescribeCluster v2 report them; a SIGKILLed broker then shown fenced."""
    clients.create_topic(cluster.bootstrap(1), topic_name(), 3)  # some log entries
    controller = cluster.metadata(1)["controller_id"]

    def overview(i: int) -> dict:
        with urllib.request.urlopen(f"{cluster.nodes[i].admin_url}/v1/overview", timeout=10) as r:
            return json.loads(r.read())

    for i in cluster.nodes:
        o = overview(i)
        assert o["cluster_mode"] is True and o["node_id"] == i and o["controller_id"] == controller, o
        brokers = {b["node_id"]: b for b in o["brokers"]}
        assert sorted(brokers) == [1, 2, 3], o["brokers"]
        assert {b["state"] for b in brokers.values()} == {"unfenced"}, o["brokers"]
        assert {n for n, b in brokers.items() if b["controller"]} == {controller}
        assert {n for n, b in brokers.items() if b["local"]} == {i}
        assert all(brokers[n]["port"] == node.port for n, node in cluster.nodes.items())
        q = o["quorum"]
        assert q["leader_id"] == controller and q["epoch"] >= 1 and q["high_watermark"] > 0, (i, q)
        voters = {v["id"]: v for v in q["voters"]}
        assert sorted(voters) == [1, 2, 3], (i, q)
        for v in voters.values():
            assert v["log_end_offset"] > 0 and 0 <= v["lag"] <= VOTER_LAG_ENTRIES_MAX, (i, q)
        assert (voters[controller]["log_end_offset"], voters[controller]["lag"]) == (q["last_log_index"], 0), q

    victim = next(i for i in cluster.nodes if i != controller)
    cluster.nodes[victim].kill9()
    clients.wait_for(
        "the dead broker shown fenced",
        lambda: {b["node_id"]: b["state"] for b in overview(controller)["brokers"]}.get(victim) == "fenced",
        timeout_s=SESSION_TIMEOUT_MS / 1000 + 15,
    )
    states = {b["node_id"]: b["state"] for b in overview(controller)["brokers"]}
    assert list(states.values()).count("unfenced") == 2, states
