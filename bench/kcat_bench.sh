#!/usr/bin/env bash
# Native-client throughput matrix with kcat (librdkafka, C): produce and
# consume MB/s and msgs/s for 1 KiB and 100 B records, acks=1 and acks=all,
# 1 and 6 partitions; consume from the tail (hot: served by the tail cache)
# right after producing, then again from cold data after a broker restart
# (the tail cache is empty, reads go to disk). Plus produce latency
# percentiles (bench/latency_probe.py, one record in flight, acks=all).
#
#   bench/kcat_bench.sh BROKER_BINARY DATA_DIR
#
# kcat is wall-clocked as a whole process (connection set-up included, a few
# ms). MB = 10^6 bytes of record values. Prints one TSV line per run.
set -euo pipefail

broker_bin=$1
data_dir=$2
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
py=$repo_root/.venv/bin/python
shards=${SHARDS:-$(nproc)}
count_1k=${COUNT_1K:-200000}
count_100=${COUNT_100:-1000000}

port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
bs=127.0.0.1:$port
broker_pid=
start_broker() {
    "$broker_bin" --listen "$bs" --data-dir "$data_dir" --shards "$shards" 2>>"$data_dir.broker.log" &
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
cd "$repo_root"
mkdir -p "$data_dir"
start_broker

now() { date +%s.%N; }
rate() { # label count size seconds
    awk -v l="$1" -v n="$2" -v s="$3" -v t="$4" \
        'BEGIN { printf "%s\t%d\t%d\t%.3f\t%.0f\t%.1f\n", l, n, s, t, n/t, n*s/t/1e6 }'
}
create_topic() {
    $py - "$bs" "$1" "$2" <<'PY'
import sys
sys.path.insert(0, "tests/integration")
import clients
clients.create_topic(sys.argv[1], sys.argv[2], int(sys.argv[3]))
PY
}
consume() { # topic count size label
    local t0 t1 got
    t0=$(now)
    got=$(kcat -C -b "$bs" -t "$1" -o beginning -e -q -f '\n' \
        -X fetch.max.bytes=52428800 -X max.partition.fetch.bytes=4194304 | wc -l)
    t1=$(now)
    [[ $got -eq $2 ]] || echo "WARNING: $4 consumed $got of $2" >&2
    rate "$4" "$2" "$3" "$(echo "$t1 - $t0" | bc)"
}

printf 'run\trecords\tvalue_bytes\tseconds\tmsgs_per_s\tMB_per_s\n'
topics=()
for size in 1024 100; do
    count=$count_1k; [[ $size -eq 100 ]] && count=$count_100
    file=$data_dir.records.$size
    $py -c "import sys; sys.stdout.write(('x'*$size+'\n')*$count)" >"$file"
    for acks in 1 all; do
        for parts in 1 6; do
            topic=b-$size-$acks-$parts
            create_topic "$topic" "$parts"
            t0=$(now)
            kcat -P -b "$bs" -t "$topic" -l -X acks=$acks -X linger.ms=5 \
                -X batch.size=1048576 -X queue.buffering.max.messages=2000000 "$file"
            t1=$(now)
            rate "produce size=$size acks=$acks partitions=$parts" "$count" "$size" "$(echo "$t1 - $t0" | bc)"
            consume "$topic" "$count" "$size" "consume-tail size=$size acks=$acks partitions=$parts"
            topics+=("$topic:$count:$size")
        done
    done
    rm -f "$file"
done

stop_broker
start_broker
for entry in "${topics[@]}"; do
    IFS=: read -r topic count size <<<"$entry"
    [[ $topic == *-all-* ]] || continue # one cold pass per size/partitions
    consume "$topic" "$count" "$size" "consume-cold ${topic#b-}"
done

create_topic latency-probe 1
$py bench/latency_probe.py --bootstrap "$bs" --count "${LATENCY_COUNT:-2000}"
stop_broker
