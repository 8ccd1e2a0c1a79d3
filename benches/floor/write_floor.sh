#!/usr/bin/env bash
# The write floor of the battles schema on this machine: the least time PostgreSQL needs to take
# the rows `battles` writes for a set of killmails, with every index and key in place. The
# killmails are backfilled into one scratch database; every table's final rows are dumped with
# binary COPY; then one psql session loads them into a second, freshly migrated database
# (floor A of issue 13). The stream and an incremental backfill write the same rows with the same
# indexes (and read, upsert and publish besides), so their killmails/s are best read as a share
# of this figure, measured in the same hour.
#
# Usage: benches/floor/write_floor.sh [KILLMAILS]   (default 100000: the stream bench's input,
#        generated killmails of seed 7 at scale 10, in arrival order)
# Env: BATTLES (default the project's target/release/battles), PGURL (default
#      postgres://postgres@127.0.0.1:5432), KEEP=1 keeps the scratch databases.
set -euo pipefail

killmails=${1:-100000}
battles=${BATTLES:-$(cd "$(dirname "$0")/../.." && pwd)/target/release/battles}
pgurl=${PGURL:-postgres://postgres@127.0.0.1:5432}
# Tables in the order their keys need; empty ones are skipped. `battle_counts` is not among
# them: the triggers on `battles` keep it, during the load as during a backfill.
tables=(killmails entity_names battles battle_statistics battle_participants battle_killmails
        battle_third_parties battle_aliases rejected_killmails source_offsets)

work=$(mktemp -d)
src="floor_src_$$"
dst="floor_dst_$$"
cleanup() {
  if [[ "${KEEP:-0}" != 1 ]]; then
    psql "$pgurl/postgres" -qc "DROP DATABASE IF EXISTS $src" -c "DROP DATABASE IF EXISTS $dst" || true
  else
    echo "kept: $pgurl/$src (backfilled) and $pgurl/$dst (loaded)"
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Runs a `battles` command with its log in $work; on failure, shows the log.
run() {
  local log="$work/$1.log"
  if ! "$battles" --log-format text "$@" > "$log" 2>&1; then
    echo "battles $1 failed:" >&2
    tail -n 20 "$log" >&2
    return 1
  fi
}

# Scale 10 gives about 14k killmails a day; one day more than needed, then the first ones.
days=$(( (killmails + 13999) / 14000 ))
run generate --seed 7 --days "$days" --scale 10 --out "$work/generated"
head -n "$killmails" "$work/generated/killmails.jsonl" > "$work/killmails.jsonl"
loaded=$(wc -l < "$work/killmails.jsonl")
echo "killmails: $loaded (generated, seed 7, scale 10, $days days)"

run backfill --database-url "$pgurl/$src" "$work/killmails.jsonl"
run migrate --database-url "$pgurl/$dst"

load="$work/load.sql"
echo '\timing on' > "$load"
for t in "${tables[@]}"; do
  rows=$(psql "$pgurl/$src" -Atc "SELECT count(*) FROM $t")
  [[ "$rows" == 0 ]] && continue
  # Generated columns (battles.duration_seconds) are computed again by the load.
  cols=$(psql "$pgurl/$src" -Atc "SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position)
           FROM information_schema.columns
           WHERE table_schema = 'public' AND table_name = '$t' AND is_generated = 'NEVER'")
  psql "$pgurl/$src" -qc "\\copy (SELECT $cols FROM $t) TO '$work/$t.bin' WITH (FORMAT binary)"
  echo "\\echo $t: $rows rows" >> "$load"
  echo "\\copy $t ($cols) FROM '$work/$t.bin' WITH (FORMAT binary)" >> "$load"
done

# The backfill's dirty pages go to disk before the clock starts, not during the load.
psql "$pgurl/postgres" -qc CHECKPOINT
started=$(date +%s.%N)
psql "$pgurl/$dst" -v ON_ERROR_STOP=1 -q -f "$load" | grep -v '^COPY'
ended=$(date +%s.%N)
awk -v n="$loaded" -v a="$started" -v b="$ended" \
  'BEGIN { printf "write floor: %.2f s, %.0f killmails/s (one session, every index and key in place)\n", b - a, n / (b - a) }'
