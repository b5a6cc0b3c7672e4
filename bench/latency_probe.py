#!/usr/bin/env python3
"""Produce latency with one record in flight (acks=all, 1 KiB): time from
produce() to its delivery report, i.e. request + append + fdatasync + answer.
Prints p50/p90/p99/p99.9/max in ms. Client: librdkafka via confluent-kafka."""

from __future__ import annotations

import argparse
import time

from confluent_kafka import Producer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--size", type=int, default=1024)
    args = ap.parse_args()
    p = Producer({"bootstrap.servers": args.bootstrap, "acks": "all", "linger.ms": 0})
    value = b"x" * args.size
    lat: list[float] = []
    for _ in range(args.count + 100):
        done: list[float] = []
        t0 = time.perf_counter()
        p.produce("latency-probe", value, on_delivery=lambda err, msg: done.append(time.perf_counter()))
        while not done:
            p.poll(0.0005)
        lat.append(done[0] - t0)
    lat = sorted(lat[100:])  # drop warm-up (metadata, connection)

    def pct(q: float) -> float:
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000

    print(
        f"latency acks=all size={args.size} one-in-flight n={len(lat)}: "
        f"p50={pct(0.5):.2f}ms p90={pct(0.9):.2f}ms p99={pct(0.99):.2f}ms "
        f"p99.9={pct(0.999):.2f}ms max={lat[-1] * 1000:.2f}ms"
    )


if __name__ == "__main__":
    main()
