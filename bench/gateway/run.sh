#!/usr/bin/env bash
# Side-by-side pgbench of direct PostgreSQL, PgBouncer (session mode, SCRAM)
# and the shiftkey gateway (SCRAM with an issued credential), in interleaved
# rotated rounds; prints each round, then medians and ratios.
#
#   bench/gateway/run.sh [ROUNDS] [SECONDS]      (defaults 5 and 10)
#   POOL_SIZE=0 bench/gateway/run.sh …            (gateway without backend reuse; default 100, as PgBouncer's pool)
#   HOLD=600 bench/gateway/run.sh                 (set up, print pgbench commands and pids, wait: for perf)
#   MODES='-S -C -c 50 -j 2' bench/gateway/run.sh  (other pgbench workloads, separated by |)
#   MAX_CONNECTIONS=1100 IDLE=1000 bench/gateway/run.sh 1 1   (also: gateway memory per idle session)
#   MODES='pgx -c 16' bench/gateway/run.sh        (logins with a Go client: pgx connect, select 1, close; see logins/)
#   RELAY_SCHED=process bench/gateway/run.sh …    (limits.relay_sched for the gateway: batch (default), normal, process)
#   SCRAM_ITERATIONS=1 bench/gateway/run.sh …     (PBKDF2 count of the gateway's issued credential and of the
#                                                  bench role's verifier (PgBouncer, direct); default 4096 both)
#   GATEWAY_SCRAM_ITERATIONS=1 bench/gateway/run.sh …  (the gateway's count only: PgBouncer and direct keep
#                                                  PostgreSQL's 4096, or SCRAM_ITERATIONS)
#   TLS=1 bench/gateway/run.sh …                  (clients use sslmode=require on all three; PgBouncer and
#                                                  the gateway terminate client TLS, both reach PostgreSQL over its socket)
#   BACKEND_TLS=1 bench/gateway/run.sh …          (TLS=1, and both proxies reach PostgreSQL over TCP with TLS and a
#                                                  client certificate (hostssl … cert): the gateway with backend.login
#                                                  cert, PgBouncer with server_tls_*; direct pgbench logs in by certificate
#                                                  too. A second gateway, gateway-goroutine (relay: goroutine), runs
#                                                  beside the first (RELAY, default event: io_uring where allowed, else epoll;
#                                                  both carry TLS backends on their loops))
#
# Needs: PostgreSQL server binaries, pgbench, pgbouncer, Debian's awscli, Go.
set -euo pipefail
ROUNDS=${1:-5}
SECS=${2:-10}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/../lib.sh"
command -v pgbouncer >/dev/null || { echo "install pgbouncer: apt-get install -y pgbouncer" >&2; exit 1; }
command -v pgbench >/dev/null || { echo "install pgbench (postgresql-contrib or postgresql)" >&2; exit 1; }

# Fixed ports below the ephemeral range (32768+), so TIME-WAIT sockets of
# earlier runs cannot hold them; another run's servers can, and would be
# measured as ours.
PGPORT_D=25432 BOUNCER=26432 GW=27439 API=29439 GW2=27440 API2=29440
bench_ports_free $PGPORT_D $BOUNCER $GW $API $([ -n "${BACKEND_TLS:-}" ] && echo $GW2 $API2)

work=$(mktemp -d /tmp/skbench.XXXX)
chmod 755 "$work"
[ "$(id -u)" = 0 ] && chown postgres "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # runuser's child outlives it: stop PgBouncer by its pid file.
  [ -f "$work/pgbouncer.pid" ] && kill "$(cat "$work/pgbouncer.pid")" 2>/dev/null || true
  as_pg "$bindir/pg_ctl" -D "$work/pg" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

