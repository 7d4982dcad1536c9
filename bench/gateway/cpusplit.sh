#!/usr/bin/env bash
# Where a pgbench run's CPU goes, per transaction: the whole machine
# (/proc/stat), the proxy (schedstat of all its threads), PostgreSQL's
# processes (schedstat), pgbench itself (user + system time) and the rest.
# Run against a HOLD=… bench/gateway/run.sh setup, which prints the pids
# and passwords:
#   bench/gateway/cpusplit.sh PORT USER PASSWORD PROXY_PID ["PGBENCH FLAGS"]
# e.g. bench/gateway/cpusplit.sh 26432 bench benchpw "$(cat $W/pgbouncer.pid)"
set -euo pipefail
port=$1 user=$2 pass=$3 pid=$4 flags=${5:--S -c 8 -j 2 -T 6}
busy_ns() { awk '/^cpu / {printf "%.0f\n", ($2+$3+$4+$7+$8) * 1e9 / '"$(getconf CLK_TCK)"'}' /proc/stat; }
sched_ns() { cat "$@" 2>/dev/null | awk '{s += $1} END {printf "%.0f", s}'; }
proxy_ns() { sched_ns /proc/"$pid"/task/*/schedstat; }
pg_ns() { sched_ns $(for p in $(pgrep -u postgres -x postgres); do echo /proc/$p/schedstat; done); }
m0=$(busy_ns) x0=$(proxy_ns) p0=$(pg_ns)
out=$(PGPASSWORD=$pass /usr/bin/time -f "%U %S" pgbench -h 127.0.0.1 -p "$port" -U "$user" -n $flags postgres 2>&1)
m1=$(busy_ns) x1=$(proxy_ns) p1=$(pg_ns)
awk -v m=$((m1 - m0)) -v x=$((x1 - x0)) -v p=$((p1 - p0)) '
  /processed:/ {tx = $NF} /^tps/ {tps = $3} NF == 2 && $1 + 0 == $1 {b = ($1 + $2) * 1e9}
  END {printf "%.0f tps; µs per transaction: machine %.1f, proxy %.1f, postgres %.1f, pgbench %.1f, rest %.1f\n",
    tps, m/tx/1000, x/tx/1000, p/tx/1000, b/tx/1000, (m-x-p-b)/tx/1000}' <<<"$out"
