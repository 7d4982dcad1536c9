# Sourced by the bench scripts: a throwaway PostgreSQL and the shiftkey
# config they serve. Expects set -euo pipefail in the caller.

bindir=$(dirname "$(readlink -f "$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | tail -1)")")
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# bench_workdir PREFIX: a work dir PostgreSQL (the postgres OS user, as
# root) can use; its path is printed.
bench_workdir() {
  local w
  w=$(mktemp -d "/tmp/$1.XXXX")
  chmod 755 "$w"
  [ "$(id -u)" = 0 ] && chown postgres "$w"
  echo "$w"
}

# bench_pg WORK PORT [postgresql.conf lines…]: a PostgreSQL on the socket
# directory WORK and PORT, superuser bench (trust), and the role shiftkey
# provisions as; stop it with bench_pg_stop WORK.
bench_pg() {
  local w=$1 port=$2
  shift 2
  as_pg "$bindir/initdb" -D "$w/pg" -U bench --auth=trust -E UTF8 >/dev/null
  { echo "port = $port"; echo "unix_socket_directories = '$w'"; printf '%s\n' "$@"; } >>"$w/pg/postgresql.conf"
  as_pg "$bindir/pg_ctl" -D "$w/pg" -l "$w/pg.log" -w start >/dev/null
  psql -h "$w" -p "$port" -U bench -d postgres -qc "CREATE ROLE shiftkey_admin LOGIN CREATEROLE"
}
bench_pg_stop() { as_pg "$bindir/pg_ctl" -D "$1/pg" -m fast stop >/dev/null 2>&1 || true; }

# bench_yaml STORE API_PORT GW_PORT WORK PG_PORT [TOP_LINES] [CLUSTER_LINES]:
# a serve config with cluster "bench" on that PostgreSQL and user bench
# (key ${BENCH_KEY_ID}/${BENCH_SECRET}) allowed GetClusterCredentials.
# STORE is the store: block's body; the extra lines are YAML, top level
# and under the cluster (indented four spaces).
bench_yaml() {
  cat <<CONF
store: {$1}
api: {listen: "127.0.0.1:$2"}
${6:-}
clusters:
  - identifier: bench
    database: postgres
    gateway: {listen: "127.0.0.1:$3"}
    master_username: bench
${7:-}
    backend: {host: $4, port: $5, admin_user: shiftkey_admin}
iam:
  users:
    - name: bench
      access_keys: [{id: "\${BENCH_KEY_ID}", secret: "\${BENCH_SECRET}"}]
      policies:
        all: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:GetClusterCredentials","Resource":"*"}]}'
CONF
}

# bench_ports_free PORT…: fail, naming the port, when a process listens on
# one. Other jobs on a shared machine run these scripts too, with the same
# fixed ports and bench key: a server of theirs on our port would be
# measured as ours.
bench_ports_free() {
  local p
  for p in "$@"; do
    if (echo >/dev/tcp/127.0.0.1/"$p") 2>/dev/null; then
      echo "port $p is taken (another run's server, or one left over? ss -ltnp shows whose)" >&2
      return 1
    fi
  done
}

# bench_wait_port PID PORT: wait until 127.0.0.1:PORT answers; fail if PID
# exits first (it could not bind, say) or after 30 s.
bench_wait_port() {
  local pid=$1 port=$2
  for _ in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || { echo "pid $pid exited before it listened on port $port" >&2; return 1; }
    (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on port $port after 30 s" >&2
  return 1
}

# bench_cpu_cgroup NAME CPUS: a new cgroup v1 cpu cgroup limited to CPUS
# CPUs (a CFS quota), as a container's CPU limit; its directory is printed
# (write a PID to its cgroup.procs; rmdir it when its processes are gone).
# Needs root and cgroup v1's cpu controller mounted writable, as on the
# machine it was written on; cgroup v2 (cpu.max) is not handled.
bench_cpu_cgroup() {
  local g=/sys/fs/cgroup/cpu/$1
  if [ ! -w /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
    echo "no writable cgroup v1 cpu controller at /sys/fs/cgroup/cpu: LIMIT needs one (and root)" >&2
    return 1
  fi
  mkdir "$g" && echo 100000 >"$g/cpu.cfs_period_us" && echo $(($2 * 100000)) >"$g/cpu.cfs_quota_us" && echo "$g"
}
