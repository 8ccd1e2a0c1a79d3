-- Battle ids become time-ordered. Before V9 a battle's id was the UUIDv5 of its earliest
-- killmail's id: deterministic, but random in order, so every step's new rows landed on random
-- pages of every index keyed by battle id (battle_participants has five, battle_killmails
-- three), and on tables holding a month that index maintenance was most of a write's time.
-- From V9 the id is a UUIDv8 (RFC 9562) built from the same earliest killmail (by time, then
-- id): its time in Unix milliseconds (48 bits), the version 8, the killmail id's top 12 bits,
-- the variant and ten zero bits ('800'), and the killmail id's low 52 bits. The engine's
-- `battles_dataflow::battle_id` is the owner of that layout; this file spells it once, for the
-- battles stored before.
--
-- For each stored battle whose id is not yet the new one:
--   * its row is copied under the new id, its child rows are repointed, the old row goes;
--   * an alias maps the old id to the new one, so links and API clients holding an old id are
--     redirected (aliases that pointed at the old id point at the new one: still one hop);
--   * a visible battle gets a `battle.deleted` event with `continuingBattleId` set to its new
--     id and `reason` 'renumbered', so consumers of battle.events can follow it.
-- Unpublished events already in the outbox keep the ids they were written with, and go out
-- before these.

CREATE FUNCTION pg_temp.renumbered_battle_id(t TIMESTAMPTZ, k BIGINT) RETURNS UUID
LANGUAGE sql IMMUTABLE AS $$
  SELECT (lpad(to_hex(floor(extract(epoch FROM t) * 1000)::BIGINT & 281474976710655), 12, '0')
          || '8' || lpad(to_hex((k >> 52) & 4095), 3, '0')
          || '800' || lpad(to_hex(k & 4503599627370495), 13, '0'))::UUID
$$;

CREATE TEMPORARY TABLE renumbering AS
SELECT battle_id AS old_id, pg_temp.renumbered_battle_id(killmail_time, killmail_id) AS new_id
FROM (
  SELECT DISTINCT ON (battle_id) battle_id, killmail_time, killmail_id
  FROM battle_killmails
  ORDER BY battle_id, killmail_time, killmail_id
) AS first_killmail
WHERE battle_id <> pg_temp.renumbered_battle_id(killmail_time, killmail_id);

CREATE TEMPORARY TABLE renumbered_battles AS
SELECT b.* FROM battles b JOIN renumbering r ON b.id = r.old_id;
UPDATE renumbered_battles b SET id = r.new_id FROM renumbering r WHERE b.id = r.old_id;
-- Every column but the generated ones (duration_seconds), which PostgreSQL computes again.
DO $$
DECLARE
  columns TEXT;
BEGIN
  SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position) INTO columns
  FROM information_schema.columns
  WHERE table_schema = current_schema() AND table_name = 'battles' AND is_generated = 'NEVER';
  EXECUTE format('INSERT INTO battles (%s) SELECT %s FROM renumbered_battles', columns, columns);
END
$$;

UPDATE battle_participants t SET battle_id = r.new_id
FROM renumbering r WHERE t.battle_id = r.old_id;
UPDATE battle_killmails t SET battle_id = r.new_id
FROM renumbering r WHERE t.battle_id = r.old_id;
UPDATE battle_statistics t SET battle_id = r.new_id
FROM renumbering r WHERE t.battle_id = r.old_id;
UPDATE battle_third_parties t SET battle_id = r.new_id
FROM renumbering r WHERE t.battle_id = r.old_id;
UPDATE battle_aliases t SET battle_id = r.new_id
FROM renumbering r WHERE t.battle_id = r.old_id;

DELETE FROM battles b USING renumbering r WHERE b.id = r.old_id;

INSERT INTO battle_aliases (ended_battle_id, battle_id)
SELECT old_id, new_id FROM renumbering
ON CONFLICT (ended_battle_id) DO UPDATE SET battle_id = EXCLUDED.battle_id;

INSERT INTO battle_events_outbox (event_id, event_type, battle_id, payload)
SELECT e.event_id, 'battle.deleted', e.old_id,
       jsonb_build_object(
         'eventId', e.event_id,
         'eventType', 'battle.deleted',
         'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
         'source', 'battle-service',
         'data', jsonb_build_object(
           'battleId', e.old_id,
           'continuingBattleId', e.new_id,
           'reason', 'renumbered'))
FROM (
  SELECT gen_random_uuid() AS event_id, r.old_id, r.new_id, b.started_at
  FROM renumbering r JOIN battles b ON b.id = r.new_id
  WHERE b.deleted_at IS NULL
) AS e
ORDER BY e.started_at, e.old_id;

DROP TABLE renumbered_battles;
DROP TABLE renumbering;
DROP FUNCTION pg_temp.renumbered_battle_id(TIMESTAMPTZ, BIGINT);
