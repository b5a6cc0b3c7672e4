#!/usr/bin/env bash
# Idempotent vs plain produce throughput at the same pipelining depth, with
# the native generator (`corestream bench produce`, which keeps
# --max-in-flight requests in flight for idempotent producers too, unlike
# librdkafka; see docs/BENCHMARKS_HISTORY.md "Idempotent and transactional
# producers"). One fresh broker; ROUNDS alternating pairs, each to a fresh
# 6-partition topic; prints one TSV line per run and the median ratio.
#
#   bench/idempotent_ab.sh [ROUNDS] [RECORDS]
#
# Environment: CORESTREAMD / CORESTREAM (binaries, default target/release),
# BENCH_DATA_DIR (parent of the data dir, default target/).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rounds=${1:-3}
records=${2:-300000}
daemon=${CORESTREAMD:-$repo_root/target/release/corestreamd}
cli=${CORESTREAM:-$repo_root/target/release/corestream}
py=$repo_root/.venv/bin/python
data=$(mktemp -d "${BENCH_DATA_DIR:-$repo_root/target}/idem-ab.XXXXXX")
port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
bs=127.0.0.1:$port

"$daemon" --listen "$bs" --data-dir "$data" --admin-listen off 2>"$data.log" &
broker=$!
trap 'kill $broker 2>/dev/null; wait $broker 2>/dev/null; rm -rf "$data" "$data.log"' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

run() { # MODE TOPIC -> records/s
    local extra=()
    [[ $1 == idempotent ]] && extra=(--idempotent)
    "$cli" bench produce --bootstrap "$bs" --topic "$2" --partitions 6 --record-bytes 1024 \
        --records "$records" --producers 1 --acks all --batch-bytes 65536 --linger-ms 5 \
        --max-in-flight 5 --no-progress --json "$data/$2.json" "${extra[@]}" >/dev/null
    $py -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["records_per_s"]))' "$data/$2.json"
}

plain=() idem=()
printf 'round\tmode\trecords_per_s\n'
for r in $(seq "$rounds"); do
    p=$(run plain "plain-$r"); plain+=("$p"); printf '%s\tplain\t%s\n' "$r" "$p"
    i=$(run idempotent "idem-$r"); idem+=("$i"); printf '%s\tidempotent\t%s\n' "$r" "$i"
done
$py - "${plain[*]}" "${idem[*]}" <<'PY'
import statistics, sys
plain = [float(x) for x in sys.argv[1].split()]
idem = [float(x) for x in sys.argv[2].split()]
mp, mi = statistics.median(plain), statistics.median(idem)
print(f"median plain {mp:,.0f} records/s, idempotent {mi:,.0f} records/s, idempotent/plain {mi / mp:.2f}")
PY
