#!/usr/bin/env bash
# A/B of single-node produce throughput between two broker binaries, run
# alternately in one sitting (this machine is noisy): the suite's flat-out
# produce (acks=all, 1 KiB records, 64 KiB batches, 4 producers x 32 in
# flight, 6 partitions), ROUNDS rounds, a fresh broker and data dir each
# run. Prints each run's MB/s and the median per binary.
#
#   bench/order_ab.sh BEFORE_BIN AFTER_BIN [ROUNDS] [RECORDS]
set -euo pipefail
before=${1:?before broker binary}
after=${2:?after broker binary}
rounds=${3:-3}
records=${4:-1000000}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
corestream=${CORESTREAM:-target/release/corestream}
work=$(mktemp -d)
trap 'pkill -f "corestreamd --listen 127.0.0.1:19192" || true; rm -rf "$work"' EXIT

run_one() { # binary label round
    local bin=$1 label=$2 round=$3 dir=$work/$label-$round
    mkdir -p "$dir"
    "$bin" --listen 127.0.0.1:19192 --admin-listen 127.0.0.1:19193 --data-dir "$dir/data" >"$dir/log" 2>&1 &
    local pid=$!
    for _ in $(seq 100); do grep -q "corestreamd ready" "$dir/log" && break; sleep 0.1; done
    "$corestream" bench produce --bootstrap 127.0.0.1:19192 --topic ab --partitions 6 \
        --record-bytes 1024 --max-in-flight 32 --producers 4 --acks all \
        --batch-bytes 65536 --linger-ms 5 --records "$records" --json "$dir/out.json" >/dev/null 2>&1
    kill -TERM "$pid"; wait "$pid" || true
    python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['mb_per_s'])" "$dir/out.json"
}

declare -A results
for round in $(seq "$rounds"); do
    for label in before after; do
        bin=$before; [[ $label == after ]] && bin=$after
        mbps=$(run_one "$bin" "$label" "$round")
        echo "round $round $label: $mbps MB/s"
        results[$label]+="$mbps "
    done
done
for label in before after; do
    python3 -c "import statistics,sys; v=[float(x) for x in sys.argv[2:]]; print(f'{sys.argv[1]}: median {statistics.median(v):.0f} MB/s over {len(v)} runs: {v}')" "$label" ${results[$label]}
done
