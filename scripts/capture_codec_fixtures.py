#!/usr/bin/env python3
"""Captures one RecordBatch per codec as librdkafka (confluent-kafka) writes
it, for the unit tests of src/protocol/compression.rs.

Usage: capture_codec_fixtures.py CORESTREAMD OUT_DIR
Starts the broker on a temporary data dir, produces three records
(k0=v0, k1=tombstone, k2=v2 x 50) in one batch per codec, and copies each
partition's first batch out of its segment file to OUT_DIR/librdkafka_<codec>.bin.
"""

import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

CODECS = ["gzip", "snappy", "lz4", "zstd"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    binary, out = sys.argv[1], Path(sys.argv[2])
    with tempfile.TemporaryDirectory() as data:
        port = free_port()
        broker = subprocess.Popen([binary, "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{free_port()}", "--data-dir", data, "--shards", "1"])
        try:
            bootstrap = f"127.0.0.1:{port}"
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    time.sleep(0.1)
            admin = AdminClient({"bootstrap.servers": bootstrap})
            for f in admin.create_topics([NewTopic(f"fx-{c}", 1, 1) for c in CODECS]).values():
                f.result(30)
            for codec in CODECS:
                p = Producer({"bootstrap.servers": bootstrap, "compression.type": codec, "linger.ms": 100})
                for key, value in [(b"k0", b"v0"), (b"k1", None), (b"k2", b"v2" * 50)]:
                    p.produce(f"fx-{codec}", key=key, value=value, partition=0, timestamp=1_700_000_000_000)
                assert p.flush(30) == 0
        finally:
            broker.terminate()
            broker.wait(30)
        for codec in CODECS:
            seg = sorted((Path(data) / f"fx-{codec}-0").glob("*.log"))[0].read_bytes()
            length = struct.unpack(">i", seg[8:12])[0]
            (out / f"librdkafka_{codec}.bin").write_bytes(seg[: length + 12])
            print(codec, length + 12, "bytes")


if __name__ == "__main__":
    main()
