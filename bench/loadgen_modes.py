"""`bench/loadgen.py produce|consume|e2e`: the confluent-kafka (librdkafka)
twin of the native `corestream bench produce|consume|e2e`.

Same flags and the same JSON result as the native generator, so
`bench/suite.py` runs every workload through either and the report can put
them side by side:

    {"mode", "records", "bytes", "seconds", "records_per_s", "mb_per_s",
     "latency_ms": {"p50","p90","p99","p999","max"} | null, "errors", "config"}

- produce: latency is each record's ack latency (produce() call to delivery
  report). At full speed the loop polls for reports every POLL_EVERY records,
  so it includes up to one poll interval of client-side wait.
- consume: reads the topic from the beginning of every partition until
  --records records arrived; latency is null.
- e2e: a producer paced at --target-rate and a consumer on the tail (in a
  child process, so the two do not share the GIL). Each value carries its
  send time; latency_ms is produce() -> consumed, and
  produce_latency_ms (an extra key) is produce() -> ack.

One Python process per run: --producers/--consumers above 1 are recorded in
"config" but run as 1 (the native generator is the multi-client one).
MB = 10^6 bytes of record values.
"""

from __future__ import annotations

import argparse
import json
import struct
import multiprocessing as mp
import time

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, Producer, TopicPartition

# Records between two poll() calls when producing flat out.
POLL_EVERY = 1000
# Latency samples kept at most (every record's latency up to this, then a
# uniform subsample), so a long run does not hold millions of floats.
LATENCY_SAMPLES_MAX = 2_000_000
# Grace after the last produce for the e2e consumer to catch up, seconds.
E2E_DRAIN_S = 10.0


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="loadgen.py MODE")
    ap.add_argument("mode", choices=("produce", "consume", "e2e"))
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--record-bytes", type=int, default=1024)
    ap.add_argument("--records", type=int)
    ap.add_argument("--duration-s", type=float)
    ap.add_argument("--producers", type=int, default=1)
    ap.add_argument("--consumers", type=int, default=1)
    ap.add_argument("--acks", default="all")
    ap.add_argument("--batch-bytes", type=int, default=64 * 1024)
    ap.add_argument("--linger-ms", type=int, default=5)
    ap.add_argument("--max-in-flight", type=int, default=5)
    ap.add_argument("--target-rate", type=float, default=0.0, help="records/s, 0 = flat out")
    ap.add_argument("--timeout-s", type=float, default=600.0)
    ap.add_argument("--json", help="write the result here")
    ap.add_argument("--client-conf", action="append", default=[], metavar="KEY=VALUE",
                    help="extra librdkafka setting for every client (security.protocol, "
                         "ssl.ca.location, sasl.mechanism...; bench/security.py)")
    a = ap.parse_args(argv)
    if (a.records is None) == (a.duration_s is None):
        ap.error("give exactly one of --records and --duration-s")
    if a.record_bytes < 8:
        ap.error("--record-bytes must be at least 8 (the value carries its send time)")
    return a


def percentiles(samples: list[float]) -> dict | None:
    if not samples:
        return None
    s = sorted(samples)

    def at(q: float) -> float:
        return round(s[min(len(s) - 1, int(q * len(s)))], 3)

    return {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "p999": at(0.999), "max": round(s[-1], 3)}


