#!/usr/bin/env bash
# Consume throughput and broker CPU per fetch path, with kcat (librdkafka):
# produce COUNT records of SIZE bytes (acks=all) to PARTITIONS partitions,
# consume them from the tail (hot: the tail cache), restart the broker, then
# consume twice from cold data (first pass: from the disk; second: again,
# which for the splice path is served from the page cache the first pass
# filled, and for the O_DIRECT copy path is the disk again).
#
#   bench/fetch_paths_bench.sh BROKER_BINARY DATA_DIR
#   COUNT=200000 SIZE=1024 PARTITIONS=1 SHARDS=2 (defaults); PY=python with the
#   test requirements (default: the repo venv)
#
# Per phase: wall seconds of one kcat process, msgs/s, MB/s (10^6 bytes of
# values), and the broker's CPU seconds (utime+stime from /proc/PID/stat),
# which is what the fetch path changes. Ends with the broker's fetch-path
# counters from /metrics.
set -euo pipefail

broker_bin=$1
data_dir=$2
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
py=${PY:-$repo_root/.venv/bin/python}
count=${COUNT:-200000}
size=${SIZE:-1024}
parts=${PARTITIONS:-1}
shards=${SHARDS:-2}
free_port() { $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
admin_port=$(free_port)
bs=127.0.0.1:$port
broker_pid=
start_broker() {
    "$broker_bin" --listen "$bs" --admin-listen "127.0.0.1:$admin_port" --data-dir "$data_dir" \
        --shards "$shards" 2>>"$data_dir.broker.log" &
    broker_pid=$!
    $py - "$port" <<'PY'
import sys, time
sys.path.insert(0, "tests/integration")
import kafka_raw
port = int(sys.argv[1])
deadline = time.monotonic() + 30
while not kafka_raw.api_versions_ok("127.0.0.1", port):
    if time.monotonic() > deadline:
        sys.exit(f"broker not ready on port {port}")
    time.sleep(0.1)
PY
}
stop_broker() {
    kill -TERM "$broker_pid"
    wait "$broker_pid" || true
}
trap 'kill -TERM $broker_pid 2>/dev/null || true' EXIT
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$broker_pid/stat"; }
now() { date +%s.%N; }
consume() { # label
    local t0 t1 c0 c1 got
    c0=$(cpu_s); t0=$(now)
    got=$(kcat -C -b "$bs" -t fetch-paths -o beginning -e -q -f '\n' \
        -X fetch.max.bytes=52428800 -X max.partition.fetch.bytes=4194304 | wc -l)
    t1=$(now); c1=$(cpu_s)
    [[ $got -eq $count ]] || echo "WARNING: $1 consumed $got of $count" >&2
    awk -v l="$1" -v n="$count" -v s="$size" -v t="$(echo "$t1 - $t0" | bc)" -v c="$(echo "$c1 - $c0" | bc)" \
        'BEGIN { printf "%s\t%.3f\t%.0f\t%.1f\t%.2f\n", l, t, n/t, n*s/t/1e6, c }'
}

cd "$repo_root"
mkdir -p "$data_dir"
start_broker
$py - "$bs" "$parts" <<'PY'
import sys
sys.path.insert(0, "tests/integration")
import clients
clients.create_topic(sys.argv[1], "fetch-paths", int(sys.argv[2]))
PY
file=$data_dir.records
$py -c "import sys; sys.stdout.write(('x'*$size+'\n')*$count)" >"$file"
kcat -P -b "$bs" -t fetch-paths -l -X acks=all -X linger.ms=5 -X batch.size=1048576 \
    -X queue.buffering.max.messages=2000000 "$file"
rm -f "$file"
printf 'phase\tseconds\tmsgs_per_s\tMB_per_s\tbroker_cpu_s\n'
consume consume-tail
stop_broker
start_broker
consume consume-cold-1
consume consume-cold-2
curl -s "http://127.0.0.1:$admin_port/metrics" |
    grep -E '^corestream_(fetch_splice_bytes_total|fetch_copy_fallback_bytes_total|tail_cache_(hit|miss)_bytes_total)' || true
stop_broker
