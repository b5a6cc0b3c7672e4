#!/usr/bin/env bash
# `scripts/bench --suite` (issue 6): one command, one run, one report.
#
#   scripts/lib/bench-suite.sh CORESTREAMD SHARDS RECORDS WITH_TANSU(0|1)
#
# Called by scripts/bench after the venv and the broker build. Installs what
# the suite needs and is missing (fio, matplotlib into .venv, Tansu 0.6.0
# into $TANSU_ROOT, the socket pump built with rustc), then:
#   1. bench/limits.py  - fio O_DIRECT write/read, fdatasync latency and rate, pump;
#   2. bench/suite.py   - workloads x brokers x generators;
#   3. bench/report.py  - the marked block of docs/BENCHMARKS.md + PNGs.
# A piece that is missing or fails becomes a "not measured: reason" row;
# only a broken corestreamd start stops the run. Results:
# target/bench-results/<UTC time>/ (and target/bench-results/latest).
# BENCH_DATA_DIR: where data dirs and the fio file go (default under
# target/, the repo's disk; not tmpfs: O_DIRECT). BENCH_NO_TANSU_REASON:
# what the report says instead of Tansu figures with --no-tansu.
set -euo pipefail

corestreamd=$1
shards=$2
records=$3
with_tansu=$4
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
repo_root=$(pwd)
# shellcheck source=deps.sh
source scripts/lib/deps.sh
# shellcheck source=tansu.sh
source scripts/lib/tansu.sh
py=$repo_root/.venv/bin/python

section() { printf '\n==================== %s ====================\n' "$*"; }

section "suite setup"
apt_install_missing fio
if ! "$py" -c 'import matplotlib' 2>/dev/null; then
    echo "python venv: installing matplotlib (plots)"
    "$py" -m pip install -q --disable-pip-version-check matplotlib
fi
mkdir -p target/bench-tools
pump=target/bench-tools/socket_pump
if [[ ! -x $pump || bench/socket_pump.rs -nt $pump ]]; then
    rustc --edition 2021 -O bench/socket_pump.rs -o "$pump"
fi
tansu_args=(--tansu-missing "${BENCH_NO_TANSU_REASON:-not requested (--no-tansu)}")
if [[ $with_tansu == 1 ]]; then
    if tansu_bin=$(install_tansu); then
        tansu_args=(--tansu "$tansu_bin")
    else
        tansu_args=(--tansu-missing "cargo install tansu $TANSU_VERSION failed (see $(tansu_root)/build.log)")
    fi
fi

stamp=$(date -u +%Y%m%dT%H%M%SZ)
results=$repo_root/target/bench-results/$stamp
mkdir -p "$results"
ln -sfn "$stamp" target/bench-results/latest
data_root=${BENCH_DATA_DIR:-$(mktemp -d "$repo_root/target/bench-suite-data.XXXXXX")}
mkdir -p "$data_root"
cleanup() { [[ -n ${BENCH_DATA_DIR:-} || ${KEEP_DATA:-0} == 1 ]] || rm -rf "$data_root"; }
trap cleanup EXIT

read -r dev fstype < <(df --output=source,fstype "$data_root" | tail -1)
commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src bench scripts || echo "+wip")
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
began=$(date +%s)

section "physical limits"
"$py" bench/limits.py --dir "$data_root/fio" --pump "$pump" --out "$results/limits.json" \
    || echo "limits: failed; the report says so"

section "workloads"
corestream_cli=$(dirname "$corestreamd")/corestream
"$py" bench/suite.py --out "$results" --data-root "$data_root" --corestreamd "$corestreamd" \
    --corestream "$corestream_cli" "${tansu_args[@]}" --shards "$shards" --records "$records"

section "report"
run_info="Run: $(date -u +%Y-%m-%d), commit $commit, $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo \
| cut -d: -f2- | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), \
$(uname -sr), data on $dev ($fstype); broker --shards $shards; suite took $(( $(date +%s) - began )) s; \
load average at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine \
shares the CPUs: one run, no repetition)."
"$py" bench/report.py --results "$results" --doc docs/BENCHMARKS.md --img docs/img --run-info "$run_info"
echo "results: $results"
