"""Issue 22, inter-broker security: three brokers (one shard each) whose
inter-broker listener is SASL_SSL, SCRAM-SHA-512, ACLs on.

The brokers log in to each other as `broker`, which is NOT a super user;
`admin` (the initial user, added cluster-wide by the active controller) is.
Replication therefore needs CLUSTER_ACTION on the cluster for User:broker,
as in Kafka. Each broker also keeps the fixture's PLAINTEXT listener (for
readiness and the Cluster helper's raw Metadata).

Covered: with CLUSTER_ACTION an RF 3 topic has its whole ISR and acks=all
works, and Metadata gives each client the addresses of the listener it came
in on; without it followers stay out of the ISR, acks=all with
min.insync.replicas 2 is refused, the leader counts and logs the denial,
and a CreateAcls grant lets the followers catch up with no restart; a
broker with a wrong inter-broker password logs the refusal and keeps
running.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient, NewTopic,
                                   ResourcePatternType, ResourceType, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialUpsertion)

from conftest import free_port
from test_cluster import Cluster
from test_metrics import scrape, total
from test_security import pki  # noqa: F401 (module fixture: CA and server certificate for 127.0.0.1)

ADMIN, ADMIN_PASSWORD = "admin", "admin-secret"
BROKER_USER, BROKER_PASSWORD = "broker", "broker-secret"
# replica.lag.time.max.ms: a follower that cannot fetch leaves the ISR after it.
REPLICA_LAG_MS = 3_000
client_wait_s = 30.0
isr_wait_s = 45.0
NOT_ENOUGH_REPLICAS = 19


class SecureCluster:
    """A Cluster whose nodes add a SASL_SSL listener used between brokers."""

    def __init__(self, broker_factory, pki: Path, tmp_path: Path, monkeypatch,
                 wrong_password_node: int | None = None):
        monkeypatch.setenv("CORESTREAM_INITIAL_USER_PASSWORD", ADMIN_PASSWORD)
        self.pki = pki
        self.cluster = Cluster(broker_factory, extra_args=["--replica-lag-time-max-ms", str(REPLICA_LAG_MS)])
        self.sasl_ports: dict[int, int] = {}
        for i, node in self.cluster.nodes.items():
            port = free_port(avoid=node.port)
            self.sasl_ports[i] = port
            password = "not-the-password" if i == wrong_password_node else BROKER_PASSWORD
            pw = tmp_path / f"broker-password-{i}"
            pw.write_text(password + "\n")
            node.extra_args += [
                "--listeners", f"SASL_SSL://127.0.0.1:{port}",
                "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"),
                "--authorizer", "acl", "--super-users", f"User:{ADMIN}",
                "--initial-user", ADMIN,
                "--inter-broker-listener-name", "SASL_SSL",
                "--sasl-mechanism-inter-broker-protocol", "SCRAM-SHA-512",
                "--inter-broker-username", BROKER_USER,
                "--inter-broker-password-file", str(pw),
                "--inter-broker-tls-ca", str(pki / "ca.pem"),
            ]
        self.cluster.start()
        self.wait_admin_login()
        admin = self.admin()  # kept alive until the future is done
        admin.alter_user_scram_credentials([UserScramCredentialUpsertion(
            BROKER_USER, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), BROKER_PASSWORD.encode())
        ])[BROKER_USER].result(timeout=client_wait_s)

    def conf(self, node: int = 1) -> dict:
        return {"bootstrap.servers": f"127.0.0.1:{self.sasl_ports[node]}", "security.protocol": "SASL_SSL",
                "ssl.ca.location": str(self.pki / "ca.pem"), "sasl.mechanism": "SCRAM-SHA-512",
                "sasl.username": ADMIN, "sasl.password": ADMIN_PASSWORD}

    def admin(self, node: int = 1) -> AdminClient:
        return AdminClient(self.conf(node))

    def wait_admin_login(self) -> None:
        """The initial user reaches the brokers through the controller
        quorum: poll until admin can log in and list topics on each."""
        for i in self.cluster.nodes:
            deadline = time.monotonic() + client_wait_s
            while True:
                try:
                    self.admin(i).list_topics(timeout=5)
                    break
                except KafkaException:
                    assert time.monotonic() < deadline, f"admin cannot log in to node {i}"
                    time.sleep(0.2)

    def grant_cluster_action(self) -> None:
        binding = AclBinding(ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL,
                             f"User:{BROKER_USER}", "*", AclOperation.CLUSTER_ACTION, AclPermissionType.ALLOW)
        admin = self.admin()
        for f in admin.create_acls([binding], request_timeout=10).values():
            f.result()

    def create_rf3(self, topic: str, partitions: int = 1) -> None:
        admin = self.admin()
        new = NewTopic(topic, partitions, 3, config={"min.insync.replicas": "2"})
        for f in admin.create_topics([new]).values():
            f.result(timeout=client_wait_s)

    def isrs(self, topic: str) -> dict[int, list[int]]:
        md = self.admin().list_topics(topic, timeout=10)
        return {p.id: sorted(p.isrs) for p in md.topics[topic].partitions.values()}

    def leaders(self, topic: str) -> dict[int, int]:
        md = self.admin().list_topics(topic, timeout=10)
        return {p.id: p.leader for p in md.topics[topic].partitions.values()}

    def wait_isr(self, topic: str, what: str, check, timeout_s: float = isr_wait_s) -> dict[int, list[int]]:
        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.isrs(topic)
                if last and check(last):
                    return last
            except KafkaException:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{what}: not within {timeout_s}s; last ISR {last}")

    def produce_acks_all(self, topic: str, n: int, timeout_ms: int = 20_000) -> list:
        """Produces n records with acks=all; the delivery errors (None when
        delivered)."""
        p = Producer({**self.conf(), "acks": "all", "message.timeout.ms": timeout_ms})
        errors = []
        for i in range(n):
            p.produce(topic, value=b"v%d" % i, on_delivery=lambda err, _msg: errors.append(err))
        p.flush(timeout_ms / 1000 + 10)
        assert len(errors) == n, "every record gets a delivery report"
        return errors


def wait_logged(node, text: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in node.log_tail():
        assert time.monotonic() < deadline, f"node {node.name} did not log {text!r}"
        time.sleep(0.1)


def topic_name() -> str:
    return f"ib-{uuid.uuid4().hex[:8]}"


def test_interbroker_sasl_ssl_with_cluster_action_replicates_rf3_acks_all(broker_factory, pki, tmp_path,
                                                                           monkeypatch):
    sc = SecureCluster(broker_factory, pki, tmp_path, monkeypatch)
    sc.grant_cluster_action()
    topic = topic_name()
    sc.create_rf3(topic, partitions=3)
    sc.wait_isr(topic, "every replica in sync", lambda isr: all(v == [1, 2, 3] for v in isr.values()))
    assert sc.produce_acks_all(topic, 30) == [None] * 30
    # Metadata answers with the addresses of the listener the client used.
    md = sc.admin(2).list_topics(timeout=10)
    assert {b.id: b.port for b in md.brokers.values()} == sc.sasl_ports
    with sc.cluster.nodes[2].raw() as conn:  # PLAINTEXT
        plain = conn.metadata([])
    assert {b["node_id"]: b["port"] for b in plain["brokers"]} == {
        i: n.port for i, n in sc.cluster.nodes.items()}
    # The followers' logins were accepted: no refused replica fetch.
    for node in sc.cluster.nodes.values():
        _, samples = scrape(node)
        assert total(samples, "corestream_replica_fetches_denied_total") == 0


def test_interbroker_without_cluster_action_followers_stay_out_until_granted(broker_factory, pki, tmp_path,
                                                                              monkeypatch):
    sc = SecureCluster(broker_factory, pki, tmp_path, monkeypatch)
    topic = topic_name()
    sc.create_rf3(topic)
    # The followers are refused: the leader drops them from the ISR.
    sc.wait_isr(topic, "the ISR shrunk to the leader", lambda isr: len(isr[0]) == 1)
    leader = sc.leaders(topic)[0]
    errors = sc.produce_acks_all(topic, 3, timeout_ms=5_000)
    assert all(e is not None for e in errors), errors
    assert all(e.code() in (NOT_ENOUGH_REPLICAS, -192) for e in errors), errors  # -192: _MSG_TIMED_OUT
    _, samples = scrape(sc.cluster.nodes[leader])
    assert total(samples, "corestream_replica_fetches_denied_total") > 0
    wait_logged(sc.cluster.nodes[leader], "replica fetch denied: the principal lacks CLUSTER_ACTION")
    follower = next(i for i in sc.cluster.nodes if i != leader)
    wait_logged(sc.cluster.nodes[follower], "replica fetch denied by the leader")
    # A grant takes effect with no restart.
    sc.grant_cluster_action()
    sc.wait_isr(topic, "followers back in the ISR after the grant", lambda isr: isr[0] == [1, 2, 3])
    assert sc.produce_acks_all(topic, 5) == [None] * 5
    wait_logged(sc.cluster.nodes[follower], "replica fetch allowed again")


def test_interbroker_wrong_password_is_logged_and_the_broker_keeps_running(broker_factory, pki, tmp_path,
                                                                           monkeypatch):
    sc = SecureCluster(broker_factory, pki, tmp_path, monkeypatch, wrong_password_node=3)
    sc.grant_cluster_action()
    topic = topic_name()
    sc.create_rf3(topic, partitions=3)
    # Node 3 cannot log in: it follows nothing, the others replicate.
    leaders = sc.leaders(topic)
    sc.wait_isr(topic, "node 3 out of the ISR of every partition it follows",
                lambda isr: all(v == [1, 2] for p, v in isr.items() if leaders[p] != 3))
    wait_logged(sc.cluster.nodes[3], 'SASL SCRAM-SHA-512 login as "broker" refused')
    assert sc.cluster.nodes[3].alive(), "a refused login must not stop the broker"
    # The leaders counted the failed logins.
    failures = sum(total(scrape(sc.cluster.nodes[i])[1], "corestream_authentication_failures_total")
                   for i in (1, 2))
    assert failures > 0
