#!/usr/bin/env bash
# Makes sure the servers the tests talk to are up (npm's `pretest` runs it):
#   PostgreSQL 127.0.0.1:5432  trust auth on 127.0.0.1/::1, database `test`
#   MariaDB    127.0.0.1:3306  root with an empty password over TCP, database `test`
#                              (and, from mariadb-test-users.sh, sqlcached_db1/2 and the login users)
#   Redis      127.0.0.1:6379  nothing kept on disk
#   Chromium   /usr/bin/chromium, the headless browser the dashboard test drives
#   PgBouncer, Pgpool-II, sysbench: the benchmark's peers and load tool, installed
#              only; bench/peers.ts starts its own on free ports, so the packaged
#              services are stopped and disabled (they would hold 6432, our
#              default port, and 9999)
# A port that answers is left alone; a server that is installed but down is
# started; a server that is missing is installed from Debian's packages
# (Debian 12) and configured the way the tests expect. Idempotent, and silent
# when all is well (about 0.2 s then). Run it as root: it starts daemons,
# installs packages and edits pg_hba.conf (CI and the dev machines are root).
set -euo pipefail

WAIT_SECONDS=60
APT_LOG=/tmp/sqlcached-services-apt.log

say() { echo "services.sh: $*" >&2; }
die() {
  say "$*"
  exit 1
}
need_root() {
  [[ $EUID -eq 0 ]] || die "must run as root to $1"
}
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

pg_installed() { command -v pg_ctlcluster >/dev/null && [[ -d /etc/postgresql ]] && [[ -n "$(ls /etc/postgresql)" ]]; }
mariadb_installed() { [[ -x /usr/sbin/mariadbd ]]; }
redis_installed() { command -v redis-server >/dev/null; }
chromium_installed() { command -v chromium >/dev/null; }
pgbouncer_installed() { [[ -x /usr/sbin/pgbouncer ]]; }
pgpool_installed() { [[ -x /usr/sbin/pgpool ]]; }
sysbench_installed() { [[ -x /usr/bin/sysbench ]]; }
bench_tools_installed() { pgbouncer_installed && pgpool_installed && sysbench_installed; }

# --- install what is missing (one apt-get update for all) -------------------

