"""A Go client: sarama 1.22 from Debian (golang-github-shopify-sarama-dev),
so a third client family (beside librdkafka and the Python clients) guards
compatibility. tests/go/saramacheck does one produce / consume / consumer
group round trip with a Kafka 2.1 configuration, and with Burrow's packaged
Kafka 0.10 configuration the versions Kafka 4 removed and this broker still
serves (CreateTopics v0, DescribeConfigs v0, ListOffsets v0, OffsetCommit
v0-1, OffsetFetch v0, DeleteTopics v0).

The program is built offline in GOPATH mode against Debian's sources (no
module proxy) and cached under the target dir, keyed by a hash of its
sources and the Go version.

segmentio/kafka-go is not here: Debian 12 packages 0.2.1, which produces
with Produce v2 and fetches with Fetch v2 (MessageSet v1), the old formats
Kafka 4 and this broker refuse.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from conftest import REPO_ROOT

go_source_dir = REPO_ROOT / "tests/go/saramacheck"
go_build_s_max = 300
go_run_s_max = 180


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GO111MODULE="off",
        GOPATH="/usr/share/gocode",
        GOPROXY="off",
        GOFLAGS="",
        GOCACHE=str(go_dir() / "cache"),
    )
    return env


def go_dir() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target"))
    return target / "go"


def saramacheck_binary() -> Path:
    """Builds tests/go/saramacheck unless a build of these sources exists."""
    go = shutil.which("go")
    assert go, "go not installed (scripts/test installs golang-go)"
    assert Path("/usr/share/gocode/src/github.com/Shopify/sarama").is_dir(), (
        "sarama sources missing (scripts/test installs golang-github-shopify-sarama-dev)"
    )
    digest = hashlib.sha256()
    digest.update(subprocess.run([go, "version"], capture_output=True, check=True).stdout)
    for src in sorted(go_source_dir.glob("*.go")):
        digest.update(src.name.encode())
        digest.update(src.read_bytes())
    binary = go_dir() / f"saramacheck-{digest.hexdigest()[:16]}"
    if binary.exists():
        return binary
    go_dir().mkdir(parents=True, exist_ok=True)
    partial = binary.with_suffix(".partial")
    res = subprocess.run(
        [go, "build", "-o", str(partial), "."],
        cwd=go_source_dir,
        env=go_env(),
        capture_output=True,
        timeout=go_build_s_max,
    )
    assert res.returncode == 0, f"go build failed: {res.stderr.decode()[-4000:]}"
    partial.rename(binary)
    return binary


def test_go_sarama_round_trip(broker):
    binary = saramacheck_binary()
    res = subprocess.run(
        [
            str(binary),
            "-brokers",
            broker.bootstrap,
            "-topic",
            "sarama-check",
            "-group",
            "sarama-check-group",
            "-messages",
            "20",
        ],
        capture_output=True,
        timeout=go_run_s_max,
    )
    out = res.stdout.decode()
    assert res.returncode == 0, f"saramacheck failed:\n{out}\n{res.stderr.decode()[-4000:]}"
    for line in (
        "created topic (CreateTopics v0)",
        "(DescribeConfigs v0)",
        "produced 20 records (Produce v3)",
        "consumed 20 records (Fetch v4)",
        "group sarama-check-group consumed 20 records",
        "listed offsets 0..20 (ListOffsets v0)",
        "group sarama-check-group committed offset 20 (OffsetFetch v0)",
        "committed and read back offset 5 (OffsetCommit v0, OffsetFetch v0)",
        "deleted topic (DeleteTopics v0)",
    ):
        assert line in out, f"missing {line!r} in:\n{out}"
    assert out.rstrip().endswith("OK"), out
    broker.assert_alive()
