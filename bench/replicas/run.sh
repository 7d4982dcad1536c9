#!/usr/bin/env bash
# Two replicas on one PostgreSQL store against one: GetClusterCredentials
# load from bench/issue's client, in interleaved rounds; see README.md.
#
#   bench/replicas/run.sh [ROUNDS] [SECONDS]     (defaults 3 and 5)
#   CONC=8,64 ITER=4096 bench/replicas/run.sh     (scram_iterations of both replicas)
set -euo pipefail
ROUNDS=${1:-3}
SECS=${2:-5}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bindir=$(dirname "$(readlink -f "$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | tail -1)")")

work=$(mktemp -d /tmp/skreplicas.XXXX)
chmod 755 "$work"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$work"
pids=()
cleanup() {
  [ -n "${KEEP_LOG:-}" ] && cat "$work"/a/log "$work"/b/log >&2
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  as_pg "$bindir/pg_ctl" -D "$work/pg" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# One PostgreSQL: the cluster's backend and the shared store (fsync on).
PGPORT_D=25533
as_pg "$bindir/initdb" -D "$work/pg" -U bench --auth=trust -E UTF8 >/dev/null
cat >>"$work/pg/postgresql.conf" <<CONF
listen_addresses = ''
port = $PGPORT_D
unix_socket_directories = '$work'
max_connections = 300
CONF
as_pg "$bindir/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w start >/dev/null
psql -h "$work" -p $PGPORT_D -U bench -d postgres -qc "CREATE ROLE shiftkey_admin LOGIN CREATEROLE" -c "CREATE DATABASE shiftkey_store"

(umask 077; head -c 32 /dev/urandom | base64 >"$work/store.key")   # the key every replica shares
(cd "$root" && go build -o "$work/load" ./bench/issue && go build -o "$work/shiftkey" ./cmd/shiftkey)
export BENCH_KEY_ID=AKIABENCHBENCH000001 BENCH_SECRET=bench-secret-0123456789
urls=()
for r in a b; do
  port=$([ $r = a ] && echo 29641 || echo 29642)
  mkdir -p "$work/$r"
  cat >"$work/$r/shiftkey.yaml" <<CONF
store: {postgres: "host=$work port=$PGPORT_D user=bench dbname=shiftkey_store", secret_key_file: $work/store.key}
api: {listen: "127.0.0.1:$port"}
admin: {listen: "off"}
scram_iterations: ${ITER:-4096}
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
  "$work/shiftkey" serve --config "$work/$r/shiftkey.yaml" 2>"$work/$r/log" &
  [ -n "${KEEP_LOG:-}" ] && echo "log: $work/$r/log"
  pids+=($!)
  urls+=("http://127.0.0.1:$port,$!")
  for _ in $(seq 200); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done
"$work/load" -target "one=${urls[0]}" -target "two=${urls[0]}|${urls[1]}" \
  -rounds "$ROUNDS" -d "${SECS}s" -c "${CONC:-8,64}" -users "${USERS:-1000}"
