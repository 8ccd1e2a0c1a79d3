-- The killmail store keeps new records in bincode (battles_sink::record): one format byte (1)
-- and the killmail's fields in order, without names, instead of the JSON text of V3.
-- Why: the JSON of a killmail is mostly its field names (an ESI killmail of ten attackers is
-- about 4 KB of JSON and a few hundred bytes of bincode); issue 13 measured 453 MB of JSON for
-- 280k killmails. The sink reads both forms (a JSON record begins with '{', byte 123), so rows
-- written before this migration stay as they are and are read as before.
--
-- isk_estimated: the killmail's ISK value was estimated from the price table, not given by
-- zKillboard. Why a column: battle reports rebuilt from the store need the flag of each battle,
-- and a bincode record cannot be searched in SQL (before V7 it was found by text search).
ALTER TABLE killmails ADD COLUMN isk_estimated BOOLEAN NOT NULL DEFAULT FALSE;

-- Rows of before V7 are JSON: serde_json's compact output writes the flag as
-- "iskEstimated":true (parsing them as JSONB would fail on an escaped NUL).
UPDATE killmails SET isk_estimated = TRUE
WHERE substring(record FROM 1 FOR 1) = '\x7b'::bytea
  AND strpos(convert_from(record, 'UTF8'), '"iskEstimated":true') > 0;
