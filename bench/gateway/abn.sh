#!/usr/bin/env bash
# Round-robin pgbench through several gateway builds on one bench setup, in
# interleaved rounds (each round starts one build later), printing tps and
# the gateway's CPU per transaction. Include the tree's own build twice
# (the gateway run.sh starts, and a twin) to see the machine's noise in the
# same run: two identical builds differ by that much.
#
#   go build -o /tmp/sk-head ./cmd/shiftkey
#   git worktree add --detach /tmp/old f73c89a && (cd /tmp/old && go build -o /tmp/sk-old ./cmd/shiftkey)
#   BUILDS="old=/tmp/sk-old twin=/tmp/sk-head" ROUNDS=8 SECS=6 bench/gateway/abn.sh
#   MODE='-S -C -c 4 -j 2' BUILDS=… bench/gateway/abn.sh
#   MODE='pgx -c 16' BUILDS=… bench/gateway/abn.sh        (logins with pgx; TLS=1 for sslmode=require)
#
# Each build gets gateway port 27440+i, API port 29440+i, its own SQLite
# file and a credential of its own; run.sh's config is reused (its admin
# listener off), minus the keys a build does not know
# (allow_superuser_master, admin).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
out=$(mktemp)
HOLD=${HOLD:-1800} "$here/run.sh" >"$out" 2>&1 &
runsh=$!
# Until the set-up is up, or run.sh has given up (e.g. pgbouncer missing).
for _ in $(seq 600); do grep -q 'work dir' "$out" && break; kill -0 $runsh 2>/dev/null || break; sleep 1; done
W=$(grep -o 'work dir [^;]*' "$out" | awk '{print $3}')
[ -n "$W" ] || { cat "$out" >&2; exit 1; }
names=(tree) ports=(27439) extra=()
pids=("$(grep -o 'gateway pid [0-9]*' "$out" | awk '{print $3}')")
pws=("$(grep 'gateway pid' "$out" | grep -o 'PGPASSWORD=[^ ]*' | cut -d= -f2)")
i=0
for spec in ${BUILDS:?set BUILDS=\"name=binary …\"}; do
  i=$((i + 1)) name=${spec%%=*} bin=${spec#*=}
  gp=$((27439 + i)) ap=$((29439 + i))
  sed "s/27439/$gp/; s/29439/$ap/; s/shiftkey.db/shiftkey-$name.db/" "$W/shiftkey.yaml" >"$W/$name.yaml"
  grep -q allow_superuser_master "$bin" || sed -i '/allow_superuser_master/d' "$W/$name.yaml"
  # run.sh's config turns the admin listener off (the ports would clash);
  # a build from before the admin listener does not know the key.
  grep -q 'admin.listen' "$bin" || sed -i '/^admin:/d' "$W/$name.yaml"
  cp "$bin" "$W/sk-$name"
  (cd "$W" && BENCH_KEY_ID=AKIABENCHBENCH000001 BENCH_SECRET=bench-secret-0123456789 exec "./sk-$name" serve --config "$name.yaml" 2>"$name.log") &
  extra+=($!)
  if ! bench_wait_port "${extra[-1]}" $ap; then
    cat "$W/$name.log" >&2
    kill "${extra[@]}" 2>/dev/null; pkill -TERM -P $runsh; wait $runsh
    exit 1
  fi
  read -r _ pw < <(AWS_ACCESS_KEY_ID=AKIABENCHBENCH000001 AWS_SECRET_ACCESS_KEY=bench-secret-0123456789 AWS_DEFAULT_REGION=us-east-1 \
    /usr/bin/aws --endpoint-url "http://127.0.0.1:$ap" redshift get-cluster-credentials --cluster-identifier bench \
    --db-user bench --duration-seconds 3600 --query '[DbUser,DbPassword]' --output text)
  names+=("$name") ports+=($gp) pids+=("${extra[-1]}") pws+=("$pw")
done
ssl=disable; [ -n "${TLS:-}" ] && ssl=require
echo "builds: ${names[*]}; load $(cut -d' ' -f1-3 /proc/loadavg)"
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%.0f", s}'; }
# Voluntary context switches of every thread (steadier than CPU time here).
vcs() { cat /proc/"$1"/task/*/status | awk '/^voluntary_ctxt_switches/ {s += $2} END {print s}'; }
n=${#names[@]}
res=$(mktemp)
for r in $(seq "${ROUNDS:-6}"); do
  for k in $(seq 0 $((n - 1))); do
    j=$(((k + r) % n))
    b=$(cpu_ns "${pids[$j]}") vb=$(vcs "${pids[$j]}")
    if [ "${MODE:-}" != "" ] && [ "${MODE%% *}" = pgx ]; then
      # Logins with a Go client (bench/gateway/logins), as run.sh's pgx mode.
      o=$("$W/logins" -dsn "host=127.0.0.1 port=${ports[$j]} user=IAM:bench password=${pws[$j]} dbname=postgres sslmode=$ssl" \
        -d "${SECS:-6}s" ${MODE#pgx} 2>/dev/null)
    else
      o=$(PGPASSWORD=${pws[$j]} pgbench -h 127.0.0.1 -p "${ports[$j]}" -U IAM:bench -n ${MODE:--S -c 8 -j 2} -T "${SECS:-6}" postgres 2>/dev/null)
    fi
    a=$(cpu_ns "${pids[$j]}") va=$(vcs "${pids[$j]}")
    awk -v v="${names[$j]}" -v r="$r" -v cpu=$((a - b)) -v cs=$((va - vb)) '/processed:/ {tx = $NF} /^tps/ {tps = $3}
      END {printf "round %d %-8s tps %.0f  CPU %.1f µs/transaction  %.2f switches/transaction\n", r, v, tps, cpu / tx / 1000, cs / tx}' <<<"$o" | tee -a "$res"
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "medians over rounds (tps, CPU µs/transaction, voluntary context switches/transaction):"
med() { sort -g | awk '{x[NR] = $1} END {print (NR % 2) ? x[(NR + 1) / 2] : (x[NR / 2] + x[NR / 2 + 1]) / 2}'; }
for v in "${names[@]}"; do
  printf '  %-8s %8s  %6s  %5s\n' "$v" "$(awk -v v="$v" '$3 == v {print $5}' "$res" | med)" "$(awk -v v="$v" '$3 == v {print $7}' "$res" | med)" \
    "$(awk -v v="$v" '$3 == v {print $9}' "$res" | med)"
done
kill "${extra[@]}" 2>/dev/null
pkill -TERM -P $runsh; wait $runsh
rm -f "$out" "$res"
