#!/usr/bin/env bash
# A first benchmark: pgbench's -S point lookup over a 1 000-row hot set, 16
# clients, directly against PostgreSQL and through sqlcached, alternating, in
# one run; prints tps, mean latency and the proxy/direct ratio per protocol
# mode, and the proxy's peak RSS. The full harness (peers, ceiling server,
# MariaDB, charts) is the benchmark issue's.
#
#   npm run bench                 # 10 s per cell
#   SECONDS_PER_CELL=3 npm run bench
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_CELL="${SECONDS_PER_CELL:-10}"
CLIENTS="${CLIENTS:-16}"
DB=sqlcached_bench
PG=(-h 127.0.0.1 -p 5432 -U postgres)

command -v pgbench >/dev/null || { echo "bench: pgbench is missing (apt-get install postgresql-contrib)" >&2; exit 1; }
[ -f dist/cli.js ] || npm run --silent build

psql "${PG[@]}" -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1 \
  || psql "${PG[@]}" -d postgres -qc "CREATE DATABASE $DB"
pgbench "${PG[@]}" -i -s 1 -q "$DB" >/dev/null 2>&1

work="$(mktemp -d)"
trap 'kill "$proxy_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
cat >"$work/hot.sql" <<'SQL'
\set aid random(1, 1000)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
SQL
cat >"$work/config.yaml" <<YAML
listeners:
  - name: pg
    protocol: postgres
    listen: 127.0.0.1:0
    upstream: 127.0.0.1:5432
admin:
  listen: 127.0.0.1:0
log:
  level: info
YAML

node dist/cli.js --config "$work/config.yaml" >"$work/proxy.log" 2>&1 &
proxy_pid=$!
for _ in $(seq 50); do grep -q '"msg":"listening"' "$work/proxy.log" 2>/dev/null && break; sleep 0.1; done
port="$(grep -o '"listeners":\[{[^]]*"port":[0-9]*' "$work/proxy.log" | grep -o '[0-9]*$')"
admin="$(grep -o '"admin":{[^}]*"port":[0-9]*' "$work/proxy.log" | grep -o '[0-9]*$')"

run() { # port mode → "tps latency_ms"
  pgbench -h 127.0.0.1 -p "$1" -U postgres -n -c "$CLIENTS" -j 2 -T "$SECONDS_PER_CELL" -M "$2" -f "$work/hot.sql" "$DB" 2>/dev/null \
    | awk '/^latency average/ {lat=$4} /^tps/ {tps=$3} END {printf "%.0f %.3f\n", tps, lat}'
}

echo "pgbench -S over a 1000-row hot set, $CLIENTS clients, ${SECONDS_PER_CELL}s per cell, $(nproc) cores, $(date -u +%F)"
printf '%-9s %12s %10s %12s %10s %7s\n' mode direct_tps direct_ms proxy_tps proxy_ms ratio
for mode in simple extended prepared; do
  run "$port" "$mode" >/dev/null # warm the cache for this mode
  read -r dt dl < <(run 5432 "$mode")
  read -r pt pl < <(run "$port" "$mode")
  printf '%-9s %12s %10s %12s %10s %7s\n' "$mode" "$dt" "$dl" "$pt" "$pl" "$(awk -v p="$pt" -v d="$dt" 'BEGIN {printf "%.2f", p / d}')"
done
curl -s "127.0.0.1:$admin/stats" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);console.log(`proxy: hit ratio ${j.hit_ratio.toFixed(4)}, ${j.entries} entries, ${(j.bytes/1048576).toFixed(1)} MiB cached`)})'
echo "proxy peak RSS: $(awk '/VmHWM/ {printf "%.0f MiB", $2/1024}' "/proc/$proxy_pid/status")"
