#!/usr/bin/env bash
# Side-by-side A/B of two gateway builds on one bench setup: alternating
# pgbench rounds against each, printing tps and the gateway's CPU per
# transaction (schedstat of all its threads). Set up with
#   HOLD=1200 bench/gateway/run.sh &          # gateway A on 127.0.0.1:27439, prints its pid and password
# then start build B on the same store layout, e.g. (W = the printed work dir)
#   sed 's/27439/27440/; s/29439/29440/; s/shiftkey.db/shiftkey-b.db/' $W/shiftkey.yaml >$W/b.yaml
#   go build -o $W/shiftkey-b ./cmd/shiftkey && (cd $W && BENCH_KEY_ID=AKIABENCHBENCH000001 \
#     BENCH_SECRET=bench-secret-0123456789 ./shiftkey-b serve --config b.yaml &)
# (to compare the relay's engines or loop policies with one build, add `relay: epoll` or
# `relay_sched: normal` to b.yaml's limits instead),
# issue B's credential with the AWS CLI against :29440, and run
#   MODE="-S -C -c 4 -j 2" ROUNDS=5 SECS=6 bench/gateway/ab.sh PID_A PASSWORD_A PID_B PASSWORD_B
set -euo pipefail
PID_A=$1 PW_A=$2 PID_B=$3 PW_B=$4
MODE=${MODE:--S -c 8 -j 2} SECS=${SECS:-6} ROUNDS=${ROUNDS:-4}
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%.0f", s}'; }
# A B, B A, A B, …: a machine that speeds up or slows down over the run
# favours neither build.
for r in $(seq "$ROUNDS"); do
  order="A B"; [ $((r % 2)) = 0 ] && order="B A"
  for v in $order; do
    if [ $v = A ]; then port=27439 pid=$PID_A pw=$PW_A; else port=27440 pid=$PID_B pw=$PW_B; fi
    before=$(cpu_ns "$pid")
    out=$(PGPASSWORD=$pw pgbench -h 127.0.0.1 -p $port -U IAM:bench -n $MODE -T "$SECS" postgres 2>/dev/null)
    after=$(cpu_ns "$pid")
    awk -v v=$v -v cpu=$((after - before)) '/processed:/ {tx = $NF} /^tps/ {tps = $3}
      END {printf "%s tps %.0f  CPU %.1f µs/transaction\n", v, tps, cpu / tx / 1000}' <<<"$out"
  done
done
