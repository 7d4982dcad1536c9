#!/usr/bin/env bash
# Issue and login cost at several numbers of live credentials: one SQLite
# store per size, filled through the store, one `shiftkey serve` on each,
# measured in interleaved rounds; see README.md.
#
#   bench/scale/run.sh [ROUNDS]                 (default 3)
#   SIZES=1000,100000,1000000 HOT=10000 PER=10 bench/scale/run.sh
#   BIN=/tmp/sk-other bench/scale/run.sh        (another build of shiftkey; default: this tree)
#   ARGS='-c 8,64 -issues 4000 -logins 400' bench/scale/run.sh   (flags of `scale run`)
#   STORES=/tmp/skstores bench/scale/run.sh   (keep the filled stores there and reuse
#                                               them next time, within 4 h: fills take minutes)
#
# HOT of the largest size's credentials go to the one login IAM:hot.
# Needs: PostgreSQL server binaries (the gateway's backend), Go.
set -euo pipefail
ROUNDS=${1:-3}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/../lib.sh"

work=$(bench_workdir skscale)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  bench_pg_stop "$work"
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

ITER=${ITER:-1}
IFS=, read -r -a sizes <<<"${SIZES:-1000,100000,1000000}"
# Each size's API port (29641 on) and gateway 2000 below, checked before
# anything starts: another run's server there would be measured as ours.
ports=()
for i in "${!sizes[@]}"; do ports+=($((29641 + i)) $((27641 + i))); done
bench_ports_free "${ports[@]}"

PGPORT_D=25632
bench_pg "$work" $PGPORT_D "listen_addresses = ''" "max_connections = 500" "fsync = off"
# The roles the login phase logs in as (f0…f99, hot): issued without AutoCreate.
{ for i in $(seq 0 99); do echo "CREATE ROLE f$i LOGIN;"; done; echo "CREATE ROLE hot LOGIN;"; } |
  psql -h "$work" -p $PGPORT_D -U bench -d postgres -q
(cd "$root" && go build -o "$work/scale" ./bench/scale)
bin=${BIN:-}
if [ -z "$bin" ]; then bin="$work/shiftkey"; (cd "$root" && go build -o "$bin" ./cmd/shiftkey); fi
export BENCH_KEY_ID=AKIABENCHBENCH000001 BENCH_SECRET=bench-secret-0123456789
largest=${sizes[-1]}
targets=()
api=29640
for n in "${sizes[@]}"; do
  api=$((api + 1)) gw=$((api - 2000))
  d="${STORES:-$work}/n$n"
  mkdir -p "$d"
  bench_yaml "sqlite: $d/shiftkey.db" $api $gw "$work" $PGPORT_D "scram_iterations: $ITER
limits: {pool_size: 100}
admin: {listen: \"off\"}" >"$d/shiftkey.yaml"
  hot=0
  [ "$n" = "$largest" ] && hot=${HOT:-10000}
  [ "$hot" -ge "$n" ] && hot=0
  per=${PER:-10}
  if [ ! -f "$d/filled" ]; then
    # A first start creates the store, its key, the cluster and the user;
    # the fill then writes through the store while no serve holds it.
    "$bin" serve --config "$d/shiftkey.yaml" 2>"$d/log.0" &
    p=$!
    bench_wait_port $p $api || { cat "$d/log.0" >&2; exit 1; }
    kill $p; wait $p || true
    "$work/scale" fill -db "$d/shiftkey.db" -key "$d/shiftkey.db.secret-key" -n "$n" -per "$per" -hot "$hot" -iterations "$ITER"
    touch "$d/filled"
  fi
  "$bin" serve --config "$d/shiftkey.yaml" 2>"$d/log" &
  pids+=($!)
  bench_wait_port $! $api || { cat "$d/log" >&2; exit 1; }
  targets+=(-target "$n=http://127.0.0.1:$api,127.0.0.1:$gw,$!,$d/shiftkey.db,$(( (n - hot + per - 1) / per )),$hot")
done
"$work/scale" run "${targets[@]}" -rounds "$ROUNDS" ${ARGS:-}
