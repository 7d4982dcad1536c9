#!/usr/bin/env bash
# Issue 16's durability check by hand: a c=64 burst of GetClusterCredentials
# against one `shiftkey serve`, kill -9 in the middle of it, a restart on
# the same store, and a login through the gateway with every credential the
# API acknowledged. See README.md ("kill -9 in the middle of a burst").
#
#   bench/issue/kill9.sh [sqlite|postgres]       (default sqlite)
#   USERS=0 bench/issue/kill9.sh …                (a new DbUser, so a new salt, per issue; default 1000 names)
#   USERS=0 ROLES=100000 bench/issue/kill9.sh …   (roles u0…uROLES made for it, default 40000: a login
#                                                  past them fails with 28000 "role does not exist")
#   KILL_AFTER=4 C=64 SECS=12 bench/issue/kill9.sh   (kill after 4 s of the burst, of 12)
#   BIN=/tmp/sk bench/issue/kill9.sh              (that build; default: build this tree)
#   KEEP=1 bench/issue/kill9.sh                   (keep the work dir: logs, creds file)
#   CONFIG_EXTRA='scram_iterations: 1' bench/issue/kill9.sh   (lines added to serve's config)
#
# Ports: PORT_BASE (default 24600) + 1 the API, + 2 the gateway; PostgreSQL
# listens on a socket in the work dir only.
set -euo pipefail
STORE=${1:-sqlite}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/../lib.sh"
base=${PORT_BASE:-24600}
API=$((base + 1)) GW=$((base + 2)) PGP=$((base + 3))
for p in $API $GW; do
  if (echo >/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "port $p is taken: set PORT_BASE" >&2; exit 1; fi
done

work=$(bench_workdir skkill9)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  bench_pg_stop "$work"
  if [ "${KEEP:-0}" = 1 ]; then echo "work dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

bench_pg "$work" $PGP "listen_addresses = ''"
psql() { command psql -h "$work" -p $PGP -U bench -d postgres -qX "$@"; }
# No AutoCreate: a DbUser's role must exist to log in. USERS=0 names
# u1, u2, … once each; make more roles than the burst can ask for.
nroles=${USERS:-1000}
[ "$nroles" = 0 ] && nroles=${ROLES:-40000}
echo "SELECT format('CREATE ROLE %I LOGIN', 'u' || g) FROM generate_series(0, $nroles) g \\gexec" | psql >/dev/null

bin=${BIN:-$work/shiftkey}
[ -n "${BIN:-}" ] || (cd "$root" && go build -o "$bin" ./cmd/shiftkey)
(cd "$root" && go build -o "$work/load" ./bench/issue)
export BENCH_KEY_ID=AKIABENCHBENCH000001 BENCH_SECRET=bench-secret-0123456789
case $STORE in
  sqlite) store="sqlite: $work/shiftkey.db" ;;
  postgres)
    psql -c "CREATE DATABASE skstore"
    (umask 077; head -c 32 /dev/urandom | base64 >"$work/store.key")
    store="postgres: \"host=$work port=$PGP user=bench dbname=skstore\", secret_key_file: $work/store.key" ;;
  *) echo "store: sqlite or postgres" >&2; exit 2 ;;
esac
bench_yaml "$store" $API $GW "$work" $PGP "admin: {listen: \"off\"}
${CONFIG_EXTRA:-}" >"$work/shiftkey.yaml"

start() { # start LOG: serve in the background, its pid in $sk, once its API and gateway answer
  "$bin" serve --config "$work/shiftkey.yaml" 2>"$1" &
  sk=$!
  pids+=($sk)
  for _ in $(seq 300); do
    kill -0 $sk 2>/dev/null || { echo "serve exited:" >&2; cat "$1" >&2; exit 1; }
    (echo >/dev/tcp/127.0.0.1/$API) 2>/dev/null && (echo >/dev/tcp/127.0.0.1/$GW) 2>/dev/null && return
    sleep 0.1
  done
  echo "serve did not come up" >&2; exit 1
}

start "$work/serve1.log"
echo "== $STORE store, c=${C:-64}, DbUser pool ${USERS:-1000}: burst of ${SECS:-12} s, kill -9 after ${KILL_AFTER:-4} s"
"$work/load" -target "shiftkey=http://127.0.0.1:$API,$sk" -c "${C:-64}" -rounds 1 -d "${SECS:-12}s" \
  -users "${USERS:-1000}" -creds "$work/creds" >"$work/load.out" 2>&1 &
load=$!
pids+=($load)
# The warm-up (the DbUser pool's salts, or 200 issues) comes first: wait
# for the burst's own line of output to be due, not for the load to start.
sleep "${KILL_AFTER:-4}"
kill -9 "$sk"
echo "killed serve (pid $sk) at $(date +%T.%N | cut -c1-12)"
wait "$load" || true
cat "$work/load.out"

start "$work/serve2.log"
echo "== restarted (pid $sk); logging in with every acknowledged credential"
"$work/load" -login "$work/creds" -dsn "host=127.0.0.1 port=$GW dbname=postgres sslmode=disable" | tail -20 || true
echo "== the restarted serve's log, but for info lines:"
grep -v '"level":"INFO"' "$work/serve2.log" || echo "(none)"
echo "== every message of the restarted serve's log, counted:"
sed -n 's/.*"msg":"\([^"]*\)".*/\1/p' "$work/serve2.log" | sort | uniq -c | sort -rn
