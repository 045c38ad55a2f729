#!/usr/bin/env bash
# The same all-hits workload through two sqlcached instances in one run: one
# with the memory store, one with the Redis store (the local Redis at 6379,
# its own key prefix). pgbench's -S point lookup over a 1 000-row hot set, 16
# clients; prints tps and latency p50/p99 (from pgbench's per-transaction
# log) for each store, alternating, and the Redis/memory ratio.
#
#   bash bench/store-compare.sh               # 10 s per cell
#   SECONDS_PER_CELL=3 bash bench/store-compare.sh
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
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
cat >"$work/hot.sql" <<'SQL'
\set aid random(1, 1000)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
SQL

start() { # store: starts a proxy with it; sets port and admin, appends its pid to pids
  cat >"$work/$1.yaml" <<YAML
listeners:
  - name: pg
    protocol: postgres
    listen: 127.0.0.1:0
    upstream: 127.0.0.1:5432
cache:
  store: $1
  redis:
    key_prefix: sqlcached-bench-$$
admin:
  listen: 127.0.0.1:0
log:
  level: info
YAML
  node dist/cli.js --config "$work/$1.yaml" >"$work/$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do grep -q '"msg":"listening"' "$work/$1.log" 2>/dev/null && break; sleep 0.1; done
  port="$(grep -o '"listeners":\[{[^]]*"port":[0-9]*' "$work/$1.log" | grep -o '[0-9]*$')"
  admin="$(grep -o '"admin":{[^}]*"port":[0-9]*' "$work/$1.log" | grep -o '[0-9]*$')"
  [ -n "$port" ] || { echo "bench: the $1-store proxy did not start:" >&2; cat "$work/$1.log" >&2; exit 1; }
}

run() { # port mode → "tps p50_ms p99_ms"
  local logdir="$work/log-$1-$2"
  mkdir -p "$logdir"
  local tps
  tps="$(cd "$logdir" && pgbench -h 127.0.0.1 -p "$1" -U postgres -n -c "$CLIENTS" -j 2 -T "$SECONDS_PER_CELL" -M "$2" \
    -l --log-prefix=tx -f "$work/hot.sql" "$DB" 2>/dev/null | awk '/^tps/ {printf "%.0f", $3}')"
  # Column 3 of pgbench's transaction log is the latency in microseconds.
  cat "$logdir"/tx* | awk '{print $3}' | sort -n | awk -v tps="$tps" '{a[NR]=$1} END {printf "%s %.3f %.3f\n", tps, a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000}'
  rm -rf "$logdir"
}

redis-cli -p 6379 ping >/dev/null 2>&1 || { echo "bench: Redis is not answering on 6379 (bash scripts/services.sh)" >&2; exit 1; }
start memory
mport=$port madmin=$admin
start redis
rport=$port radmin=$admin

echo "memory vs Redis store: pgbench -S over a 1000-row hot set, $CLIENTS clients, ${SECONDS_PER_CELL}s per cell, $(nproc) cores, $(date -u +%F)"
printf '%-9s %11s %9s %9s %11s %9s %9s %7s\n' mode memory_tps p50_ms p99_ms redis_tps p50_ms p99_ms ratio
for mode in simple prepared; do
  run "$mport" "$mode" >/dev/null # warm both caches for this mode
  run "$rport" "$mode" >/dev/null
  read -r mt m50 m99 < <(run "$mport" "$mode")
  read -r rt r50 r99 < <(run "$rport" "$mode")
  printf '%-9s %11s %9s %9s %11s %9s %9s %7s\n' "$mode" "$mt" "$m50" "$m99" "$rt" "$r50" "$r99" "$(awk -v r="$rt" -v m="$mt" 'BEGIN {printf "%.2f", r / m}')"
done
for pair in "memory $madmin" "redis $radmin"; do
  set -- $pair
  curl -s "127.0.0.1:$2/stats" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);console.log(`'"$1"': hit ratio ${j.hit_ratio.toFixed(4)}, store errors ${j.store_errors}`)})'
done
redis-cli -p 6379 --scan --pattern "sqlcached-bench-$$:*" | xargs -r redis-cli -p 6379 del >/dev/null