class Samples:
    """Latencies in ms; keeps every LATENCY_SAMPLES_MAX-th beyond the cap."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.seen = 0

    def add(self, ms: float) -> None:
        self.seen += 1
        if len(self.values) < LATENCY_SAMPLES_MAX:
            self.values.append(ms)
        elif self.seen % (self.seen // LATENCY_SAMPLES_MAX + 1) == 0:
            self.values[self.seen % LATENCY_SAMPLES_MAX] = ms


def client_conf(a: argparse.Namespace) -> dict:
    """--client-conf pairs (the listener's security settings)."""
    return dict(kv.split("=", 1) for kv in a.client_conf)


def producer(a: argparse.Namespace) -> Producer:
    return Producer(
        {
            **client_conf(a),
            "bootstrap.servers": a.bootstrap,
            "acks": a.acks,
            "linger.ms": a.linger_ms,
            "batch.size": a.batch_bytes,
            "max.in.flight.requests.per.connection": a.max_in_flight,
            "enable.idempotence": False,
            "queue.buffering.max.kbytes": 1024 * 1024,
            "queue.buffering.max.messages": 1_000_000,
            "message.timeout.ms": int(a.timeout_s * 1000),
        }
    )


def consumer(a: argparse.Namespace, start: int) -> Consumer:
    c = Consumer(
        {
            **client_conf(a),
            "bootstrap.servers": a.bootstrap,
            "group.id": "loadgen-unused",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "fetch.max.bytes": 64 * 1024 * 1024,
            "max.partition.fetch.bytes": 8 * 1024 * 1024,
            # Long poll: the broker answers as soon as data arrives
            # (fetch.min.bytes=1), so the wait adds no latency; a short one
            # would make the consumer busy-poll the broker.
            "fetch.wait.max.ms": 500 if a.mode == "e2e" else 100,
            "fetch.min.bytes": 1,
        }
    )
    c.assign([TopicPartition(a.topic, p, start) for p in range(a.partitions)])
    return c


def run_produce(a: argparse.Namespace, acked: Samples) -> dict:
    """Produces --records (or for --duration-s), paced by --target-rate."""
    p = producer(a)
    pad = b"x" * (a.record_bytes - 8)
    counts = {"sent": 0, "ok": 0, "errors": 0}

    def on_delivery(err, msg):
        if err is not None:
            counts["errors"] += 1
            return
        counts["ok"] += 1
        (sent_ns,) = struct.unpack_from(">q", msg.value())
        acked.add((time.time_ns() - sent_ns) / 1e6)

    start = time.perf_counter()
    end = start + a.duration_s if a.duration_s else float("inf")
    deadline = start + a.timeout_s
    i = 0
    while (a.records is None or i < a.records) and time.perf_counter() < end:
        if a.target_rate:
            due = start + i / a.target_rate
            while (now := time.perf_counter()) < due:
                p.poll(0 if due - now < 0.001 else min(due - now, 0.01))
        value = struct.pack(">q", time.time_ns()) + pad
        while True:
            try:
                p.produce(a.topic, value, partition=i % a.partitions, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.001)
                if time.perf_counter() > deadline:
                    raise SystemExit("loadgen: produce timed out")
        i += 1
        if i % POLL_EVERY == 0 or a.target_rate:
            p.poll(0)
    left = p.flush(max(1.0, deadline - time.perf_counter()))
    seconds = time.perf_counter() - start
    counts["sent"] = i
    counts["errors"] += left
    return {"seconds": seconds, **counts}


def run_consume(a: argparse.Namespace, want: int | None, start_at: int, e2e: Samples | None,
                stop=None, produced=None) -> dict:
    """Consumes until `want` records (or, in e2e, until the producer stopped
    and everything it produced arrived, or E2E_DRAIN_S after it stopped)."""
    c = consumer(a, start_at)
    got = nbytes = errors = 0
    began = time.perf_counter()
    deadline = began + a.timeout_s
    stop_at = None
    # A batch call waits its whole timeout for num_messages, which would
    # count as latency: e2e takes messages one by one (poll returns as soon
    # as one is there).
    batch = 1 if e2e is not None else 10000
    try:
        while want is None or got < want:
            now = time.perf_counter()
            if now > deadline:
                break
            if stop is not None and stop.is_set():
                stop_at = stop_at or now + E2E_DRAIN_S
                if now > stop_at or got >= produced.value:
                    break
            if batch == 1:
                m = c.poll(0.1)
                msgs = [] if m is None else [m]
            else:
                msgs = c.consume(num_messages=batch, timeout=0.1)
            for m in msgs:
                if m.error() is not None:
                    errors += 1
                    continue
                got += 1
                v = m.value()
                nbytes += len(v)
                if e2e is not None:
                    (sent_ns,) = struct.unpack_from(">q", v)
                    e2e.add((time.time_ns() - sent_ns) / 1e6)
        seconds = time.perf_counter() - began
    finally:
        c.close()
    return {"seconds": seconds, "got": got, "bytes": nbytes, "errors": errors}


def e2e_consumer(a: argparse.Namespace, stop, produced, ready, out) -> None:
    """The e2e consumer, in its own process so it does not share the GIL
    with the paced producer (both clocks are the same wall clock)."""
    e2e = Samples()
    ready.set()
    r = run_consume(a, None, OFFSET_END, e2e, stop, produced)
    out.put({**r, "latency_ms": percentiles(e2e.values)})


def result(a: argparse.Namespace, records: int, seconds: float, errors: int, lat: dict | None) -> dict:
    nbytes = records * a.record_bytes
    # Settings may hold a password: the config keeps their names only.
    config = {k: v for k, v in vars(a).items() if k not in ("json", "mode", "client_conf")}
    config["client_conf_keys"] = sorted(client_conf(a))
    config["generator"] = "confluent-kafka (librdkafka), bench/loadgen.py"
    return {
        "mode": a.mode,
        "records": records,
        "bytes": nbytes,
        "seconds": round(seconds, 3),
        "records_per_s": round(records / seconds, 1) if seconds else 0,
        "mb_per_s": round(nbytes / seconds / 1e6, 2) if seconds else 0,
        "latency_ms": lat,
        "errors": errors,
        "config": config,
    }


def main(argv: list[str]) -> None:
    a = parse(argv)
    if a.mode == "produce":
        acked = Samples()
        r = run_produce(a, acked)
        out = result(a, r["ok"], r["seconds"], r["errors"], percentiles(acked.values))
    elif a.mode == "consume":
        r = run_consume(a, a.records, OFFSET_BEGINNING, None)
        out = result(a, r["got"], r["seconds"], r["errors"], None)
        if a.records is not None and r["got"] < a.records:
            out["errors"] += a.records - r["got"]
    else:
        acked = Samples()
        stop, ready, q = mp.Event(), mp.Event(), mp.Queue()
        produced = mp.Value("q", 1 << 62)
        child = mp.Process(target=e2e_consumer, args=(a, stop, produced, ready, q))
        child.start()
        ready.wait(30)
        time.sleep(1.0)  # let the consumer resolve the tail before the first record
        r = run_produce(a, acked)
        produced.value = r["ok"]
        stop.set()
        got = q.get(timeout=a.timeout_s)
        child.join()
        out = result(a, r["ok"], r["seconds"], r["errors"] + max(0, r["ok"] - got["got"]), got["latency_ms"])
        out["produce_latency_ms"] = percentiles(acked.values)
    text = json.dumps(out)
    print(text, flush=True)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
