#!/usr/bin/env bash
# Creates what the MySQL integration tests need in the test MariaDB
# (127.0.0.1:3306, root with an empty password over TCP), besides `test`:
#   databases sqlcached_db1, sqlcached_db2   same table names, different rows (USE tests)
#   sqlcached_pw / secret   mysql_native_password; all privileges on test, sqlcached_db1, sqlcached_db2
#   sqlcached_ro / secret   mysql_native_password; SELECT on test.* only (the no-leak-across-GRANTs tests)
#   sqlcached_ed / secret   ed25519, if the server can load auth_ed25519 (Debian's mariadb-server
#                           ships it): logging in makes the server send an auth-switch request
# Each user exists @'%', @'localhost' and @'127.0.0.1': the proxy connects from
# 127.0.0.1, which MariaDB matches as 'localhost' unless skip-name-resolve is
# set, and an anonymous ''@'localhost' would otherwise win over '%'.
# Idempotent: one query checks everything and the script is silent when all
# is in place; otherwise the users are recreated (CREATE OR REPLACE drops old grants).
set -euo pipefail

say() { echo "mariadb-test-users: $*" >&2; }
client="$(if command -v mariadb >/dev/null; then echo mariadb; else echo mysql; fi)"
# Explicit -h/-P/-u: a MYSQL_HOST or ~/.my.cnf must not send this elsewhere.
sql() { "$client" --no-defaults --protocol=TCP -h 127.0.0.1 -P 3306 -u root -N -B -e "$1"; }

HOSTS=("%" "localhost" "127.0.0.1")

# ed25519: load the server plugin when it is in the plugin directory but not
# loaded yet (INSTALL SONAME persists in mysql.plugin, so this happens once).
# Missing or unloadable: no sqlcached_ed, and the tests that need it skip.
ed25519_status() { sql "select plugin_status from information_schema.all_plugins where plugin_name = 'ed25519'" 2>/dev/null || true; }
ed_status="$(ed25519_status)"
if [[ -n "$ed_status" && "$ed_status" != "ACTIVE" ]]; then
  sql "install soname 'auth_ed25519'" >/dev/null 2>&1 || true
  ed_status="$(ed25519_status)"
fi
ed25519=0
[[ "$ed_status" == "ACTIVE" ]] && ed25519=1

# Everything in one round trip: both databases, each user on each host with the
# expected plugin and password, and the grants that tell the two users apart.
check="$(sql "
select
  (select count(*) from information_schema.schemata where schema_name in ('sqlcached_db1', 'sqlcached_db2')) = 2
  and (select count(*) from mysql.global_priv
       where host in ('%', 'localhost', '127.0.0.1')
         and ((user in ('sqlcached_pw', 'sqlcached_ro') and json_value(priv, '\$.plugin') = 'mysql_native_password'
               and json_value(priv, '\$.authentication_string') = password('secret'))
           or (user = 'sqlcached_ed' and json_value(priv, '\$.plugin') = 'ed25519'))) = $((${#HOSTS[@]} * (2 + ed25519)))
  and (select count(*) from mysql.db where user = 'sqlcached_ro' and db = 'test' and select_priv = 'Y' and insert_priv = 'N') = ${#HOSTS[@]}
  and (select count(*) from mysql.db where user = 'sqlcached_ro') = ${#HOSTS[@]}
  and (select count(*) from mysql.db where user = 'sqlcached_pw' and db in ('test', 'sqlcached_db1', 'sqlcached_db2')
       and select_priv = 'Y' and insert_priv = 'Y' and create_priv = 'Y' and drop_priv = 'Y') = $((3 * ${#HOSTS[@]}))
")"
[[ "$check" == "1" ]] && exit 0

ed_note=""
((ed25519)) && ed_note=", sqlcached_ed"
say "creating databases sqlcached_db1, sqlcached_db2 and users sqlcached_pw, sqlcached_ro$ed_note"
setup="
create database if not exists test;
create database if not exists sqlcached_db1;
create database if not exists sqlcached_db2;
"
for h in "${HOSTS[@]}"; do
  setup+="
create or replace user 'sqlcached_pw'@'$h' identified via mysql_native_password using password('secret');
grant all privileges on test.* to 'sqlcached_pw'@'$h';
grant all privileges on sqlcached_db1.* to 'sqlcached_pw'@'$h';
grant all privileges on sqlcached_db2.* to 'sqlcached_pw'@'$h';
create or replace user 'sqlcached_ro'@'$h' identified via mysql_native_password using password('secret');
grant select on test.* to 'sqlcached_ro'@'$h';
"
done
sql "$setup"

if ((ed25519)); then
  setup=""
  for h in "${HOSTS[@]}"; do
    setup+="
create or replace user 'sqlcached_ed'@'$h' identified via ed25519 using password('secret');
grant all privileges on test.* to 'sqlcached_ed'@'$h';
"
  done
  sql "$setup"
fi
