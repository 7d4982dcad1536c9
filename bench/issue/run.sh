#!/usr/bin/env bash
# Side-by-side GetClusterCredentials load: one or more shiftkey builds and
# moto (when installed), in interleaved rounds; see README.md.
#
#   bench/issue/run.sh [ROUNDS] [SECONDS]          (defaults 3 and 5)
#   BINS="before=/tmp/sk-before after=" bench/issue/run.sh   (empty path: build this tree)
#   CONC=1,8,64 USERS=1000 MOTO=0 bench/issue/run.sh
#   BINS="after= low=" EXTRA_low='scram_iterations: 1' bench/issue/run.sh   (config lines for one build)
#
# Needs: PostgreSQL server binaries (the cluster's backend; the issue path
# never touches it, but serve checks it at start), Go, and for moto
# `python3 -m moto.server`.
set -euo pipefail
ROUNDS=${1:-3}
SECS=${2:-5}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bindir=$(dirname "$(readlink -f "$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | tail -1)")")

work=$(mktemp -d /tmp/skissue.XXXX)
chmod 755 "$work"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  as_pg "$bindir/pg_ctl" -D "$work/pg" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

PGPORT_D=25532
as_pg "$bindir/initdb" -D "$work/pg" -U bench --auth=trust -E UTF8 >/dev/null
cat >>"$work/pg/postgresql.conf" <<CONF
listen_addresses = ''
port = $PGPORT_D
unix_socket_directories = '$work'
CONF
as_pg "$bindir/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w start >/dev/null
psql -h "$work" -p $PGPORT_D -U bench -d postgres -qc "CREATE ROLE shiftkey_admin LOGIN CREATEROLE"

(cd "$root" && go build -o "$work/load" ./bench/issue)
export BENCH_KEY_ID=AKIABENCHBENCH000001 BENCH_SECRET=bench-secret-0123456789
targets=()
port=29540
for spec in ${BINS:-shiftkey=}; do
  name=${spec%%=*} bin=${spec#*=}
  if [ -z "$bin" ]; then bin="$work/shiftkey-$name"; (cd "$root" && go build -o "$bin" ./cmd/shiftkey); fi
  port=$((port + 1))
  mkdir -p "$work/$name"
  extra_var="EXTRA_$name"
  cat >"$work/$name/shiftkey.yaml" <<CONF
store: {sqlite: $work/$name/shiftkey.db}
api: {listen: "127.0.0.1:$port"}
${CONFIG_EXTRA:-}
${!extra_var:-}
clusters:
  - identifier: bench
    database: postgres
    gateway: {listen: "127.0.0.1:$((port - 2000))"}
    master_username: bench
    backend: {host: $work, port: $PGPORT_D, admin_user: shiftkey_admin}
iam:
  users:
    - name: bench
      access_keys: [{id: "\${BENCH_KEY_ID}", secret: "\${BENCH_SECRET}"}]
      policies:
        all: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:GetClusterCredentials","Resource":"*"}]}'
CONF
  "$bin" serve --config "$work/$name/shiftkey.yaml" 2>"$work/$name/log" &
  pids+=($!)
  targets+=(-target "$name=http://127.0.0.1:$port,$!")
  for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done
setup=()
if [ "${MOTO:-1}" = 1 ] && python3 -c 'import moto.server' 2>/dev/null; then
  python3 -m moto.server -p 25055 >"$work/moto.log" 2>&1 &
  pids+=($!)
  targets+=(-target "moto=http://127.0.0.1:25055,$!")
  setup=(-create-cluster)
  for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/25055) 2>/dev/null && break; sleep 0.1; done
fi
"$work/load" "${targets[@]}" "${setup[@]}" -rounds "$ROUNDS" -d "${SECS}s" -c "${CONC:-1,8,64}" -users "${USERS:-1000}"
for spec in ${BINS:-shiftkey=}; do
  name=${spec%%=*}
  echo "$name: $(wc -c <"$work/$name/log") bytes of log, $(stat -c %s "$work/$name/shiftkey.db") bytes of store"
done