as_pg "$bindir/initdb" -D "$work/pg" -U bench --auth=trust -E UTF8 >/dev/null
cat >>"$work/pg/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PGPORT_D
unix_socket_directories = '$work'
max_connections = ${MAX_CONNECTIONS:-200}
fsync = off
synchronous_commit = off
CONF
[ -n "${BACKEND_TLS:-}" ] && TLS=1
if [ -n "${BACKEND_TLS:-}" ]; then
  # A CA (the gateway's backend_auth CA) signs PostgreSQL's certificate and
  # the client certificates of PgBouncer and direct pgbench (CN bench).
  openssl ecparam -genkey -name prime256v1 -noout -out "$work/ca.key"
  openssl req -x509 -new -key "$work/ca.key" -days 2 -subj /CN=bench-ca -out "$work/ca.crt" >/dev/null 2>&1
  for who in server client; do
    cn=127.0.0.1; [ $who = client ] && cn=bench
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=$cn -keyout "$work/$who.key" -out "$work/$who.csr" >/dev/null 2>&1
    printf 'subjectAltName=IP:127.0.0.1\n' >"$work/ext.cnf"
    openssl x509 -req -in "$work/$who.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial -days 2 \
      -extfile "$work/ext.cnf" -out "$work/$who.crt" >/dev/null 2>&1
  done
  cp "$work/server.crt" "$work/tls.crt"; cp "$work/server.key" "$work/tls.key"
  chmod 600 "$work"/*.key
  [ "$(id -u)" = 0 ] && chown postgres "$work"/*.key "$work"/*.crt
  printf "ssl = on\nssl_cert_file = '%s'\nssl_key_file = '%s'\nssl_ca_file = '%s'\n" "$work/tls.crt" "$work/tls.key" "$work/ca.crt" >>"$work/pg/postgresql.conf"
  export PGSSLMODE=require
elif [ -n "${TLS:-}" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
    -keyout "$work/tls.key" -out "$work/tls.crt" >/dev/null 2>&1
  chmod 600 "$work/tls.key"
  [ "$(id -u)" = 0 ] && chown postgres "$work/tls.key" "$work/tls.crt"
  printf "ssl = on\nssl_cert_file = '%s'\nssl_key_file = '%s'\n" "$work/tls.crt" "$work/tls.key" >>"$work/pg/postgresql.conf"
  export PGSSLMODE=require
fi
# Direct TCP logins use SCRAM too, so all three pay for authentication.
cat >"$work/pg/pg_hba.conf" <<CONF
local all all trust
host all all 127.0.0.1/32 scram-sha-256
CONF
if [ -n "${BACKEND_TLS:-}" ]; then
  printf 'local all all trust\nhostssl all all 127.0.0.1/32 cert\n' >"$work/pg/pg_hba.conf"
fi
as_pg "$bindir/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w start >/dev/null
psql -h "$work" -p $PGPORT_D -U bench -d postgres -qc "ALTER ROLE bench PASSWORD 'benchpw'"
# shiftkey provisions as a role of its own; it never issues credentials for it.
psql -h "$work" -p $PGPORT_D -U bench -d postgres -qc "CREATE ROLE shiftkey_admin LOGIN CREATEROLE"
pgbench -h "$work" -p $PGPORT_D -U bench -i -s 10 -q postgres >/dev/null 2>&1

if [ -n "${SCRAM_ITERATIONS:-}" ]; then
  # PostgreSQL 15 has no scram_iterations setting: give it a verifier made
  # at that count, so that PgBouncer's clients and direct pgbench hash the
  # password as many times as the gateway's (scram_iterations below).
  v=$(python3 -c '
import base64, hashlib, hmac, os, sys
i, salt = int(sys.argv[1]), os.urandom(16)
sp = hashlib.pbkdf2_hmac("sha256", b"benchpw", salt, i)
key = lambda what: hmac.new(sp, what, "sha256").digest()
b64 = lambda b: base64.b64encode(b).decode()
print("SCRAM-SHA-256$%d:%s$%s:%s" % (i, b64(salt), b64(hashlib.sha256(key(b"Client Key")).digest()), b64(key(b"Server Key"))))
' "$SCRAM_ITERATIONS")
  psql -h "$work" -p $PGPORT_D -U bench -d postgres -qc "ALTER ROLE bench PASSWORD '$v'"
fi
verifier=$(psql -h "$work" -p $PGPORT_D -U bench -d postgres -Atc "SELECT rolpassword FROM pg_authid WHERE rolname = 'bench'")
printf '"bench" "%s"\n' "$verifier" >"$work/userlist.txt"
cat >"$work/pgbouncer.ini" <<CONF
[databases]
postgres = host=$([ -n "${BACKEND_TLS:-}" ] && echo 127.0.0.1 || echo "$work") port=$PGPORT_D dbname=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $work/userlist.txt
pool_mode = session
max_client_conn = 1000
default_pool_size = 100
logfile = $work/pgbouncer.log
pidfile = $work/pgbouncer.pid
CONF
if [ -n "${TLS:-}" ]; then
  printf 'client_tls_sslmode = require\nclient_tls_cert_file = %s\nclient_tls_key_file = %s\n' \
    "$work/tls.crt" "$work/tls.key" >>"$work/pgbouncer.ini"
fi
if [ -n "${BACKEND_TLS:-}" ]; then
  printf 'server_tls_sslmode = verify-ca\nserver_tls_ca_file = %s\nserver_tls_cert_file = %s\nserver_tls_key_file = %s\n' \
    "$work/ca.crt" "$work/client.crt" "$work/client.key" >>"$work/pgbouncer.ini"
fi
[ "$(id -u)" = 0 ] && chown postgres "$work"/pgbouncer.ini "$work"/userlist.txt
as_pg pgbouncer "$work/pgbouncer.ini" >/dev/null 2>&1 &
pids+=($!)

(cd "$root" && go build -o "$work/shiftkey" ./cmd/shiftkey && go build -o "$work/logins" ./bench/gateway/logins)
export BENCH_KEY_ID=AKIABENCHBENCH000001 BENCH_SECRET=bench-secret-0123456789
# bench is the superuser sessions run as, as Redshift's master user.
# No admin listener: another shiftkey on the machine may hold 9440.
top="limits: {pool_size: ${POOL_SIZE:-100}${RELAY_SCHED:+, relay_sched: $RELAY_SCHED}}"$'\n'"admin: {listen: \"off\"}"
[ -n "${TLS:-}" ] && top+=$'\n'"tls: {cert_file: $work/tls.crt, key_file: $work/tls.key, require: true}"
gw_iter=${GATEWAY_SCRAM_ITERATIONS:-${SCRAM_ITERATIONS:-}}
[ -n "$gw_iter" ] && top+=$'\n'"scram_iterations: $gw_iter"
if [ -n "${BACKEND_TLS:-}" ]; then
  top="limits: {pool_size: ${POOL_SIZE:-100}, relay: ${RELAY:-event}}"$'\n'"admin: {listen: \"off\"}"$'\n'"tls: {cert_file: $work/tls.crt, key_file: $work/tls.key, require: true}"
  top+=$'\n'"backend_auth: {ca_cert_file: $work/ca.crt, ca_key_file: $work/ca.key}"
  bench_yaml "sqlite: $work/shiftkey.db" $API $GW 127.0.0.1 $PGPORT_D "$top" \
    "    allow_superuser_master: true" | sed 's/admin_user: shiftkey_admin}/admin_user: shiftkey_admin, login: cert}/' >"$work/shiftkey.yaml"
  # The twin on the goroutine relay has a store of its own (serve locks its
  # SQLite store to one process) and so a credential of its own.
  sed -e "s/relay: ${RELAY:-event}/relay: goroutine/" -e "s/127.0.0.1:$GW/127.0.0.1:$GW2/" -e "s/127.0.0.1:$API/127.0.0.1:$API2/" \
    -e "s|sqlite: $work/shiftkey.db|sqlite: $work/shiftkey2.db|" \
    "$work/shiftkey.yaml" >"$work/shiftkey2.yaml"
else
  bench_yaml "sqlite: $work/shiftkey.db" $API $GW "$work" $PGPORT_D "$top" \
    "    allow_superuser_master: true" >"$work/shiftkey.yaml"
fi
"$work/shiftkey" serve --config "$work/shiftkey.yaml" 2>"$work/shiftkey.log" &
pids+=($!)
skpid=$!
bench_wait_port $skpid $API || { cat "$work/shiftkey.log" >&2; exit 1; }
issue() { # issue API_PORT: "DbUser DbPassword" of a credential for bench
  AWS_ACCESS_KEY_ID=$BENCH_KEY_ID AWS_SECRET_ACCESS_KEY=$BENCH_SECRET AWS_DEFAULT_REGION=us-east-1 \
    /usr/bin/aws --endpoint-url "http://127.0.0.1:$1" redshift get-cluster-credentials --cluster-identifier bench \
    --db-user bench --duration-seconds 3600 --query '[DbUser,DbPassword]' --output text
}
read -r gwuser gwpass < <(issue $API)

skpid2=""
if [ -n "${BACKEND_TLS:-}" ]; then
  "$work/shiftkey" serve --config "$work/shiftkey2.yaml" 2>"$work/shiftkey2.log" &
  pids+=($!)
  skpid2=$!
  bench_wait_port $skpid2 $API2 || { cat "$work/shiftkey2.log" >&2; exit 1; }
  read -r gwuser2 gwpass2 < <(issue $API2)
fi

if [ -n "${HOLD:-}" ]; then
  # Keep the three targets up for profiling by hand (perf record -g -p PID).
  echo "gateway pid $skpid: PGPASSWORD=$gwpass pgbench -h 127.0.0.1 -p $GW -U $gwuser -n -S -T 10 -c 8 -j 2 postgres"
  echo "pgbouncer pid $(cat "$work/pgbouncer.pid"): PGPASSWORD=benchpw pgbench -h 127.0.0.1 -p $BOUNCER -U bench -n -S -T 10 -c 8 -j 2 postgres"
  echo "work dir $work; holding for $HOLD s"; sleep "$HOLD"; exit 0
fi
# CPU time (ns) of every thread of a process, from schedstat.
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f", s}'; }
bouncer_pid() { cat "$work/pgbouncer.pid"; }
run() { # name port user password flags... → "name tps proxy-µs-per-transaction"
  local name=$1 port=$2 user=$3 pass=$4 pid="" before=0; shift 4
  case $name in pgbouncer) pid=$(bouncer_pid) ;; gateway) pid=$skpid ;; gateway-goroutine) pid=$skpid2 ;; esac
  [ -n "$pid" ] && before=$(cpu_ns "$pid")
  local out
  # With BACKEND_TLS, direct clients log in by certificate like the proxies
  # (libpq and pgx both read PGSSLCERT and PGSSLKEY).
  local cert=() ; [ -n "${BACKEND_TLS:-}" ] && [ "$name" = direct ] && cert=(PGSSLCERT="$work/client.crt" PGSSLKEY="$work/client.key")
  if [ "$1" = pgx ]; then
    shift
    out=$(env "${cert[@]}" "$work/logins" -dsn "host=127.0.0.1 port=$port user=$user password=$pass dbname=postgres sslmode=${PGSSLMODE:-disable}" -d "${SECS}s" "$@" 2>/dev/null)
  else
    out=$(env "${cert[@]}" PGPASSWORD="$pass" pgbench -h 127.0.0.1 -p "$port" -U "$user" -n -T "$SECS" "$@" postgres 2>/dev/null)
  fi
  local after=0; [ -n "$pid" ] && after=$(cpu_ns "$pid")
  awk -v n="$name" -v cpu=$((after - before)) -v haspid="$pid" '
    /^number of transactions actually processed:/ {tx = $NF}
    /^tps = / {tps = $3}
    END {if (haspid != "" && tx > 0) printf "%s %.0f %.1f\n", n, tps, cpu / tx / 1000; else printf "%s %.0f -\n", n, tps}' <<<"$out"
}
declare -A res cpus round pair
med() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
targets=("direct $PGPORT_D bench benchpw" "pgbouncer $BOUNCER bench benchpw" "gateway $GW $gwuser $gwpass")
[ -n "$skpid2" ] && targets+=("gateway-goroutine $GW2 $gwuser2 $gwpass2")
nt=${#targets[@]}
IFS='|' read -r -a modes <<<"${MODES:--S -c 8 -j 2|-S -C -c 4 -j 2}"
for mode in "${modes[@]}"; do
  echo "== pgbench $mode -T $SECS, $ROUNDS rounds (order rotates each round)"
  for r in $(seq 0 $((ROUNDS - 1))); do
    for i in $(seq 0 $((nt - 1))); do
      t=(${targets[$(((i + r) % nt))]})
      read -r name tps cpu < <(run "${t[0]}" "${t[1]}" "${t[2]}" "${t[3]}" $mode)
      echo "round $((r + 1)): $name $tps tps, proxy CPU ${cpu} µs/transaction"
      res["$mode/$name"]+="$tps "
      round["$name"]=$tps
      [ "$cpu" != - ] && cpus["$mode/$name"]+="$cpu "
    done
    pair["$mode"]+="$(awk -v g="${round[gateway]}" -v b="${round[pgbouncer]}" 'BEGIN {if (b > 0) printf "%.4f", g / b}') "
  done
  d=$(med "${res[$mode/direct]}"); b=$(med "${res[$mode/pgbouncer]}"); g=$(med "${res[$mode/gateway]}")
  echo "median tps: direct $d  pgbouncer $b  gateway $g"
  echo "median proxy CPU per transaction (µs): pgbouncer $(med "${cpus[$mode/pgbouncer]}")  gateway $(med "${cpus[$mode/gateway]}")"
  awk -v d="$d" -v b="$b" -v g="$g" 'BEGIN {printf "ratios: gateway/pgbouncer %.2f  gateway/direct %.2f  pgbouncer/direct %.2f\n", g/b, g/d, b/d}'
  if [ -n "$skpid2" ]; then
    g2=$(med "${res[$mode/gateway-goroutine]}")
    echo "gateway-goroutine: median tps $g2, CPU per transaction $(med "${cpus[$mode/gateway-goroutine]}") µs; gateway/gateway-goroutine $(awk -v g="$g" -v g2="$g2" 'BEGIN {printf "%.2f", g/g2}')"
  fi
  # Paired within rounds, which share the machine's state of the moment (it drifts).
  awk -v m="$(med "${pair[$mode]}")" -v all="${pair[$mode]}" 'BEGIN {n = split(all, r, " "); for (i = 1; i <= n; i++) if (r[i] > 1) up++
    printf "per round: gateway/pgbouncer median %.2f, gateway ahead in %d of %d rounds\n", m, up, n}'
done
echo "shiftkey RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$skpid/status)"
if [ -n "${IDLE:-}" ]; then
  # Memory per idle session: needs MAX_CONNECTIONS above IDLE (each holds a backend).
  ulimit -n 65536 2>/dev/null || true
  (cd "$root" && go run ./bench/gateway/idleconns -n "$IDLE" -pid "$skpid" \
    -dsn "host=127.0.0.1 port=$GW user=$gwuser password=$gwpass dbname=postgres sslmode=disable")
fi
