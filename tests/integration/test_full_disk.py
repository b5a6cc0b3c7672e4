"""A full disk for real (issue 5, limits): the broker's data dir is a
64 MiB ext4 image mounted through a loop device and filled by a dummy
file. A produce that needs space gets KAFKA_STORAGE_ERROR (56), nothing
partial becomes visible, and once the dummy file is deleted the next
produce succeeds without a restart; every acknowledged record reads back
at its offset.

Needs root and loop mounts; skipped (with the reason) only when the
mount itself is refused."""

from __future__ import annotations

import errno
import os
import subprocess
import time

import pytest

from clients import consume_all, create_topic
from kafka_raw import record_batch_v2

KAFKA_STORAGE_ERROR = 56
image_mib = 64
value_bytes = 60_000


def mount_image(image, target) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for a loop mount")
    subprocess.run(["truncate", "-s", f"{image_mib}M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    target.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-o", "loop", str(image), str(target)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"loop mount refused: {r.stderr.strip()}")


def fill(path) -> int:
    """Writes `path` until the file system is full; returns bytes written."""
    written = 0
    with open(path, "wb", buffering=0) as f:
        for chunk in (1 << 20, 4096):
            block = b"\0" * chunk
            while True:
                try:
                    f.write(block)
                    written += chunk
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
        try:
            os.fsync(f.fileno())
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
    return written


def test_full_disk_storage_error_then_recovers_without_restart(broker_factory, tmp_path):
    b = broker_factory(start=False)
    image = tmp_path / "disk.img"
    mount_image(image, b.data_dir)
    try:
        b.start()
        topic = "full"
        create_topic(b.bootstrap, topic, 1, {"segment.bytes": str(1 << 20)})
        acked: dict[int, bytes] = {}

        def produce(c, tag: str) -> dict:
            value = tag.encode() + b"." * (value_bytes - len(tag))
            r = c.produce(topic, 0, record_batch_v2([(tag.encode(), value)]))
            if r["error_code"] == 0:
                acked[r["base_offset"]] = value
            return r

        with b.raw() as c:
            for i in range(10):
                assert produce(c, f"before-{i}")["error_code"] == 0
            filler = b.data_dir / "filler"
            fill(filler)
            # The active segment's preallocated space may take a few more
            # batches; a roll then needs space the disk no longer has.
            codes = [produce(c, f"full-{i}")["error_code"] for i in range(60)]
            assert KAFKA_STORAGE_ERROR in codes, f"no storage error with a full disk: {codes}"
            assert set(codes) <= {0, KAFKA_STORAGE_ERROR}, codes
            first_error = codes.index(KAFKA_STORAGE_ERROR)
            assert all(code == KAFKA_STORAGE_ERROR for code in codes[first_error:]), codes
            # Still full after the retry interval: still refused, broker up.
            time.sleep(0.7)
            assert produce(c, "still-full")["error_code"] == KAFKA_STORAGE_ERROR
            assert b.alive()

            filler.unlink()
            deadline = time.monotonic() + 15
            while True:
                r = produce(c, "after")
                if r["error_code"] == 0:
                    break
                assert r["error_code"] == KAFKA_STORAGE_ERROR, r
                assert time.monotonic() < deadline, "produce did not recover after space was freed"
                time.sleep(0.3)
            for i in range(10):
                assert produce(c, f"after-{i}")["error_code"] == 0

        got = consume_all(b.bootstrap, topic, [0], **{"isolation.level": "read_uncommitted"})
        offsets = [r.offset for r in got]
        assert offsets == list(range(len(got))), "dense from 0: nothing partial, no gap"
        assert {r.offset: r.value for r in got} == acked, "exactly the acknowledged records"
        log = b.log_path.read_text(errors="replace")
        assert "disk full" in log and "back online" in log
        b.stop()
    finally:
        if b.alive():
            b.kill9()
        subprocess.run(["umount", "-l", str(b.data_dir)], check=False)
