#!/usr/bin/env bash
# The web pages' load benchmark (docs/benchmarks.md, "Pages"): like run_wrk.sh, against
# `battles serve` on 127.0.0.1 over the database seeded by api/benches/seed_battles.sql, each
# scenario runs wrk for DURATION with paths drawn at random from a file written here from the
# database (api/benches/wrk_paths.lua prints requests/s and p50/p95/p99).
#
#   BASE=http://127.0.0.1:8091 DB=postgres://postgres@127.0.0.1:5432/battles_api_bench \
#     api/benches/run_wrk_pages.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BASE=${BASE:-http://127.0.0.1:8091}
DB=${DB:-postgres://postgres@127.0.0.1:5432/battles_api_bench}
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-1}
SCENARIOS=${SCENARIOS:-front region report_random report_large characters_large kills_large}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
case "$BASE" in http://127.0.0.1:*) ;; *) echo "loopback only" >&2; exit 1 ;; esac

q() { psql -At "$DB" -c "$1"; }
echo "/" > "$DIR/front"
q "SELECT '/?regionId=' || primary_region_id FROM battles GROUP BY primary_region_id" > "$DIR/region"
q "SELECT '/battles/' || id FROM battles TABLESAMPLE SYSTEM (1)
   WHERE deleted_at IS NULL LIMIT 2000" > "$DIR/report_random"
q "SELECT '/battles/' || id FROM battles
   WHERE total_pilots >= 500 AND deleted_at IS NULL" > "$DIR/report_large"
sed 's|$|/characters|' "$DIR/report_large" > "$DIR/characters_large"
sed 's|$|/kills|' "$DIR/report_large" > "$DIR/kills_large"

for scenario in $SCENARIOS; do
  # Warm up the statement caches and the buffer cache, then measure.
  PATHS="$DIR/$scenario" wrk -t"$THREADS" -c"$CONNECTIONS" -d3s -s api/benches/wrk_paths.lua "$BASE" > /dev/null
  printf '%-17s %5s paths  ' "$scenario" "$(wc -l < "$DIR/$scenario")"
  PATHS="$DIR/$scenario" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s api/benches/wrk_paths.lua "$BASE" | tail -1
done
