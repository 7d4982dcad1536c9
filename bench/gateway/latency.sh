#!/usr/bin/env bash
# One client's short queries through a proxy while the machine is busy:
# pgbench -S -c 1 with every transaction logged; prints tps and latency
# percentiles. Run against a HOLD=… bench/gateway/run.sh setup:
#   bench/gateway/latency.sh PORT USER PASSWORD [LOAD] [SECONDS]
# LOAD: none (default); hogs (two busy shell loops, one per CPU of a 2-core
# machine); bulk (two psql sessions through PORT reading pgbench_accounts
# whole, over and over: the relay itself busy).
set -euo pipefail
port=$1 user=$2 pass=$3 load=${4:-none} secs=${5:-5}
dir=$(mktemp -d /tmp/sklat.XXXX)
loaders=()
stop() { for p in "${loaders[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap stop EXIT
case $load in
  none) ;;
  hogs) for _ in 1 2; do setsid sh -c 'while :; do :; done' & loaders+=($!); done ;;
  bulk) for _ in 1 2; do
      PGPASSWORD=$pass setsid sh -c "while :; do psql 'host=127.0.0.1 port=$port user=$user dbname=postgres' -qAtc 'SELECT * FROM pgbench_accounts' >/dev/null; done" &
      loaders+=($!)
    done ;;
  *) echo "LOAD must be none, hogs or bulk" >&2; exit 2 ;;
esac
[ "$load" = none ] || sleep 2
tps=$(PGPASSWORD=$pass pgbench -h 127.0.0.1 -p "$port" -U "$user" -n -S -c 1 -T "$secs" -l --log-prefix="$dir/tx" postgres 2>/dev/null | awk '/^tps/ {printf "%.0f", $3}')
# Field 3 of pgbench's transaction log is the latency in µs.
cat "$dir"/tx.* | awk '{print $3}' | sort -n | awk -v tps="$tps" -v load="$load" '{a[NR] = $1}
  END {printf "load %s: %s tps; latency µs p50 %d p90 %d p99 %d p99.9 %d max %d\n", load, tps,
    a[int(NR * .5)], a[int(NR * .9)], a[int(NR * .99)], a[int(NR * .999)], a[NR]}'
