"""include_*_authorized_operations in Metadata, DescribeCluster and
DescribeGroups: with no authorizer, Kafka reports every operation valid
for the resource type as authorized (AclEntry.supportedOperations), and
nothing (the field's null marker) when not asked."""

from __future__ import annotations

from confluent_kafka import TopicCollection, TopicPartition
from confluent_kafka.admin import AclOperation as Op

import clients
from clients import create_topic

TOPIC_OPS = {Op.READ, Op.WRITE, Op.CREATE, Op.DELETE, Op.ALTER, Op.DESCRIBE, Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS}
GROUP_OPS = {Op.READ, Op.DESCRIBE, Op.DELETE, Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS}
CLUSTER_OPS = {Op.CREATE, Op.ALTER, Op.DESCRIBE, Op.CLUSTER_ACTION, Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS,
               Op.IDEMPOTENT_WRITE}
wait_s = 30


def test_authorized_operations_cluster_topic_group_confluent(broker):
    a = clients.admin(broker.bootstrap)
    cluster = a.describe_cluster(include_authorized_operations=True, request_timeout=20).result(wait_s)
    assert set(cluster.authorized_operations or []) == CLUSTER_OPS, cluster.authorized_operations
    plain = a.describe_cluster(request_timeout=20).result(wait_s)
    assert not plain.authorized_operations, plain.authorized_operations

    topic = "authz-ops"
    create_topic(broker.bootstrap, topic, 1)
    described = a.describe_topics(TopicCollection([topic]), include_authorized_operations=True,
                                  request_timeout=20)[topic].result(wait_s)
    assert set(described.authorized_operations or []) == TOPIC_OPS, described.authorized_operations

    group = "authz-ops-group"
    c = clients.consumer(broker.bootstrap, **{"group.id": group})
    try:  # a commit makes the (Empty) group exist
        c.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
    finally:
        c.close()
    g = a.describe_consumer_groups([group], include_authorized_operations=True,
                                   request_timeout=20)[group].result(wait_s)
    assert set(g.authorized_operations or []) == GROUP_OPS, g.authorized_operations
