#!/usr/bin/env bash
# Runs one cargo-fuzz target until it has used a CPU-time budget (not wall time: the fuzzer
# runs at low priority beside other work, so wall time would overstate the effort), then
# interrupts it so libFuzzer prints its final statistics. Build first with
# `cargo +nightly fuzz build`; seed with fuzz/seed.sh.
#
# Usage: fuzz/run-budget.sh <target> [cpu-seconds, default 1800] [libFuzzer flags…]
# e.g. `fuzz/run-budget.sh js_scopes 1800 -fork=1 -ignore_timeouts=1` to go on past a known
# hang (fork mode's workers are counted once reaped).
# Log: fuzz/logs/<target>.log; crashes land in fuzz/artifacts/<target>/ as usual.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: run-budget.sh <target> [cpu-seconds]}
budget=${2:-1800}
shift $(($# < 2 ? $# : 2))
bin=target/x86_64-unknown-linux-gnu/release/$target
[[ -x $bin ]] || { echo "missing $bin: run cargo +nightly fuzz build" >&2; exit 2; }
mkdir -p logs "artifacts/$target" "corpus/$target"
log=logs/$target.log
tick=$(getconf CLK_TCK)

nice -n 10 "$bin" -artifact_prefix="artifacts/$target/" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 "$@" "corpus/$target" >"$log" 2>&1 &
pid=$!
cpu=0
while kill -0 "$pid" 2>/dev/null; do
    # utime + stime + cutime + cstime (reaped fork-mode workers), fields 14-17 of
    # /proc/PID/stat (the command name has no spaces here).
    if read -ra stat <"/proc/$pid/stat" 2>/dev/null; then
        cpu=$(((stat[13] + stat[14] + stat[15] + stat[16]) / tick))
    fi
    if ((cpu >= budget)); then
        kill -INT "$pid"
        break
    fi
    sleep 5
done
status=0
wait "$pid" || status=$?
runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' ||
    grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#' || echo '?')
echo "$target: ${cpu}s CPU, $runs executions, exit $status, log fuzz/$log"
