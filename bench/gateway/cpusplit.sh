#!/usr/bin/env bash
# Where a pgbench run's CPU goes, per transaction: the whole machine
# (/proc/stat), the proxy (schedstat of all its threads), PostgreSQL's
# processes (schedstat), pgbench itself (user + system time) and the rest;
# then the context switches per transaction of the proxy's threads and of
# PostgreSQL's processes, voluntary (sleeps) and involuntary (preemptions).
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
switches() { cat "$@" 2>/dev/null | awk '/^nr_voluntary_switches/ {v += $3} /^nr_involuntary_switches/ {i += $3} END {print v + 0, i + 0}'; }
pg_sched() { for p in $(pgrep -u postgres -x postgres); do echo /proc/$p/sched; done; }
m0=$(busy_ns) x0=$(proxy_ns) p0=$(pg_ns)
read -r xv0 xi0 < <(switches /proc/"$pid"/task/*/sched); read -r pv0 pi0 < <(switches $(pg_sched))
out=$(PGPASSWORD=$pass /usr/bin/time -f "%U %S" pgbench -h 127.0.0.1 -p "$port" -U "$user" -n $flags postgres 2>&1)
m1=$(busy_ns) x1=$(proxy_ns) p1=$(pg_ns)
read -r xv1 xi1 < <(switches /proc/"$pid"/task/*/sched); read -r pv1 pi1 < <(switches $(pg_sched))
awk -v m=$((m1 - m0)) -v x=$((x1 - x0)) -v p=$((p1 - p0)) -v xv=$((xv1 - xv0)) -v xi=$((xi1 - xi0)) -v pv=$((pv1 - pv0)) -v pi=$((pi1 - pi0)) '
  /processed:/ {tx = $NF} /^tps/ {tps = $3} NF == 2 && $1 + 0 == $1 {b = ($1 + $2) * 1e9}
  END {printf "%.0f tps; µs per transaction: machine %.1f, proxy %.1f, postgres %.1f, pgbench %.1f, rest %.1f; switches per transaction: proxy %.2f + %.2f, postgres %.2f + %.2f\n",
    tps, m/tx/1000, x/tx/1000, p/tx/1000, b/tx/1000, (m-x-p-b)/tx/1000, xv/tx, xi/tx, pv/tx, pi/tx}' <<<"$out"
