"""Issue 22 item 5: Kafka ACLs with Kafka's semantics (`--authorizer acl`).

A broker with a SASL_PLAINTEXT listener (users admin, alice, bob, carol,
SCRAM-SHA-512) and the fixture's PLAINTEXT listener, which the admin CLI
uses as User:ANONYMOUS. Super users: User:admin and User:ANONYMOUS (the
PLAINTEXT listener is the operator's, on localhost). Real clients:
confluent-kafka's AdminClient for CreateAcls/DescribeAcls/DeleteAcls,
kafka-python producers, a confluent-kafka consumer; raw requests where a
client cannot ask (a follower's Fetch).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                   AdminClient, NewTopic, ResourcePatternType, ResourceType)

import kafka_raw
from conftest import free_port
from test_ops import cli

ADMIN, ADMIN_PASSWORD = "admin", "admin-secret"
PASSWORD = "user-secret"
USERS = ("alice", "bob", "carol")
client_wait_s = 20.0
TOPIC_AUTHORIZATION_FAILED = 29
GROUP_AUTHORIZATION_FAILED = 30
CLUSTER_AUTHORIZATION_FAILED = 31


class AclBroker:
    def __init__(self, broker, sasl_port: int):
        self.broker = broker
        self.sasl = f"127.0.0.1:{sasl_port}"

    def conf(self, user: str) -> dict:
        password = ADMIN_PASSWORD if user == ADMIN else PASSWORD
        return {"bootstrap.servers": self.sasl, "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": user, "sasl.password": password}

    def admin(self, user: str = ADMIN) -> AdminClient:
        return AdminClient(self.conf(user))

    def kafka_python(self, user: str) -> dict:
        password = ADMIN_PASSWORD if user == ADMIN else PASSWORD
        return {"bootstrap_servers": self.sasl, "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": user,
                "sasl_plain_password": password, "request_timeout_ms": 10000}

    def grant(self, *bindings: AclBinding) -> None:
        admin = self.admin()  # kept alive until the futures are done
        for f in admin.create_acls(list(bindings), request_timeout=10).values():
            f.result()

    def create_topic(self, name: str, partitions: int = 1) -> None:
        admin = self.admin()
        for f in admin.create_topics([NewTopic(name, partitions, 1)]).values():
            f.result(timeout=client_wait_s)


def acl(resource: ResourceType, name: str, principal: str, op: AclOperation,
        pattern: ResourcePatternType = ResourcePatternType.LITERAL,
        permission: AclPermissionType = AclPermissionType.ALLOW) -> AclBinding:
    return AclBinding(resource, name, pattern, principal, "*", op, permission)


def start_acl_broker(broker_factory, tmp_path: Path, monkeypatch, super_users: str) -> AclBroker:
    monkeypatch.setenv("CORESTREAM_INITIAL_USER_PASSWORD", ADMIN_PASSWORD)
    port = free_port()
    broker = broker_factory(shards=1, extra_args=[
        "--listeners", f"SASL_PLAINTEXT://127.0.0.1:{port}", "--initial-user", ADMIN,
        "--authorizer", "acl", "--super-users", super_users])
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    return AclBroker(broker, port), pw


@pytest.fixture
def secured(broker_factory, tmp_path, monkeypatch) -> AclBroker:
    b, pw = start_acl_broker(broker_factory, tmp_path, monkeypatch, "User:admin;User:ANONYMOUS")
    for user in USERS:
        cli(b.broker, "users", "set", user, "--mechanism", "SCRAM-SHA-512", "--password-file", str(pw))
    return b


def stored_bytes(broker, topic: str) -> dict[str, bytes]:
    """Every file of the topic's partition directories, by path."""
    out = {}
    for d in broker.data_dir.glob(f"{topic}-*"):
        for f in sorted(d.iterdir()):
            if f.is_file():
                out[str(f)] = f.read_bytes()
    return out


def produce_kafka_python(secured: AclBroker, user: str, topic: str, value: bytes = b"v"):
    """One record sent by kafka-python as `user`; the send's result or exception."""
    from kafka import KafkaProducer

    p = KafkaProducer(acks="all", retries=0, max_block_ms=10000, **secured.kafka_python(user))
    try:
        return p.send(topic, value).get(timeout=client_wait_s)
    except Exception as e:  # noqa: BLE001 - the test inspects which error
        return e
    finally:
        p.close(timeout=5)


def assert_topic_authorization_failed(result) -> None:
    from kafka.errors import TopicAuthorizationFailedError

    assert isinstance(result, TopicAuthorizationFailedError), f"expected TOPIC_AUTHORIZATION_FAILED, got {result!r}"


# ---------------------------------------------------------------- admin API


