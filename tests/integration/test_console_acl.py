"""The web console under the ACL authorizer (issue 24): it acts as
`--admin-ui-principal` and shows and does only what that principal may
(src/console/access.rs, docs/CONSOLE.md "Access control").

The broker runs `--authorizer acl` with User:ANONYMOUS, the PLAINTEXT
listener's clients (the operator's, on loopback), as the super user that
creates topics, records, groups and ACLs with real clients
(confluent-kafka); the console's principal is User:console. Every console
answer is checked against what the broker holds, read back with clients.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

import clients
from test_console_api import call, ok
from test_console_ui import JS_DIR, SCREENSHOTS_KEPT, browser_run_s_max, chromium_path

CONSOLE = "User:console"
visible, hidden = "acl-visible", "acl-hidden"
group = "acl-group"
acl_wait_s = 20.0


def acl_broker(broker_factory, super_users: str):
    return broker_factory(extra_args=["--authorizer", "acl", "--super-users", super_users,
                                      "--admin-ui-principal", CONSOLE])


def grant(broker, resource: ResourceType, name: str, op: AclOperation) -> None:
    admin = clients.admin(broker.bootstrap)  # User:ANONYMOUS, a super user
    binding = AclBinding(resource, name, ResourcePatternType.LITERAL, CONSOLE, "*", op, AclPermissionType.ALLOW)
    for f in admin.create_acls([binding], request_timeout=10).values():
        f.result()


def topic_names(broker) -> set[str]:
    return {t["name"] for t in ok(broker, "GET", "/v1/topics")["topics"]}


def assert_denied(broker, method: str, path: str, operation: str, resource_type: str, resource: str, body=None):
    status, err = call(broker, method, path, body)
    assert status == 403, (method, path, status, err)
    assert (err["missing_operation"], err["resource_type"], err["resource"], err["principal"]) == \
        (operation, resource_type, resource, CONSOLE), err
    assert f"{CONSOLE} may not {operation}" in err["error"], err


def setup_topics_and_group(broker) -> None:
    for t in (visible, hidden):
        clients.create_topic(broker.bootstrap, t, 1)
        clients.produce_all(broker.bootstrap, t, [(b"k", f"in {t}".encode())])
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition(visible, 0, 1), TopicPartition(hidden, 0, 1)], asynchronous=False)
    c.close()


def test_console_acl_shows_only_what_its_principal_may_and_names_the_missing_operation(broker_factory):
    b = acl_broker(broker_factory, "User:ANONYMOUS")
    setup_topics_and_group(b)
    # nothing granted yet: no topic listed, no group, no overview
    assert topic_names(b) == set()
    assert ok(b, "GET", "/v1/groups?details=true")["groups"] == []
    assert_denied(b, "GET", "/v1/overview", "DESCRIBE", "CLUSTER", "kafka-cluster")

    grant(b, ResourceType.TOPIC, visible, AclOperation.DESCRIBE)
    clients.wait_for("the ACL in the console's view", lambda: topic_names(b) == {visible}, timeout_s=acl_wait_s)
    listed = ok(b, "GET", "/v1/topics")["topics"]
    assert [(t["name"], t["messages"]) for t in listed] == [(visible, 1)], listed
    assert ok(b, "GET", f"/v1/topics/{visible}")["partitions"][0]["messages"] == 1
    assert_denied(b, "GET", f"/v1/topics/{hidden}", "DESCRIBE", "TOPIC", hidden)
    # DESCRIBE is not READ: browsing either topic is refused, naming READ
    assert_denied(b, "GET", f"/v1/topics/{hidden}/messages", "READ", "TOPIC", hidden)
    assert_denied(b, "GET", f"/v1/topics/{visible}/messages", "READ", "TOPIC", visible)
    # producing without WRITE: refused, and nothing was written
    assert_denied(b, "POST", f"/v1/topics/{visible}/messages", "WRITE", "TOPIC", visible, {"value": "x"})
    assert clients.watermarks(b.bootstrap, visible, 0) == (0, 1)
    # topic admin: each refused with its own operation, nothing changed
    assert_denied(b, "POST", "/v1/topics", "CREATE", "CLUSTER", "kafka-cluster", {"name": "acl-new"})
    assert clients.partition_count(b.bootstrap, "acl-new") is None
    assert_denied(b, "POST", f"/v1/topics/{visible}/delete", "DELETE", "TOPIC", visible)
    assert_denied(b, "POST", f"/v1/topics/{visible}/empty", "DELETE", "TOPIC", visible)
    assert_denied(b, "POST", f"/v1/topics/{visible}/partitions", "ALTER", "TOPIC", visible, {"count": 2})
    assert_denied(b, "GET", f"/v1/topics/{visible}/configs", "DESCRIBE_CONFIGS", "TOPIC", visible)
    assert_denied(b, "POST", f"/v1/topics/{visible}/configs", "ALTER_CONFIGS", "TOPIC", visible,
                  {"set": {"retention.ms": "1000"}})
    assert clients.partition_count(b.bootstrap, visible) == 1
    assert clients.watermarks(b.bootstrap, visible, 0) == (0, 1)
    # groups: DESCRIBE, DELETE and READ on the group
    assert_denied(b, "GET", f"/v1/groups/{group}", "DESCRIBE", "GROUP", group)
    assert_denied(b, "POST", f"/v1/groups/{group}/delete", "DELETE", "GROUP", group)
    assert_denied(b, "POST", f"/v1/groups/{group}/reset", "READ", "GROUP", group,
                  {"topic": visible, "to": "earliest"})
    grant(b, ResourceType.GROUP, group, AclOperation.DESCRIBE)
    clients.wait_for("the group listed", lambda: [g["group"] for g in ok(b, "GET", "/v1/groups?details=true")["groups"]]
                     == [group], timeout_s=acl_wait_s)
    # its lag rows: only the topic the principal may DESCRIBE
    g = ok(b, "GET", f"/v1/groups/{group}")
    assert [(p["topic"], p["committed_offset"]) for p in g["partitions"]] == [(visible, 1)], g

    # READ and WRITE granted: browsing and producing work, a client reads the record
    grant(b, ResourceType.TOPIC, visible, AclOperation.READ)
    grant(b, ResourceType.TOPIC, visible, AclOperation.WRITE)
    clients.wait_for("READ in the console's view",
                     lambda: call(b, "GET", f"/v1/topics/{visible}/messages")[0] == 200, timeout_s=acl_wait_s)
    assert [m["value"] for m in ok(b, "GET", f"/v1/topics/{visible}/messages")["messages"]] == [f"in {visible}"]
    assert ok(b, "POST", f"/v1/topics/{visible}/messages", {"value": "from the console"})["offset"] == 1
    recs = clients.consume_all(b.bootstrap, visible, 1, expect=2)
    assert [r.value for r in recs] == [f"in {visible}".encode(), b"from the console"]
    assert_denied(b, "GET", f"/v1/topics/{hidden}/messages", "READ", "TOPIC", hidden)

    # the admin port's own routes are the admin token's, not the ACLs'
    status, groups = call(b, "GET", "/v1/groups")
    assert status == 200 and group in groups["groups"], groups
    status, lag = call(b, "GET", f"/v1/groups/{group}/lag")
    assert status == 200 and {p["topic"] for p in lag["partitions"]} == {visible, hidden}, lag
    # each refusal left a line naming the principal and what it lacked
    log = b.log_tail()
    denials = [line for line in log.splitlines() if "console request denied by the ACL authorizer" in line]
    assert any(CONSOLE in line and "WRITE" in line and visible in line for line in denials), log[-3000:]

    # the topic page in a real browser lists the one visible topic
    seen = browser_topics(b, visible)
    assert seen["page_errors"] == [] and seen["topics"] == [visible], seen


def test_console_acl_super_user_principal_sees_and_does_everything(broker_factory):
    b = acl_broker(broker_factory, f"User:ANONYMOUS;{CONSOLE}")
    setup_topics_and_group(b)
    assert {visible, hidden} <= topic_names(b)
    assert [m["value"] for m in ok(b, "GET", f"/v1/topics/{hidden}/messages")["messages"]] == [f"in {hidden}"]
    assert ok(b, "POST", f"/v1/topics/{hidden}/messages", {"value": "x"})["offset"] == 1
    assert clients.watermarks(b.bootstrap, hidden, 0) == (0, 2)
    assert ok(b, "GET", "/v1/overview")["brokers"][0]["state"] == "unfenced"
    g = ok(b, "GET", f"/v1/groups/{group}")
    assert sorted(p["topic"] for p in g["partitions"]) == sorted([visible, hidden]), g
    assert ok(b, "POST", "/v1/topics", {"name": "acl-made", "partitions": 2})["partitions"] == 2
    assert clients.partition_count(b.bootstrap, "acl-made") == 2


def browser_topics(broker, topic: str) -> dict:
    """The topic rows Debian's headless Chromium shows (tests/js/console_acl_ui.js)."""
    node, chromium = shutil.which("node"), chromium_path()
    assert node is not None, "node not installed (scripts/lib/deps.sh installs it)"
    assert chromium is not None and Path(chromium).exists(), "chromium not installed (scripts/lib/deps.sh)"
    shots = Path(broker.workdir) / "screenshots"
    run = subprocess.run([node, str(JS_DIR / "console_acl_ui.js"), broker.admin_url, str(shots), topic],
                         capture_output=True, text=True, timeout=browser_run_s_max,
                         env={**os.environ, "CHROMIUM": chromium})
    for png in shots.glob("*.png") if shots.is_dir() else []:
        SCREENSHOTS_KEPT.mkdir(parents=True, exist_ok=True)
        shutil.copy(png, SCREENSHOTS_KEPT / png.name)
    assert run.returncode == 0, run.stderr[-4000:]
    return json.loads(run.stdout.strip().splitlines()[-1])
