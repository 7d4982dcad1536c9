#!/usr/bin/env bash
# Two replicas on one PostgreSQL store against one: GetClusterCredentials
# load from bench/issue's client, in interleaved rounds; see README.md.
#
#   bench/replicas/run.sh [ROUNDS] [SECONDS]     (defaults 3 and 5)
#   CONC=8,64 ITER=4096 bench/replicas/run.sh     (scram_iterations of both replicas)
#   PORT=39641 bench/replicas/run.sh              (API ports PORT and PORT+1; other benches use 29641…)
#   SPLIT=1 bench/replicas/run.sh                 (the two replicas get GOMAXPROCS=1 each, as two containers
#                                                   limited to one CPU each get from Go; "one" is a third
#                                                   replica with the whole machine, on PORT+2)
#   TWO_EXTRA='limits: {api: {cpu_slots: 1}}' bench/replicas/run.sh
#                                                  (config lines for the two replicas only; "one" is
#                                                   then a third replica without them, on PORT+2)
#   EXTRA='limits: {procs: -1}' bench/replicas/run.sh   (config lines for every replica)
#   LIMIT=1 bench/replicas/run.sh                 (the two replicas each in a cgroup limited to one
#                                                   CPU, as two containers with a 1-CPU limit on one
#                                                   host; "one" is a third replica without a limit)
# Each replica runs with its default GOMAXPROCS (limits.procs) but under SPLIT.
set -euo pipefail
ROUNDS=${1:-3}
SECS=${2:-5}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/../lib.sh"

work=$(bench_workdir skreplicas)
pids=()
cgroups=()
cleanup() {
  [ -n "${KEEP_LOG:-}" ] && cat "$work"/a/log "$work"/b/log >&2
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done
  for g in "${cgroups[@]}"; do rmdir "$g" 2>/dev/null || true; done
  bench_pg_stop "$work"
  rm -rf "$work"
}
trap cleanup EXIT

# One PostgreSQL: the cluster's backend and the shared store (fsync on).
PORT=${PORT:-29641}
PGPORT_D=$((PORT - 4108))
# Another bench on these ports would be measured instead: refuse.
for p in $PORT $((PORT + 1)) $((PORT + 2)) $((PORT - 2000)) $((PORT - 1999)) $((PORT - 1998)); do
  if (echo >/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "port $p is in use: set PORT" >&2; exit 1; fi
done
bench_pg "$work" $PGPORT_D "listen_addresses = ''" "max_connections = 300"
psql -h "$work" -p $PGPORT_D -U bench -d postgres -qc "CREATE DATABASE shiftkey_store"

(umask 077; head -c 32 /dev/urandom | base64 >"$work/store.key")   # the key every replica shares
(cd "$root" && go build -o "$work/load" ./bench/issue && go build -o "$work/shiftkey" ./cmd/shiftkey)
export BENCH_KEY_ID=AKIABENCHBENCH000001 BENCH_SECRET=bench-secret-0123456789
urls=()
third="${SPLIT:-}${TWO_EXTRA:-}${LIMIT:-}"
replicas="a b"; [ -n "$third" ] && replicas="a b c"
for r in $replicas; do
  case $r in a) port=$PORT ;; b) port=$((PORT + 1)) ;; c) port=$((PORT + 2)) ;; esac
  procs=""; [ -n "${SPLIT:-}" ] && [ $r != c ] && procs=1
  extra=${EXTRA:-}; [ $r != c ] && extra="$extra
${TWO_EXTRA:-}"
  mkdir -p "$work/$r"
  bench_yaml "postgres: \"host=$work port=$PGPORT_D user=bench dbname=shiftkey_store\", secret_key_file: $work/store.key" \
    $port $((port - 2000)) "$work" $PGPORT_D "admin: {listen: \"off\"}
scram_iterations: ${ITER:-4096}
$extra" >"$work/$r/shiftkey.yaml"
  cg=""
  if [ -n "${LIMIT:-}" ] && [ $r != c ]; then
    cg=$(bench_cpu_cgroup "skreplicas-$r-$$" 1) || exit 1
    cgroups+=("$cg")
  fi
  (
    [ -z "$cg" ] || echo $BASHPID >"$cg/cgroup.procs"
    [ -z "$procs" ] || export GOMAXPROCS=$procs
    exec "$work/shiftkey" serve --config "$work/$r/shiftkey.yaml" 2>"$work/$r/log"
  ) &
  [ -n "${KEEP_LOG:-}" ] && echo "log: $work/$r/log"
  pids+=($!)
  urls+=("http://127.0.0.1:$port,$!")
  for _ in $(seq 200); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  # A replica that failed to start (e.g. its port taken meanwhile by an
  # outgoing connection: ports from 32768 up are ephemeral) would leave "two"
  # measuring one replica and errors.
  kill -0 $! 2>/dev/null && (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null || { cat "$work/$r/log" >&2; echo "replica $r did not start" >&2; exit 1; }
done
one=${urls[0]}; [ -n "$third" ] && one=${urls[2]}
"$work/load" -target "one=$one" -target "two=${urls[0]}|${urls[1]}" \
  -pg "host=$work port=$PGPORT_D user=bench dbname=shiftkey_store" -pgpid "$(head -1 "$work/pg/postmaster.pid")" \
  -rounds "$ROUNDS" -d "${SECS}s" -c "${CONC:-8,64}" -users "${USERS:-1000}"
