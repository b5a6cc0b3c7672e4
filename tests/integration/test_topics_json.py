"""Start-up with a hand-edited `meta/topics.json`: a bad topic config value
stops the broker with one line naming the file, topic, key and value, and
exit status 1, instead of a panic where the value is parsed."""

from __future__ import annotations

import json
import subprocess

from clients import create_topic

start_wait_s_max = 30
EXIT_START_FAILED = 1


def edit_topic_configs(broker, topic: str, configs: dict[str, str]) -> None:
    path = broker.data_dir / "meta" / "topics.json"
    state = json.loads(path.read_text())
    (entry,) = [t for t in state["topics"] if t["name"] == topic]
    entry["configs"] = configs
    path.write_text(json.dumps(state))


def start_and_expect_refusal(broker) -> str:
    """Runs the broker in the foreground; returns its one error line."""
    run = subprocess.run(broker.args(), capture_output=True, timeout=start_wait_s_max, cwd=broker.workdir)
    stderr = run.stderr.decode(errors="replace")
    assert run.returncode == EXIT_START_FAILED, f"exit {run.returncode}\n{stderr}"
    assert "panicked" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("corestreamd: ")]
    assert len(lines) == 1, stderr
    return lines[0]


def test_topics_json_bad_config_value_refuses_start(broker):
    create_topic(broker.bootstrap, "hand-edited", 1, config={"retention.ms": "60000"})
    broker.stop()
    edit_topic_configs(broker, "hand-edited", {"retention.ms": "one-week"})
    line = start_and_expect_refusal(broker)
    for part in ("topics.json", "hand-edited", "retention.ms", "one-week"):
        assert part in line, f"{part!r} missing in: {line}"
    # Mended, the broker starts again with the topic.
    edit_topic_configs(broker, "hand-edited", {"retention.ms": "120000"})
    broker.start()
    broker.assert_alive()


def test_topics_json_unknown_config_key_refuses_start(broker):
    create_topic(broker.bootstrap, "hand-edited-key", 1)
    broker.stop()
    edit_topic_configs(broker, "hand-edited-key", {"retention.msec": "1000"})
    line = start_and_expect_refusal(broker)
    assert "retention.msec" in line and "hand-edited-key" in line, line
