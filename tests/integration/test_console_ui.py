"""The web console in a real browser: Debian's headless Chromium, driven by
playwright-core (tests/js/console_ui.js), against a real broker with a
topic, records and a consumer group made by real clients. Screenshots of
each page are kept under the test's tmp dir and copied to
target/console-screenshots/. It never skips: without node, Chromium or
playwright-core it fails (scripts/lib/deps.sh installs all three)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

import clients

JS_DIR = Path(__file__).resolve().parents[1] / "js"
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS_KEPT = REPO / "target" / "console-screenshots"
browser_run_s_max = 180
topic = "console-orders"
markup_topic = "console-markup"
group = "console-billing"
produced = 12
committed = 5
# A record whose key, value and header are HTML: the page must show them as text.
markup_key = "<script>window.__xss = 1</script>"
markup_value = '<img src=x onerror="window.__xss = 2"><b>bold</b>'
markup_header = ("<i>h</i>", b"</td><script>window.__xss = 3</script>")


def chromium_path() -> str | None:
    """$CHROMIUM, else Debian's chromium on PATH."""
    return os.environ.get("CHROMIUM") or shutil.which("chromium")


def test_console_in_headless_chromium(broker, tmp_path):
    node = shutil.which("node")
    chromium = chromium_path()
    assert node is not None, "node not installed (scripts/lib/deps.sh installs it)"
    assert chromium is not None and Path(chromium).exists(), \
        "chromium not installed (scripts/lib/deps.sh: apt-get install chromium)"
    assert (JS_DIR / "node_modules" / "playwright-core").is_dir(), \
        "playwright-core not installed (scripts/lib/deps.sh: npm ci in tests/js)"

    clients.create_topic(broker.bootstrap, topic, 1)
    p = clients.producer(broker.bootstrap)
    p.produce(topic, key=b"order-1", value=b'{"id":1,"item":"book","qty":2}', headers=[("source", b"web")], partition=0)
    for i in range(2, produced + 1):
        p.produce(topic, key=f"order-{i}".encode(), value=f'{{"id":{i}}}'.encode(), partition=0)
    clients.create_topic(broker.bootstrap, markup_topic, 1)
    p.produce(markup_topic, key=markup_key.encode(), value=markup_value.encode(), headers=[markup_header], partition=0)
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    clients.wait_for("assignment", lambda: c.poll(0.2) is not None or c.assignment(), timeout_s=60)
    c.commit(offsets=[TopicPartition(topic, 0, committed)], asynchronous=False)
    c.close()  # the consumer stops: its lag stays

    shots = tmp_path / "screenshots"
    run = subprocess.run([node, str(JS_DIR / "console_ui.js"), broker.admin_url, str(shots), topic, group,
                          markup_topic],
                         capture_output=True, text=True, timeout=browser_run_s_max,
                         env={**os.environ, "CHROMIUM": chromium})
    if shots.is_dir():
        SCREENSHOTS_KEPT.mkdir(parents=True, exist_ok=True)
        for png in shots.glob("*.png"):
            shutil.copy(png, SCREENSHOTS_KEPT / png.name)
    assert run.returncode == 0, run.stderr[-4000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])

    assert seen["page_errors"] == []
    # HTML in a record is shown as text: nothing of it became markup or ran
    assert seen["markup_key"] == markup_key and seen["markup_value"] == markup_value
    assert seen["markup_headers"] == f"{markup_header[0]}: {markup_header[1].decode()}"
    assert seen["markup_elements"] == 0 and seen["xss"] is None
    assert seen["topic_messages"] == produced
    assert (seen["key"], seen["headers"]) == ("order-1", "source: web")
    assert seen["value"] == '{"id":1,"item":"book","qty":2}'
    assert seen["value_json"] == json.dumps({"id": 1, "item": "book", "qty": 2}, indent=2)
    with urllib.request.urlopen(f"{broker.admin_url}/v1/topics/{topic}/configs", timeout=30) as r:
        docs = {c["name"]: c["documentation"] for c in json.loads(r.read())["configs"]}
    assert docs["retention.ms"] and seen["retention_doc"] == docs["retention.ms"]
    assert (seen["committed_before"], seen["lag"]) == (committed, produced - committed)
    assert seen["status"] in ("OK", "WARNING", "ERROR", "STOPPED", "STALLED")
    assert seen["group_status"] in ("OK", "WARNING", "ERROR")
    assert seen["dry_run_text"].startswith("dry run") and seen["planned_offset"] == produced
    assert seen["committed_after"] == produced
    # the broker agrees: a client reads the moved offset
    check = clients.consumer(broker.bootstrap, **{"group.id": group})
    assert check.committed([TopicPartition(topic, 0)], timeout=20)[0].offset == produced
    check.close()
    names = {p.name for p in shots.glob("*.png")}
    assert {"overview.png", "topics.png", "messages.png", "messages-json.png", "messages-markup.png", "group.png",
            "reset-dry-run.png", "reset-executed.png"} <= names
