"""The web console's JSON endpoints (docs/CONSOLE.md) against the real
broker, driven with plain HTTP and checked against real Kafka clients
(confluent-kafka): what a client wrote, the console shows; what the console
does (create, configs, produce, empty, reset, delete), clients see."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer, TopicPartition

import clients

http_timeout_s = 30.0
# What the console's page sends with every change (src/console/guard.rs).
CSRF_HEADER = "X-Corestream-Console"


def call(broker, method: str, path: str, body=None, raw: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(broker.admin_url + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for name, value in (headers if headers is not None else {CSRF_HEADER: "1"}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=http_timeout_s) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def ok(broker, method: str, path: str, body=None) -> dict:
    status, doc = call(broker, method, path, body)
    assert status == 200, (method, path, status, doc)
    return doc


def produce_with_headers(bootstrap: str, topic: str, records: list[tuple[bytes, bytes, list]]) -> None:
    p = clients.producer(bootstrap)
    for key, value, headers in records:
        p.produce(topic, key=key, value=value, headers=headers, partition=0)
    assert p.flush(30) == 0


def test_console_assets_and_switch(broker_factory):
    b = broker_factory()
    with urllib.request.urlopen(b.admin_url + "/ui/", timeout=http_timeout_s) as r:
        page = r.read().decode()
        assert r.headers["Content-Type"].startswith("text/html")
    assert "/ui/app.js" in page and "http" not in page.replace("http-equiv", "")
    total = 0
    for asset in ("app.js", "style.css", "chart.js"):
        with urllib.request.urlopen(f"{b.admin_url}/ui/{asset}", timeout=http_timeout_s) as r:
            total += len(r.read())
    assert total + len(page) < 1024 * 1024
    off = broker_factory(extra_args=["--admin-ui", "false"])
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(off.admin_url + "/ui/", timeout=http_timeout_s)
    assert e.value.code == 404
    # the monitoring routes stay
    with urllib.request.urlopen(off.admin_url + "/v1/health", timeout=http_timeout_s) as r:
        assert r.status == 200


def test_console_overview(broker):
    clients.create_topic(broker.bootstrap, "ov", 4)
    clients.produce_all(broker.bootstrap, "ov", [(b"k", b"v" * 100)] * 20)
    ok(broker, "GET", "/v1/overview")
    time.sleep(1.2)  # a second sample, so rates and history exist
    o = ok(broker, "GET", "/v1/overview")
    assert len(o["brokers"]) == 1 and o["brokers"][0]["port"] == broker.port
    # a single node: its own only broker, unfenced, and its own controller
    # (DescribeQuorum answers it as the only voter, epoch 0, no Raft log)
    [b] = o["brokers"]
    assert (b["state"], b["fenced"], b["controller"], b["local"]) == ("unfenced", False, True, True), b
    assert o["cluster_mode"] is False and o["controller_id"] == b["node_id"]
    q = o["quorum"]
    assert (q["leader_id"], q["epoch"], q["high_watermark"]) == (b["node_id"], 0, None), q
    assert q["voters"] == [{"id": b["node_id"], "log_end_offset": None, "lag": None}], q
    assert o["topics"] >= 1
    assert len(o["shards"]) == 2
    assert sum(s["partitions"] for s in o["shards"]) >= 4
    assert o["disk_bytes"] > 2000 and sum(s["bytes_in_total"] for s in o["shards"]) > 2000
    assert len(o["history"]) == 2 and all(len(h) >= 1 for h in o["history"])


def test_console_topic_lifecycle(broker):
    doc = ok(broker, "POST", "/v1/topics", {"name": "life", "partitions": 2, "configs": {"retention.ms": "600000"}})
    assert doc["partitions"] == 2
    assert clients.partition_count(broker.bootstrap, "life") == 2
    status, err = call(broker, "POST", "/v1/topics", {"name": "life", "partitions": 2})
    assert status == 409 and err["kafka_error_code"] == 36, err
    clients.produce_all(broker.bootstrap, "life", [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")])
    listed = {t["name"]: t for t in ok(broker, "GET", "/v1/topics")["topics"]}
    assert listed["life"]["messages"] == 3 and listed["life"]["partitions"] == 2
    assert listed["life"]["replication_factor"] == 1 and listed["life"]["size_bytes"] > 0
    desc = ok(broker, "GET", "/v1/topics/life")
    assert sum(p["messages"] for p in desc["partitions"]) == 3

    cfg = {c["name"]: c for c in ok(broker, "GET", "/v1/topics/life/configs")["configs"]}
    assert cfg["retention.ms"]["value"] == "600000" and cfg["retention.ms"]["source"] == "topic"
    assert cfg["cleanup.policy"]["documentation"], "configs carry Kafka's documentation"
    cfg = {c["name"]: c for c in ok(broker, "POST", "/v1/topics/life/configs",
                                    {"set": {"cleanup.policy": "compact"}, "delete": ["retention.ms"]})["configs"]}
    assert cfg["cleanup.policy"]["value"] == "compact" and cfg["retention.ms"]["source"] != "topic"
    status, err = call(broker, "POST", "/v1/topics/life/configs", {"set": {"no.such.config": "1"}})
    assert status == 400 and "kafka_error" in err

    ok(broker, "POST", "/v1/topics/life/partitions", {"count": 3})
    clients.wait_for_partitions(broker.bootstrap, "life", 3)
    emptied = ok(broker, "POST", "/v1/topics/life/empty")
    assert len(emptied["partitions"]) == 3
    for p in range(3):
        low, high = clients.watermarks(broker.bootstrap, "life", p)
        assert low == high
    assert {t["name"]: t for t in ok(broker, "GET", "/v1/topics")["topics"]}["life"]["messages"] == 0

    ok(broker, "POST", "/v1/topics/life/delete")
    status, err = call(broker, "GET", "/v1/topics/life")
    assert status == 404, err
    status, err = call(broker, "POST", "/v1/topics/life/delete")
    assert status == 404, err


def test_console_bad_input_gets_json_errors(broker):
    clients.create_topic(broker.bootstrap, "bad", 1)
    cases = [
        ("POST", "/v1/topics", None, b"{not json"),
        ("POST", "/v1/topics", None, b'{"name": "x", "surprise": 1}'),
        ("POST", "/v1/topics/bad/partitions", {"count": "many"}, None),
        ("GET", "/v1/topics/bad/messages?partition=zero", None, None),
        ("GET", "/v1/topics/bad/messages?from=yesterday", None, None),
        ("GET", "/v1/topics/bad/messages?decode=xml", None, None),
        ("POST", "/v1/groups/g/reset", {"topic": "bad", "to": "offset"}, None),
        ("POST", "/v1/topics/bad/messages", {"partition": 7, "value": "x"}, None),
    ]
    for method, path, body, raw in cases:
        status, err = call(broker, method, path, body, raw)
        assert status == 400 and err.get("error"), (path, status, err)
    for path in ("/v1/topics/none/messages", "/v1/topics/bad/messages?partition=5", "/v1/nothing"):
        status, err = call(broker, "GET", path)
        assert status == 404 and err.get("error"), (path, status, err)
    for method in ("PATCH", "PUT", "DELETE", "OPTIONS"):
        status, err = call(broker, method, "/v1/topics")
        assert status == 405 and err["error"], (method, status, err)
    # bounded body: over HTTP_BODY_BYTES_MAX is refused before it is read
    status, err = call(broker, "POST", "/v1/topics/bad/messages", raw=b"x" * (300 * 1024))
    assert status == 413, err
    with socket.create_connection(("127.0.0.1", broker.admin_port), timeout=10) as s:
        s.sendall(b"POST /v1/topics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    assert call(broker, "GET", "/v1/topics")[0] == 200, "the broker still serves"
    # browsing an unknown topic must not create it
    assert clients.partition_count(broker.bootstrap, "none") is None


def test_console_message_browser(broker):
    clients.create_topic(broker.bootstrap, "browse", 1)
    before_ms = int(time.time() * 1000)
    produce_with_headers(broker.bootstrap, "browse", [
        (b"user-1", b'{"name":"ada","n":1}', [("trace", b"t-1")]),
        (b"user-2", b"plain text", [("trace", b"t-2")]),
        (b"user-3", b"\x00\x01\xff", []),
    ])
    doc = ok(broker, "GET", "/v1/topics/browse/messages?from=beginning")
    rows = doc["messages"]
    assert [r["offset"] for r in rows] == [0, 1, 2] and doc["high_watermark"] == 3 and doc["next_offset"] == 3
    assert rows[0]["key"] == "user-1" and rows[0]["headers"] == [{"key": "trace", "value": "t-1"}]
    assert rows[0]["value_is_json"] and rows[0]["timestamp"] >= before_ms - 1000
    pretty = ok(broker, "GET", "/v1/topics/browse/messages?decode=json&limit=1")["messages"][0]
    assert pretty["value"] == json.dumps({"name": "ada", "n": 1}, indent=2)
    hexed = ok(broker, "GET", "/v1/topics/browse/messages?from=offset&offset=2&decode=hex")["messages"]
    assert [r["value"] for r in hexed] == ["0001ff"]
    assert [r["offset"] for r in ok(broker, "GET", "/v1/topics/browse/messages?from=end&limit=2")["messages"]] == [1, 2]
    later = ok(broker, "GET", f"/v1/topics/browse/messages?from=timestamp&timestamp={int(time.time() * 1000) + 60000}")
    assert later["messages"] == []
    at = ok(broker, "GET", f"/v1/topics/browse/messages?from=timestamp&timestamp={before_ms - 1000}")
    assert at["messages"][0]["offset"] == 0
    # filters on key, value and header text
    q = "/v1/topics/browse/messages?"
    assert [r["offset"] for r in ok(broker, "GET", q + "key=USER-2")["messages"]] == [1]
    assert [r["offset"] for r in ok(broker, "GET", q + "value=ada")["messages"]] == [0]
    assert [r["offset"] for r in ok(broker, "GET", q + "header=t-2")["messages"]] == [1]
    # produce from the console, then a tail poll from next_offset sees it
    written = ok(broker, "POST", "/v1/topics/browse/messages",
                 {"key": "console", "value": '{"from":"console"}', "headers": [{"key": "src", "value": "ui"}]})
    assert written["offset"] == 3
    tail = ok(broker, "GET", "/v1/topics/browse/messages?from=offset&offset=3")
    assert [(r["key"], r["headers"][0]["value"]) for r in tail["messages"]] == [("console", "ui")]
    c = clients.consumer(broker.bootstrap)
    c.assign([TopicPartition("browse", 0, 3)])
    msg = c.poll(20)
    assert msg is not None and msg.key() == b"console" and msg.headers() == [("src", b"ui")]
    c.close()


def test_console_message_browser_bounds_a_scan(broker):
    """A filter that matches nothing stops at the scan bound and says so."""
    clients.create_topic(broker.bootstrap, "big", 1)
    value = b"v" * 10_000
    clients.produce_all(broker.bootstrap, "big", [(b"k", value)] * 1000)
    doc = ok(broker, "GET", "/v1/topics/big/messages?key=absent")
    assert doc["messages"] == [] and doc["scan_limited"], doc["scanned_bytes"]
    assert 0 < doc["next_offset"] < 1000


def stopped_group(bootstrap: str, group: str, topic: str, commit_at: int) -> None:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    clients.wait_for("assignment", lambda: c.poll(0.2) is not None or c.assignment(), timeout_s=60)
    c.commit(offsets=[TopicPartition(topic, 0, commit_at)], asynchronous=False)
    c.close()


def test_console_groups_lag_reset_delete(broker):
    clients.create_topic(broker.bootstrap, "orders", 1)
    clients.produce_all(broker.bootstrap, "orders", [(b"k", b"v")] * 10)
    stopped_group(broker.bootstrap, "billing", "orders", 4)
    groups = {g["group"]: g for g in ok(broker, "GET", "/v1/groups?details=true")["groups"]}
    assert groups["billing"]["state"] == "Empty" and groups["billing"]["type"] == "classic"
    assert "billing" in ok(broker, "GET", "/v1/groups")["groups"], "the plain list stays as it was"
    g = ok(broker, "GET", "/v1/groups/billing")
    (p,) = g["partitions"]
    assert (p["committed_offset"], p["log_end_offset"], p["lag"]) == (4, 10, 6)
    assert p["status"] in ("OK", "WARNING", "ERROR", "STOPPED", "STALLED") and g["status"] in ("OK", "WARNING", "ERROR")
    assert p["time_lag_ms"] is not None and p["time_lag_ms"] >= 0
    assert g["total_lag"] == 6 and g["members"] == [] and g["lag_history"][0]["commits"]

    plan = ok(broker, "POST", "/v1/groups/billing/reset", {"topic": "orders", "to": "offset", "offset": 8})
    assert plan["dry_run"] and plan["partitions"] == [{"partition": 0, "current_offset": 4, "new_offset": 8}]
    assert ok(broker, "GET", "/v1/groups/billing")["partitions"][0]["committed_offset"] == 4, "a dry run commits nothing"
    done = ok(broker, "POST", "/v1/groups/billing/reset", {"topic": "orders", "to": "offset", "offset": 8, "execute": True})
    assert done["executed"]
    assert ok(broker, "GET", "/v1/groups/billing")["partitions"][0]["committed_offset"] == 8
    c = clients.consumer(broker.bootstrap, **{"group.id": "billing"})
    assert c.committed([TopicPartition("orders", 0)], timeout=20)[0].offset == 8
    c.close()
    ok(broker, "POST", "/v1/groups/billing/reset", {"topic": "orders", "to": "earliest", "execute": True})
    assert ok(broker, "GET", "/v1/groups/billing")["partitions"][0]["committed_offset"] == 0
    ok(broker, "POST", "/v1/groups/billing/reset", {"topic": "orders", "to": "timestamp",
                                                  "datetime": "2000-01-01T00:00:00Z", "execute": True})
    assert ok(broker, "GET", "/v1/groups/billing")["partitions"][0]["committed_offset"] == 0

    ok(broker, "POST", "/v1/groups/billing/delete")
    assert "billing" not in {g["group"] for g in ok(broker, "GET", "/v1/groups?details=true")["groups"]}
    status, err = call(broker, "GET", "/v1/groups/billing")
    assert status == 404, err


def test_console_reset_refuses_an_active_group(broker):
    clients.create_topic(broker.bootstrap, "live", 1)
    clients.produce_all(broker.bootstrap, "live", [(b"k", b"v")] * 3)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "active", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    c.subscribe(["live"])
    clients.wait_for("assignment", lambda: c.poll(0.2) is not None or c.assignment(), timeout_s=60)
    c.commit(offsets=[TopicPartition("live", 0, 1)], asynchronous=False)
    g = ok(broker, "GET", "/v1/groups/active")
    assert len(g["members"]) == 1 and g["members"][0]["assignment"] == [{"topic": "live", "partitions": [0]}]
    status, err = call(broker, "POST", "/v1/groups/active/reset", {"topic": "live", "to": "latest", "execute": True})
    assert status == 409 and err["kafka_error_code"] == 68, err
    assert call(broker, "POST", "/v1/groups/active/delete")[0] == 409
    c.close()


def test_console_refuses_cross_site_changes(broker):
    """CSRF: a change without the console's header, from another origin or
    site, or with a method other than POST, is refused and changes nothing;
    a Host that is not loopback (DNS rebinding) is refused on a loopback
    listener; reads stay plain GETs."""
    clients.create_topic(broker.bootstrap, "guarded", 1)
    produce = ("POST", "/v1/topics/guarded/messages", {"value": "x"})
    refused = [
        {},  # a plain form post or fetch from another page: no custom header
        {CSRF_HEADER: ""},
        {CSRF_HEADER: "1", "Origin": "http://evil.example"},
        {CSRF_HEADER: "1", "Origin": "null"},
        {CSRF_HEADER: "1", "Sec-Fetch-Site": "cross-site"},
    ]
    for headers in refused:
        status, err = call(broker, *produce, headers=headers)
        assert status == 403 and err["error"], (headers, status, err)
    for path in ("/v1/topics/guarded/delete", "/v1/topics/guarded/empty", "/v1/groups/g/delete"):
        status, err = call(broker, "POST", path, headers={})
        assert status == 403, (path, status, err)
    assert clients.partition_count(broker.bootstrap, "guarded") == 1
    assert clients.watermarks(broker.bootstrap, "guarded", 0) == (0, 0), "nothing was written"
    own = {CSRF_HEADER: "1", "Origin": broker.admin_url, "Sec-Fetch-Site": "same-origin"}
    assert call(broker, *produce, headers=own)[0] == 200
    # DNS rebinding: the browser thinks evil.example is this port
    for path in ("/v1/topics", "/ui/"):
        req = urllib.request.Request(broker.admin_url + path, headers={"Host": f"evil.example:{broker.admin_port}"})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=http_timeout_s)
        assert e.value.code == 403, path
    req = urllib.request.Request(broker.admin_url + "/v1/topics", headers={"Host": f"localhost:{broker.admin_port}"})
    with urllib.request.urlopen(req, timeout=http_timeout_s) as r:
        assert r.status == 200
        # framing and inline script are off for every answer
        assert r.headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        assert r.headers.get("Access-Control-Allow-Origin") is None


def test_console_refuses_changes_to_internal_topics(broker):
    clients.create_topic(broker.bootstrap, "plain", 1)
    stopped_group(broker.bootstrap, "holder", "plain", 0)  # __consumer_offsets now exists
    assert "__consumer_offsets" in {t["name"] for t in ok(broker, "GET", "/v1/topics")["topics"]}
    for topic in ("__consumer_offsets", "__transaction_state"):
        changes = [
            ("POST", f"/v1/topics/{topic}/messages", {"value": "x"}),
            ("POST", f"/v1/topics/{topic}/empty", None),
            ("POST", f"/v1/topics/{topic}/delete", None),
            ("POST", f"/v1/topics/{topic}/partitions", {"count": 99}),
            ("POST", f"/v1/topics/{topic}/configs", {"set": {"retention.ms": "1"}}),
            ("POST", "/v1/topics", {"name": topic}),
            ("POST", "/v1/groups/holder/reset", {"topic": topic, "to": "earliest", "execute": True}),
        ]
        for method, path, body in changes:
            status, err = call(broker, method, path, body)
            assert status == 403 and "internal topic" in err["error"], (path, status, err)
    # reading it stays possible
    assert call(broker, "GET", "/v1/topics/__consumer_offsets/messages?limit=1")[0] == 200


def test_console_record_text_is_data_not_markup(broker):
    """A record holding HTML comes back as the same text in JSON (the page
    escapes it; tests/js/console_ui.js checks the rendering)."""
    clients.create_topic(broker.bootstrap, "markup", 1)
    key, value = "<script>alert(1)</script>", '<img src=x onerror="alert(2)">'
    ok(broker, "POST", "/v1/topics/markup/messages",
       {"key": key, "value": value, "headers": [{"key": "<b>h</b>", "value": "</td><script>"}]})
    (row,) = ok(broker, "GET", "/v1/topics/markup/messages")["messages"]
    assert (row["key"], row["value"]) == (key, value)
    assert row["headers"] == [{"key": "<b>h</b>", "value": "</td><script>"}]