def test_acls_admin_client_create_describe_delete_round_trip(secured):
    admin = secured.admin()
    literal = acl(ResourceType.TOPIC, "orders", "User:alice", AclOperation.READ)
    prefixed = acl(ResourceType.TOPIC, "ord", "User:bob", AclOperation.WRITE, ResourcePatternType.PREFIXED)
    deny = acl(ResourceType.GROUP, "g1", "User:*", AclOperation.ALL, permission=AclPermissionType.DENY)
    secured.grant(literal, prefixed, deny)
    everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                  AclOperation.ANY, AclPermissionType.ANY)
    assert set(admin.describe_acls(everything).result()) == {literal, prefixed, deny}
    # MATCH: every ACL that applies to topic "orders" (its literal one and the prefix).
    match = AclBindingFilter(ResourceType.TOPIC, "orders", ResourcePatternType.MATCH, None, None,
                             AclOperation.ANY, AclPermissionType.ANY)
    assert set(admin.describe_acls(match).result()) == {literal, prefixed}
    # ANY pattern type compares the name exactly.
    exact = AclBindingFilter(ResourceType.TOPIC, "orders", ResourcePatternType.ANY, None, None,
                             AclOperation.ANY, AclPermissionType.ANY)
    assert admin.describe_acls(exact).result() == [literal]
    deleted = admin.delete_acls([match])[match].result()
    assert set(deleted) == {literal, prefixed}
    assert admin.describe_acls(everything).result() == [deny]


def test_create_acls_invalid_binding_is_invalid_request_and_non_super_user_is_refused(secured):
    # librdkafka's BROKER is Kafka's CLUSTER (code 4), whose only name is kafka-cluster.
    bad = acl(ResourceType.BROKER, "other-cluster", "User:alice", AclOperation.ALTER)
    admin = secured.admin()
    with pytest.raises(KafkaException) as e:
        for f in admin.create_acls([bad], request_timeout=10).values():
            f.result()
    assert e.value.args[0].code() == KafkaError.INVALID_REQUEST, e.value
    alice = secured.admin("alice")
    with pytest.raises(KafkaException) as e:
        for f in alice.create_acls([acl(ResourceType.TOPIC, "t", "User:alice", AclOperation.ALL)],
                                   request_timeout=10).values():
            f.result()
    assert e.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED, e.value
    # DescribeAcls' refusal is its top-level error code, which kafka-python
    # raises (librdkafka's binding answers an empty list instead).
    from kafka.admin import (ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             KafkaAdminClient, ResourcePatternFilter)
    from kafka.admin import ResourceType as KafkaPythonResourceType
    from kafka.errors import ClusterAuthorizationFailedError

    everything = ACLFilter(principal=None, host=None, operation=ACLOperation.ANY,
                           permission_type=ACLPermissionType.ANY,
                           resource_pattern=ResourcePatternFilter(KafkaPythonResourceType.ANY, None,
                                                                  ACLResourcePatternType.ANY))
    kp_alice = KafkaAdminClient(**secured.kafka_python("alice"))
    try:
        with pytest.raises(ClusterAuthorizationFailedError):
            kp_alice.describe_acls(everything)
    finally:
        kp_alice.close()


# ---------------------------------------------------------------- produce


def test_produce_without_write_is_topic_authorization_failed_and_with_write_succeeds(secured):
    secured.create_topic("orders")
    secured.grant(acl(ResourceType.TOPIC, "orders", "User:alice", AclOperation.WRITE),
                  # bob may see the topic (so the refusal is Produce's, not Metadata's)
                  acl(ResourceType.TOPIC, "orders", "User:bob", AclOperation.DESCRIBE))
    meta = produce_kafka_python(secured, "alice", "orders", b"from-alice")
    assert not isinstance(meta, Exception), meta
    assert meta.offset == 0
    before = stored_bytes(secured.broker, "orders")
    assert_topic_authorization_failed(produce_kafka_python(secured, "bob", "orders", b"from-bob"))
    # A raw produce as User:bob's peer would be the same; none changed a byte.
    assert stored_bytes(secured.broker, "orders") == before
    meta = produce_kafka_python(secured, "alice", "orders", b"again")
    assert meta.offset == 1, "bob's refused record took no offset"


def test_prefixed_acl_grants_every_topic_with_the_prefix(secured):
    for t in ("pre-a", "pre-b", "other"):
        secured.create_topic(t)
    secured.grant(acl(ResourceType.TOPIC, "pre-", "User:alice", AclOperation.WRITE, ResourcePatternType.PREFIXED),
                  acl(ResourceType.TOPIC, "other", "User:alice", AclOperation.DESCRIBE))
    for t in ("pre-a", "pre-b"):
        assert not isinstance(produce_kafka_python(secured, "alice", t), Exception), t
    assert_topic_authorization_failed(produce_kafka_python(secured, "alice", "other"))


