#!/usr/bin/env bash
# Side-by-side GetClusterCredentials load: one or more shiftkey builds and
# moto (when installed), in interleaved rounds; see README.md.
#
#   bench/issue/run.sh [ROUNDS] [SECONDS]          (defaults 3 and 5)
#   BINS="before=/tmp/sk-before after=" bench/issue/run.sh   (empty path: build this tree)
#   CONC=1,8,64 USERS=1000 MOTO=0 bench/issue/run.sh
#   BINS="after= low=" EXTRA_low='scram_iterations: 1' bench/issue/run.sh   (config lines for one build)
#   PORT_BASE=29540 MOTO_PORT=25055 bench/issue/run.sh   (the defaults: build i's API is PORT_BASE+i)
#
# Needs: PostgreSQL server binaries (the cluster's backend; the issue path
# never touches it, but serve checks it at start), Go, and for moto
# `python3 -m moto.server`.
set -euo pipefail
ROUNDS=${1:-3}
SECS=${2:-5}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/../lib.sh"

# Every port the run listens on must be free: a server of another run there
# would be measured as ours.
base=${PORT_BASE:-29540} moto_port=${MOTO_PORT:-25055}
ports=() i=0
for spec in ${BINS:-shiftkey=}; do
  i=$((i + 1)); ports+=($((base + i)) $((base + i - 2000)))
  [ "${METRICS:-0}" = 1 ] && ports+=($((base + i + 1000)))
done
[ "${MOTO:-1}" = 1 ] && ports+=($moto_port)
bench_ports_free "${ports[@]}"

work=$(bench_workdir skissue)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  bench_pg_stop "$work"
  rm -rf "$work"
}
trap cleanup EXIT

PGPORT_D=25532
bench_pg "$work" $PGPORT_D "listen_addresses = ''"

(cd "$root" && go build -o "$work/load" ./bench/issue)
export BENCH_KEY_ID=AKIABENCHBENCH000001 BENCH_SECRET=bench-secret-0123456789
targets=()
port=$base
for spec in ${BINS:-shiftkey=}; do
  name=${spec%%=*} bin=${spec#*=}
  if [ -z "$bin" ]; then bin="$work/shiftkey-$name"; (cd "$root" && go build -o "$bin" ./cmd/shiftkey); fi
  port=$((port + 1))
  mkdir -p "$work/$name"
  extra_var="EXTRA_$name"
  # No admin listener by default: several builds side by side would all
  # want 9440. METRICS=1 gives each its own, read after the run.
  admin='off'
  if [ "${METRICS:-0}" = 1 ]; then admin="127.0.0.1:$((port + 1000))"; fi
  bench_yaml "sqlite: $work/$name/shiftkey.db" $port $((port - 2000)) "$work" $PGPORT_D "admin: {listen: \"$admin\"}
${CONFIG_EXTRA:-}
${!extra_var:-}" >"$work/$name/shiftkey.yaml"
  "$bin" serve --config "$work/$name/shiftkey.yaml" 2>"$work/$name/log" &
  pids+=($!)
  targets+=(-target "$name=http://127.0.0.1:$port,$!")
  bench_wait_port $! $port || { cat "$work/$name/log" >&2; exit 1; }
done
setup=()
if [ "${MOTO:-1}" = 1 ] && python3 -c 'import moto.server' 2>/dev/null; then
  python3 -m moto.server -p $moto_port >"$work/moto.log" 2>&1 &
  pids+=($!)
  targets+=(-target "moto=http://127.0.0.1:$moto_port,$!")
  setup=(-create-cluster)
  bench_wait_port $! $moto_port || { cat "$work/moto.log" >&2; exit 1; }
fi
"$work/load" "${targets[@]}" "${setup[@]}" -rounds "$ROUNDS" -d "${SECS}s" -c "${CONC:-1,8,64}" -users "${USERS:-1000}"
i=0
port=$base
for spec in ${BINS:-shiftkey=}; do
  name=${spec%%=*}
  port=$((port + 1))
  if [ "${METRICS:-0}" = 1 ]; then
    # The server's own view of GetClusterCredentials' latency (arrival to
    # answer, every run together): the share of issues at or under each
    # bucket, to set beside the load client's percentiles.
    echo "$name: server-side GetClusterCredentials latency, share at or under each bound:"
    curl -s "http://127.0.0.1:$((port + 1000))/metrics" | awk '
      /^shiftkey_api_request_duration_seconds_bucket/ && /GetClusterCredentials/ {
        match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5); n[le] = $NF; order[++k] = le }
      END { total = n["+Inf"]; for (j = 1; j <= k; j++) if (total > 0) printf "  <= %s s: %.4f\n", order[j], n[order[j]] / total }'
  fi
  # VmHWM: the server's peak resident memory over the whole run.
  echo "$name: $(wc -c <"$work/$name/log") bytes of log, $(stat -c %s "$work/$name/shiftkey.db") bytes of store, $(stat -c %s "$work/$name/shiftkey.db-wal" 2>/dev/null || echo 0) bytes of WAL, peak RSS $(awk '/VmHWM/ {print $2, $3}' /proc/${pids[$i]}/status)"
  i=$((i + 1))
done
