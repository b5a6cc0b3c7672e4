#!/bin/bash
# RSS per idle connection: start BIN, open N idle connections with
# bench/idle_conns.py (each after one request of FIRST_REQUEST_BYTES if
# given), print the VmRSS difference / N.
# Usage: bench/idle_rss.sh BIN N [FIRST_REQUEST_BYTES] (PYTHON=... picks the interpreter; default
# the checkout's .venv)
BIN=$1; N=$2; D=$(mktemp -d /tmp/idlerss.XXXX)
$BIN --listen 127.0.0.1:19393 --admin-listen 127.0.0.1:19394 --data-dir $D/data --shards 2 --connections-max 12000 > $D/log 2>&1 &
BP=$!; sleep 1.5
r0=$(grep VmRSS /proc/$BP/status | awk '{print $2}')
PY=${PYTHON:-$(dirname "$0")/../.venv/bin/python}
exec 3> >("$PY" "$(dirname "$0")/idle_conns.py" 127.0.0.1 19393 $N ${3:+--first-request-bytes $3} > $D/idle.out)
for i in $(seq 1 120); do grep -q ready $D/idle.out 2>/dev/null && break; sleep 0.5; done
sleep 2; r1=$(grep VmRSS /proc/$BP/status | awk '{print $2}')
cat $D/idle.out | head -1
echo "rss before $r0 KiB after $r1 KiB, per connection $(( (r1 - r0) / N )) KiB"
exec 3>&-; sleep 1; kill $BP; wait $BP 2>/dev/null; rm -rf $D
