#!/usr/bin/env bash
# Adds the pg_hba.conf lines the auth tests need (SCRAM, MD5, cleartext roles
# on 127.0.0.1) before the existing `host` lines, then reloads PostgreSQL.
# Idempotent: run it as root (or as the owner of pg_hba.conf) as often as you like.
# The roles themselves and their passwords are created by the tests.
set -euo pipefail

PGHOST="${PGHOST:-127.0.0.1}"
PGPORT="${PGPORT:-5432}"
PGUSER="${PGUSER:-postgres}"
psql_q() { psql -X -At -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres -c "$1"; }

hba_file="$(psql_q 'show hba_file')"
if [[ ! -f "$hba_file" ]]; then
  echo "pg-test-auth: hba_file '$hba_file' not found" >&2
  exit 1
fi

wanted=(
  "host all sqlcached_scram 127.0.0.1/32 scram-sha-256"
  "host all sqlcached_md5 127.0.0.1/32 md5"
  "host all sqlcached_clear 127.0.0.1/32 password"
)

# Already in place? The three lines must come, in order, before the first
# other `host*` line (pg_hba.conf is first-match).
current="$(grep -nE '^[[:space:]]*host' "$hba_file" | head -n 3 | cut -d: -f2- | sed -E 's/[[:space:]]+/ /g; s/ $//')"
expected="$(printf '%s\n' "${wanted[@]}")"
if [[ "$current" == "$expected" ]]; then
  exit 0 # already in place: quiet, this runs before every npm test
fi

tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
# Drop any earlier copies of our lines (wherever they are), then insert the
# block before the first remaining `host*` line (or append when there is none).
awk -v block="$expected" '
  /^[[:space:]]*host[[:space:]]+all[[:space:]]+sqlcached_(scram|md5|clear)[[:space:]]/ { next }
  !done && /^[[:space:]]*host/ { print block; done = 1 }
  { print }
  END { if (!done) print block }
' "$hba_file" >"$tmp"

cp -p "$hba_file" "$hba_file.sqlcached.bak"
cat "$tmp" >"$hba_file" # keep owner and mode of the original
psql_q 'select pg_reload_conf()' >/dev/null
echo "pg-test-auth: updated $hba_file (backup: $hba_file.sqlcached.bak) and reloaded"
