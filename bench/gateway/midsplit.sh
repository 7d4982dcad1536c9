#!/usr/bin/env bash
# cpusplit.sh's split, taken mid-run: a 12 s `pgbench -S -c 8 -j 2` whose
# seconds 4–10 are measured, so that backends a proxy opened for this run are
# warm (a new PostgreSQL backend pays page faults on shared buffers for its
# first seconds). For proxies without a pool, such as bench/gateway/uringrelay:
#   bench/gateway/midsplit.sh PORT USER PASSWORD PROXY_PID
set -euo pipefail
port=$1 user=$2 pass=$3 pid=$4
out=$(mktemp)
trap 'rm -f "$out"' EXIT
PGPASSWORD=$pass pgbench -h 127.0.0.1 -p "$port" -U "$user" -n -S -T 12 -c 8 -j 2 -P 1 postgres >"$out" 2>&1 &
bench=$!
sched_ns() { cat "$@" 2>/dev/null | awk '{s += $1} END {printf "%.0f", s}'; }
pg_files() { for p in $(pgrep -u postgres -x postgres); do echo /proc/$p/schedstat; done; }
busy_ns() { awk '/^cpu / {printf "%.0f\n", ($2+$3+$4+$7+$8) * 1e9 / '"$(getconf CLK_TCK)"'}' /proc/stat; }
switches() { awk '/^ctxt/ {print $2}' /proc/stat; }
sleep 4
x0=$(sched_ns /proc/"$pid"/task/*/schedstat) m0=$(busy_ns) p0=$(sched_ns $(pg_files)) b0=$(sched_ns /proc/$bench/task/*/schedstat) c0=$(switches)
sleep 6
x1=$(sched_ns /proc/"$pid"/task/*/schedstat) m1=$(busy_ns) p1=$(sched_ns $(pg_files)) b1=$(sched_ns /proc/$bench/task/*/schedstat) c1=$(switches)
wait $bench
# pgbench's per-second progress lines for the same six seconds.
tps=$(awk '/^progress/ && $2 > 4.5 && $2 < 10.5 {s += $4; n++} END {if (n) print s / n}' "$out")
[ -n "$tps" ] || { cat "$out" >&2; exit 1; }
awk -v x=$((x1 - x0)) -v m=$((m1 - m0)) -v p=$((p1 - p0)) -v b=$((b1 - b0)) -v c=$((c1 - c0)) -v tps="$tps" 'BEGIN {
  tx = tps * 6
  printf "%.0f tps; µs per transaction: machine %.1f, proxy %.1f, postgres %.1f, pgbench %.1f, rest %.1f; context switches %.2f\n",
    tps, m/tx/1000, x/tx/1000, p/tx/1000, b/tx/1000, (m-x-p-b)/tx/1000, c/tx}'