install_missing() {
  local packages=()
  pg_installed || packages+=(postgresql postgresql-contrib)
  mariadb_installed || packages+=(mariadb-server mariadb-client)
  redis_installed || packages+=(redis-server)
  chromium_installed || packages+=(chromium)
  pgbouncer_installed || packages+=(pgbouncer)
  pgpool_installed || packages+=(pgpool2)
  sysbench_installed || packages+=(sysbench)
  [[ ${#packages[@]} -eq 0 ]] && return 0
  need_root "install ${packages[*]}"
  say "installing ${packages[*]} (log: $APT_LOG)"
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update && apt-get -o DPkg::Lock::Timeout=300 install -y "${packages[@]}"; } >"$APT_LOG" 2>&1; then
    tail -n 30 "$APT_LOG" >&2
    die "apt-get failed"
  fi
}

# Debian's pgbouncer and pgpool2 packages start a service on install (where no
# policy-rc.d forbids it) and at every boot. Stop a running one and turn its
# boot start off; `update-rc.d disable` also disables the systemd unit, with or
# without systemd as PID 1. Costs ~20 ms and prints nothing when both are off.
stop_packaged_peers() {
  local svc
  for svc in pgbouncer pgpool2; do
    [[ -x /etc/init.d/$svc ]] || continue
    if service "$svc" status >/dev/null 2>&1; then
      need_root "stop the packaged $svc service"
      say "stopping the packaged $svc service"
      service "$svc" stop >/dev/null 2>&1 || true
    fi
    if compgen -G "/etc/rc[2-5].d/S*$svc" >/dev/null; then
      need_root "disable the packaged $svc service"
      say "disabling the packaged $svc service at boot"
      update-rc.d "$svc" disable >/dev/null 2>&1 || true
    fi
  done
}

# --- start what is down -------------------------------------------------------

start_postgres() {
  need_root "start PostgreSQL"
  say "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
}

start_mariadb() {
  need_root "start MariaDB"
  say "starting MariaDB"
  install -d -o mysql -g mysql /run/mysqld
  start-stop-daemon --start --oknodo --quiet --background --exec /usr/sbin/mariadbd
}

start_redis() {
  need_root "start Redis"
  say "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
}

wait_port() { # port name log-hint
  local deadline=$((SECONDS + WAIT_SECONDS))
  until port_open "$1"; do
    ((SECONDS < deadline)) || die "$2 did not answer on 127.0.0.1:$1 within ${WAIT_SECONDS}s (see $3)"
    sleep 0.2
  done
}

# --- configure: auth the tests use, and the `test` databases -----------------

# Explicit -p/-U/-d: a PGPORT or PGUSER in the caller's environment must not
# send these checks to another server.
psql_tcp() { psql -X -w -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p 5432 -U postgres -d postgres "$@"; }
psql_socket() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p 5432 -d postgres "$@"; }

# A fresh install asks for passwords on 127.0.0.1 and ::1: make them `trust`
# (rewriting the stock lines, or adding ours before the first `host` line,
# since pg_hba.conf is first-match), then reload.
pg_trust_localhost() {
  need_root "configure PostgreSQL authentication"
  local hba
  hba="$(psql_socket -Atc 'show hba_file')"
  say "setting trust for 127.0.0.1 and ::1 in $hba"
  sed -i -E 's#^(host[[:space:]]+all[[:space:]]+all[[:space:]]+(127\.0\.0\.1/32|::1/128)[[:space:]]+)[^[:space:]]+#\1trust#' "$hba"
  if ! grep -qE '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
    local tmp
    tmp="$(mktemp)"
    awk '!done && /^[[:space:]]*host/ { print "host all all 127.0.0.1/32 trust"; print "host all all ::1/128 trust"; done = 1 }
         { print }
         END { if (!done) { print "host all all 127.0.0.1/32 trust"; print "host all all ::1/128 trust" } }' "$hba" >"$tmp"
    cat "$tmp" >"$hba" # keeps the file's owner and mode
    rm -f "$tmp"
  fi
  psql_socket -c 'select pg_reload_conf()' >/dev/null
  sleep 0.5 # the postmaster rereads pg_hba.conf asynchronously
}

# The `root` role and database mirror the dev machines, where tools run as
# root connect without -U/-d.
PG_SETUP_SQL="
select 'create role root superuser login' where not exists (select from pg_roles where rolname = 'root') \\gexec
select 'create database root owner root' where not exists (select from pg_database where datname = 'root') \\gexec
select 'create database test owner root' where not exists (select from pg_database where datname = 'test') \\gexec
"

setup_postgres() {
  # An open port can still answer "the database system is starting up".
  local deadline=$((SECONDS + WAIT_SECONDS))
  until pg_isready -q -h 127.0.0.1 -p 5432; do
    ((SECONDS < deadline)) || die "PostgreSQL did not accept connections within ${WAIT_SECONDS}s"
    sleep 0.2
  done
  if ! psql_tcp -Atc 'select 1' >/dev/null 2>&1; then
    pg_trust_localhost
    psql_tcp -Atc 'select 1' >/dev/null || die "PostgreSQL still refuses postgres@127.0.0.1 without a password"
  fi
  psql_tcp <<<"$PG_SETUP_SQL" >/dev/null
}

mariadb_client() { if command -v mariadb >/dev/null; then echo mariadb; else echo mysql; fi; }

# Debian's root@localhost logs in by unix_socket only: let it in with an empty
# password too, and add root@127.0.0.1 for servers with skip-name-resolve.
MARIADB_ROOT_SQL="
alter user 'root'@'localhost' identified via mysql_native_password using password('') or unix_socket;
create user if not exists 'root'@'127.0.0.1' identified by '';
grant all privileges on *.* to 'root'@'127.0.0.1' with grant option;
flush privileges;
"

setup_mariadb() {
  local client
  client="$(mariadb_client)"
  if ! "$client" --protocol=TCP -h 127.0.0.1 -P 3306 -u root -e 'create database if not exists test' 2>/dev/null; then
    need_root "configure MariaDB root"
    say "allowing root@localhost and root@127.0.0.1 with an empty password"
    "$client" --protocol=SOCKET -u root -e "$MARIADB_ROOT_SQL"
    "$client" --protocol=TCP -h 127.0.0.1 -P 3306 -u root -e 'create database if not exists test'
  fi
}

# --- main ---------------------------------------------------------------------

pg_up=0 mariadb_up=0 redis_up=0
port_open 5432 && pg_up=1
port_open 3306 && mariadb_up=1
port_open 6379 && redis_up=1

# Chromium and the bench tools are installed when missing, never started here.
if ((!pg_up || !mariadb_up || !redis_up)) || ! chromium_installed || ! bench_tools_installed; then
  install_missing
  # A fresh install may have started a server itself: look again before starting.
  ((pg_up)) || port_open 5432 || start_postgres
  ((mariadb_up)) || port_open 3306 || start_mariadb
  ((redis_up)) || port_open 6379 || start_redis
  wait_port 5432 PostgreSQL "/var/log/postgresql/"
  wait_port 3306 MariaDB "/var/log/mysql/error.log"
  wait_port 6379 Redis "/var/log/redis/ci.log"
fi
stop_packaged_peers

setup_postgres
setup_mariadb
# The login tests (SCRAM, MD5, cleartext through the proxy) need their
# pg_hba.conf lines; the script is quiet when they are already there.
bash "$(dirname "${BASH_SOURCE[0]}")/pg-test-auth.sh"
# The MySQL tests' second and third databases, and their users (a password
# user, a read-only user, an ed25519 user when the plugin loads); quiet too.
bash "$(dirname "${BASH_SOURCE[0]}")/mariadb-test-users.sh"