def test_deny_beats_allow(secured):
    for t in ("public", "secret"):
        secured.create_topic(t)
    secured.grant(acl(ResourceType.TOPIC, "*", "User:alice", AclOperation.ALL),
                  acl(ResourceType.TOPIC, "secret", "User:alice", AclOperation.WRITE,
                      permission=AclPermissionType.DENY))
    assert not isinstance(produce_kafka_python(secured, "alice", "public"), Exception)
    before = stored_bytes(secured.broker, "secret")
    assert_topic_authorization_failed(produce_kafka_python(secured, "alice", "secret"))
    assert stored_bytes(secured.broker, "secret") == before


def test_super_user_bypasses_acls_even_a_deny_all(secured):
    secured.create_topic("locked")
    secured.grant(acl(ResourceType.TOPIC, "*", "User:*", AclOperation.ALL, permission=AclPermissionType.DENY))
    assert not isinstance(produce_kafka_python(secured, ADMIN, "locked"), Exception)
    assert_topic_authorization_failed(produce_kafka_python(secured, "alice", "locked"))


# ---------------------------------------------------------------- consume, groups, metadata


def consume(secured: AclBroker, user: str, topic: str, group: str, want: int):
    """(records, first error code) of a group consumer as `user`."""
    c = Consumer({**secured.conf(user), "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "session.timeout.ms": 6000})
    c.subscribe([topic])
    got, error = [], None
    deadline = time.monotonic() + client_wait_s
    try:
        while len(got) < want and error is None and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error() is not None:
                error = m.error().code()
            else:
                got.append(m.value())
    except KafkaException as e:
        error = e.args[0].code()
    finally:
        c.close()
    return got, error


def test_consumer_without_read_on_its_group_cannot_join_and_with_it_consumes(secured):
    secured.create_topic("events")
    assert not isinstance(produce_kafka_python(secured, ADMIN, "events", b"e0"), Exception)
    secured.grant(acl(ResourceType.TOPIC, "events", "User:carol", AclOperation.READ))
    got, error = consume(secured, "carol", "events", "carol-group", 1)
    assert got == [] and error == KafkaError.GROUP_AUTHORIZATION_FAILED, (got, error)
    secured.grant(acl(ResourceType.GROUP, "carol-group", "User:carol", AclOperation.READ))
    got, error = consume(secured, "carol", "events", "carol-group", 1)
    assert got == [b"e0"] and error is None, (got, error)


def test_metadata_hides_topics_the_principal_may_not_describe(secured):
    for t in ("visible-1", "hidden-1"):
        secured.create_topic(t)
    secured.grant(acl(ResourceType.TOPIC, "visible-", "User:alice", AclOperation.DESCRIBE,
                      ResourcePatternType.PREFIXED))
    listed = set(secured.admin("alice").list_topics(timeout=10).topics)
    assert "visible-1" in listed and "hidden-1" not in listed, listed
    assert {"visible-1", "hidden-1"} <= set(secured.admin().list_topics(timeout=10).topics)
    # Named explicitly: TOPIC_AUTHORIZATION_FAILED, whether it exists or not.
    md = secured.admin("alice").list_topics("hidden-1", timeout=10)
    assert md.topics["hidden-1"].error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


# ---------------------------------------------------------------- CLI and persistence


def test_acls_cli_add_list_remove(secured):
    b = secured.broker
    cli(b, "acls", "add", "--allow-principal", "User:alice", "--operation", "Read",
        "--operation", "Describe", "--topic", "cli-t", "--group", "cli-g")
    cli(b, "acls", "add", "--deny-principal", "User:bob", "--deny-host", "10.0.0.9",
        "--operation", "Write", "--resource-pattern-type", "prefixed", "--topic", "cli-")
    import json
    listed = json.loads(cli(b, "--json", "acls", "list").stdout)["acls"]
    assert len(listed) == 5, listed
    assert {"resource_type": "TOPIC", "name": "cli-", "pattern_type": "PREFIXED", "principal": "User:bob",
            "host": "10.0.0.9", "operation": "WRITE", "permission": "DENY"} in listed
    only_topic = json.loads(cli(b, "--json", "acls", "list", "--topic", "cli-t").stdout)["acls"]
    assert {(a["operation"], a["principal"]) for a in only_topic} == {("READ", "User:alice"), ("DESCRIBE", "User:alice")}
    matching = json.loads(cli(b, "--json", "acls", "list", "--topic", "cli-t",
                              "--resource-pattern-type", "match").stdout)["acls"]
    assert len(matching) == 3, matching
    out = cli(b, "acls", "remove", "--allow-principal", "User:alice", "--operation", "Read", "--topic", "cli-t")
    assert "1 ACLs removed" in out.stdout
    cli(b, "acls", "remove", "--group", "cli-g")
    left = json.loads(cli(b, "--json", "acls", "list").stdout)["acls"]
    assert {(a["name"], a["operation"]) for a in left} == {("cli-t", "DESCRIBE"), ("cli-", "WRITE")}
    bad = cli(b, "acls", "add", "--allow-principal", "User:alice", "--operation", "Fly", "--topic", "x", check=False)
    assert bad.returncode == 2, bad


def test_acls_persist_across_restart(secured):
    cli(secured.broker, "acls", "add", "--allow-principal", "User:alice", "--operation", "Write", "--topic", "kept")
    secured.broker.restart()
    import json
    listed = json.loads(cli(secured.broker, "--json", "acls", "list").stdout)["acls"]
    assert [(a["name"], a["principal"], a["operation"]) for a in listed] == [("kept", "User:alice", "WRITE")]
    secured.create_topic("kept")
    assert not isinstance(produce_kafka_python(secured, "alice", "kept"), Exception)


# ---------------------------------------------------------------- brokers' requests


def fetch_v4(conn: kafka_raw.RawConn, topic: str, replica_id: int) -> int:
    """A Fetch v4 of partition 0 from offset 0; the partition's error code."""
    body = (kafka_raw.Writer().int32(replica_id).int32(0).int32(1).int32(1 << 20).int8(0)
            .int32(1).string(topic).int32(1).int32(0).int64(0).int32(1 << 20).bytes())
    r = kafka_raw.Reader(conn.roundtrip(kafka_raw.FETCH, 4, body))
    r.int32()  # throttle_time_ms
    topics = r.array(lambda r: (r.string(), r.array(lambda r: (r.int32(), r.int16(), r.int64(), r.int64(),
                                                               r.array(lambda r: (r.int64(), r.int64())),
                                                               r.bytes_()))))
    return topics[0][1][0][1]


def test_replica_fetch_without_cluster_action_is_refused_and_changes_nothing(broker_factory):
    broker = broker_factory(shards=1)
    with broker.raw() as conn:
        assert conn.create_topics([("rep", 1, 1)])[0]["error_code"] == 0
        batch = kafka_raw.record_batch_v2([(None, b"x")])
        assert conn.produce("rep", 0, batch)["error_code"] == 0
        assert fetch_v4(conn, "rep", replica_id=-1) == 0
    broker.stop()
    broker.extra_args += ["--authorizer", "acl", "--super-users", "User:admin"]
    broker.start()
    before = stored_bytes(broker, "rep")
    with broker.raw() as conn:  # PLAINTEXT: User:ANONYMOUS, no ACL at all
        assert fetch_v4(conn, "rep", replica_id=1) == TOPIC_AUTHORIZATION_FAILED
        assert fetch_v4(conn, "rep", replica_id=-1) == TOPIC_AUTHORIZATION_FAILED
        assert conn.produce("rep", 0, batch)["error_code"] == TOPIC_AUTHORIZATION_FAILED
        md = conn.metadata(None)
        assert md["topics"] == [], "an undescribable topic is not listed"
        assert conn.create_topics([("new", 1, 1)])[0]["error_code"] == TOPIC_AUTHORIZATION_FAILED
    assert stored_bytes(broker, "rep") == before
    assert not list(broker.data_dir.glob("new-*"))


def test_acl_apis_without_authorizer_answer_security_disabled(broker_factory):
    broker = broker_factory(shards=1)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    with pytest.raises(KafkaException) as e:
        for f in admin.create_acls([acl(ResourceType.TOPIC, "t", "User:a", AclOperation.READ)],
                                   request_timeout=10).values():
            f.result()
    assert e.value.args[0].code() == KafkaError.SECURITY_DISABLED, e.value


def test_rf3_cluster_with_authorizer_replicates_when_brokers_are_super_users(broker_factory):
    """The brokers' replica fetches come over PLAINTEXT as User:ANONYMOUS,
    made a super user here: with min.insync.replicas=3, an acks=all
    produce is answered only if both followers replicate."""
    import clients
    from test_cluster import Cluster
    from test_replication import REPLICA_LAG_MS, create_rf3, isr

    cluster = Cluster(broker_factory, extra_args=[
        "--replica-lag-time-max-ms", str(REPLICA_LAG_MS),
        "--authorizer", "acl", "--super-users", "User:ANONYMOUS"]).start()
    topic = f"acl-repl-{uuid.uuid4().hex[:8]}"
    create_rf3(cluster, topic, 1, min_insync=3)
    records = [(f"k{i}".encode(), f"v{i}".encode(), 0) for i in range(100)]
    clients.produce_all(cluster.bootstrap(), topic, records, acks="all")
    md = cluster.wait_for("the ISR still whole", lambda md: isr(md, topic)[0] == [1, 2, 3],
                          via=1, topics=[topic])
    assert isr(md, topic)[0] == [1, 2, 3]
