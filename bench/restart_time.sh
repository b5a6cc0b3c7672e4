#!/bin/bash
# Seconds from starting BIN on DATA_DIR to its admin /v1/ready answering 200.
# Usage: bench/restart_time.sh BIN DATA_DIR
BIN=$1; D=$2
t0=$(date +%s.%N)
$BIN --listen 127.0.0.1:19596 --admin-listen 127.0.0.1:19597 --data-dir $D --shards 2 > $D.log 2>&1 &
BP=$!
for i in $(seq 1 1200); do curl -sf http://127.0.0.1:19597/v1/ready >/dev/null 2>&1 && break; sleep 0.05; done
t1=$(date +%s.%N); echo "ready after $(echo "$t1 - $t0" | bc) s"
kill $BP; wait $BP 2>/dev/null
