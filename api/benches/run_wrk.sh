#!/usr/bin/env bash
# The API load benchmark (docs/benchmarks.md, "API"): against `battles serve` on 127.0.0.1 over
# a database seeded by api/benches/seed_battles.sql, each scenario runs wrk for DURATION with
# paths drawn at random from a file written here from the database.
#
#   BASE=http://127.0.0.1:8090 DB=postgres://postgres@127.0.0.1:5432/battles_api_bench \
#     api/benches/run_wrk.sh
set -euo pipefail
BASE=${BASE:-http://127.0.0.1:8090}
DB=${DB:-postgres://postgres@127.0.0.1:5432/battles_api_bench}
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-1}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
case "$BASE" in http://127.0.0.1:*) ;; *) echo "loopback only" >&2; exit 1 ;; esac

q() { psql -At "$DB" -c "$1"; }
echo "/api/battles" > "$DIR/list_plain"
{
  q "SELECT '/api/battles?regionId=' || primary_region_id || '&minPilots=3'
     FROM battles GROUP BY primary_region_id"
  q "SELECT '/api/battles?systemId=' || primary_system_id
     FROM (SELECT DISTINCT primary_system_id FROM battles LIMIT 500) s"
} > "$DIR/list_filtered"
q "SELECT '/api/battles/' || id FROM battles TABLESAMPLE SYSTEM (1)
   WHERE deleted_at IS NULL LIMIT 2000" > "$DIR/detail"
q "SELECT '/api/battles/' || id || '/participants' FROM battles
   WHERE total_pilots >= 500 AND deleted_at IS NULL" > "$DIR/participants"
q "SELECT '/api/battles/' || id || '/killmails' FROM battles TABLESAMPLE SYSTEM (1)
   WHERE deleted_at IS NULL LIMIT 2000" > "$DIR/killmails"

for scenario in list_plain list_filtered detail participants killmails; do
  # Warm up the statement caches and the buffer cache, then measure.
  PATHS="$DIR/$scenario" wrk -t"$THREADS" -c"$CONNECTIONS" -d3s -s api/benches/wrk_paths.lua "$BASE" > /dev/null
  printf '%-14s %5s paths  ' "$scenario" "$(wc -l < "$DIR/$scenario")"
  PATHS="$DIR/$scenario" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s api/benches/wrk_paths.lua "$BASE" | tail -1
done
