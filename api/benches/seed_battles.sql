-- Fills a migrated battles database with generated battles for the API load benchmark
-- (docs/benchmarks.md, "API"). Run from the project root, on a scratch database:
--
--   battles migrate --database-url postgres://postgres@127.0.0.1:5432/battles_api_bench
--   psql -v battles=1000000 -f api/benches/seed_battles.sql postgres://postgres@127.0.0.1:5432/battles_api_bench
--
-- Shape (deterministic, from hashes of the battle number g):
-- - battles one every 2 minutes from 2022-01-01 (to late 2025 for 1M) in real k-space systems (data/sde), 2–5 pilots and
--   1–2 killmails each; every 2,000th battle is large: 500–1,499 pilots, a killmail per 2 pilots;
-- - participants with names, corporations and alliances (2,000 alliances), ships from a list;
-- - killmails, statistics rows (top killers/losers, ship types, alliances) for every battle;
-- - status historical before 2025, closed after, open for the last 50; 1 in 500 soft-deleted.

\set ON_ERROR_STOP on
\if :{?battles}
\else
  \set battles 1000000
\endif

SET synchronous_commit = off;

CREATE TEMP TABLE sde_systems (id BIGINT, constellation BIGINT, region BIGINT, security FLOAT8, name TEXT);
\copy sde_systems FROM 'data/sde/systems.csv' WITH (FORMAT csv, HEADER true)
CREATE TEMP TABLE sde_regions (id BIGINT, name TEXT);
\copy sde_regions FROM 'data/sde/regions.csv' WITH (FORMAT csv, HEADER true)

CREATE TEMP TABLE systems AS
SELECT (row_number() OVER (ORDER BY s.id) - 1)::INT AS n, s.id, s.name, s.region, r.name AS region_name
FROM sde_systems s JOIN sde_regions r ON r.id = s.region
WHERE s.id < 31000000;
CREATE UNIQUE INDEX ON systems(n);
ANALYZE systems;

-- Ship types the generated pilots fly.
CREATE TEMP TABLE ships (n INT PRIMARY KEY, type_id BIGINT);
INSERT INTO ships VALUES (0, 587), (1, 599), (2, 638), (3, 640), (4, 24690), (5, 11567), (6, 670), (7, 17738);

-- h(x): a non-negative pseudo-random integer from x.
CREATE FUNCTION pg_temp.h(x BIGINT) RETURNS BIGINT LANGUAGE sql IMMUTABLE AS
  $$ SELECT (hashint8(x) & 2147483647)::BIGINT $$;

CREATE TEMP TABLE plan AS
SELECT g,
       md5('battle' || g)::uuid AS id,
       timestamptz '2022-01-01' + g * interval '120 seconds' AS started_at,
       CASE WHEN g % 2000 = 0 THEN 500 + pg_temp.h(g) % 1000 ELSE 2 + pg_temp.h(g) % 4 END::INT AS pilots,
       pg_temp.h(g * 31) % (SELECT count(*) FROM systems) AS system_n
FROM generate_series(1, :battles) g;
ALTER TABLE plan ADD COLUMN killmails INT;
UPDATE plan SET killmails = CASE WHEN pilots >= 500 THEN pilots / 2 ELSE 1 + (pg_temp.h(g * 17) % 2)::INT END;
ANALYZE plan;

INSERT INTO battles (id, started_at, ended_at, primary_system_id, primary_system_name,
  primary_region_id, primary_region_name, total_killmails, total_pilots, total_isk_destroyed,
  team_a_pilots, team_a_isk_destroyed, team_a_isk_lost, team_a_ships_destroyed, team_a_ships_lost,
  team_b_pilots, team_b_isk_destroyed, team_b_isk_lost, team_b_ships_destroyed, team_b_ships_lost,
  is_decisive, winning_team, status, last_killmail_at, deleted_at, deletion_reason, created_at, updated_at)
SELECT p.id, p.started_at, p.started_at + p.killmails * interval '40 seconds',
  s.id, s.name, s.region, s.region_name,
  p.killmails, p.pilots, p.killmails * 25000000::BIGINT,
  (p.pilots + 1) / 2, (p.killmails - p.killmails / 2) * 25000000::BIGINT, (p.killmails / 2) * 25000000::BIGINT,
  p.killmails - p.killmails / 2, p.killmails / 2,
  p.pilots / 2, (p.killmails / 2) * 25000000::BIGINT, (p.killmails - p.killmails / 2) * 25000000::BIGINT,
  p.killmails / 2, p.killmails - p.killmails / 2,
  p.killmails >= 5, CASE WHEN p.killmails >= 5 THEN 'team_a' END,
  CASE WHEN p.g > :battles - 50 THEN 'open'
       WHEN p.started_at < timestamptz '2025-01-01' THEN 'historical' ELSE 'closed' END,
  p.started_at + p.killmails * interval '40 seconds',
  CASE WHEN p.g % 500 = 7 THEN p.started_at + interval '60 months' END,
  CASE WHEN p.g % 500 = 7 THEN 'retention' END,
  p.started_at + interval '1 minute', p.started_at + p.killmails * interval '40 seconds' + interval '5 minutes'
FROM plan p JOIN systems s ON s.n = p.system_n;

INSERT INTO battle_participants (battle_id, character_id, character_name, corporation_id,
  corporation_name, alliance_id, alliance_name, team, ships_flown, kills, deaths, damage_done,
  damage_received, isk_destroyed, isk_lost, first_seen_at, last_seen_at)
SELECT p.id, c.character_id, 'Pilot ' || c.character_id,
  98000000 + c.character_id % 20000, 'Corp ' || c.character_id % 20000,
  99000000 + c.character_id % 2000, 'Alliance ' || c.character_id % 2000,
  CASE WHEN n % 2 = 1 THEN 'team_a' ELSE 'team_b' END,
  jsonb_build_array((SELECT type_id FROM ships WHERE ships.n = pg_temp.h(c.character_id) % 8)),
  (pg_temp.h(c.character_id + p.g) % 4)::INT, (pg_temp.h(c.character_id * 3 + p.g) % 2)::INT,
  pg_temp.h(c.character_id * 5) % 100000, pg_temp.h(c.character_id * 7) % 100000,
  (pg_temp.h(c.character_id + p.g) % 4) * 25000000, (pg_temp.h(c.character_id * 3 + p.g) % 2) * 25000000,
  p.started_at, p.started_at + p.killmails * interval '40 seconds'
FROM plan p, generate_series(1, p.pilots) n,
  LATERAL (SELECT 90000000::BIGINT + (p.g::BIGINT * 104729 + n * 7919) % 50000000 AS character_id) c;

INSERT INTO battle_killmails (battle_id, killmail_id, killmail_time, system_id, victim_character_id,
  victim_alliance_id, victim_ship_type_id, victim_team, isk_destroyed)
SELECT p.id, p.g::BIGINT * 2000 + k, p.started_at + k * interval '40 seconds', s.id,
  90000000::BIGINT + (p.g::BIGINT * 104729 + k * 7919) % 50000000,
  99000000 + (90000000::BIGINT + (p.g::BIGINT * 104729 + k * 7919) % 50000000) % 2000,
  (SELECT type_id FROM ships WHERE ships.n = k % 8),
  CASE WHEN k % 2 = 0 THEN 'team_a' ELSE 'team_b' END, 25000000
FROM plan p JOIN systems s ON s.n = p.system_n, generate_series(1, p.killmails) k;

INSERT INTO battle_statistics (battle_id, top_killers, top_losers, team_a_ship_types,
  team_b_ship_types, team_a_alliances, team_b_alliances, killmail_timeline, systems_involved)
SELECT p.id,
  (SELECT jsonb_agg(jsonb_build_object('characterId', 90000000 + (p.g::BIGINT * 104729 + n * 7919) % 50000000,
     'name', 'Pilot ' || 90000000 + (p.g::BIGINT * 104729 + n * 7919) % 50000000,
     'team', CASE WHEN n % 2 = 1 THEN 'team_a' ELSE 'team_b' END, 'kills', 11 - n, 'iskDestroyed', (11 - n) * 25000000::BIGINT))
   FROM generate_series(1, least(10, p.pilots)) n),
  (SELECT jsonb_agg(jsonb_build_object('characterId', 90000000 + (p.g::BIGINT * 104729 + n * 7919) % 50000000,
     'name', 'Pilot ' || 90000000 + (p.g::BIGINT * 104729 + n * 7919) % 50000000,
     'team', CASE WHEN n % 2 = 1 THEN 'team_a' ELSE 'team_b' END, 'deaths', 11 - n, 'iskLost', (11 - n) * 25000000::BIGINT))
   FROM generate_series(1, least(10, p.pilots)) n),
  jsonb_build_object('587', (p.pilots + 1) / 4 + 1, '24690', (p.pilots + 1) / 4),
  jsonb_build_object('638', p.pilots / 4 + 1, '670', p.pilots / 4),
  jsonb_build_array(jsonb_build_object('allianceId', 99000001, 'name', 'Alliance 1', 'pilots', (p.pilots + 1) / 2,
     'iskDestroyed', (p.killmails - p.killmails / 2) * 25000000::BIGINT, 'iskLost', (p.killmails / 2) * 25000000::BIGINT)),
  jsonb_build_array(jsonb_build_object('allianceId', 99000002, 'name', 'Alliance 2', 'pilots', p.pilots / 2,
     'iskDestroyed', (p.killmails / 2) * 25000000::BIGINT, 'iskLost', (p.killmails - p.killmails / 2) * 25000000::BIGINT)),
  '[]', jsonb_build_array(jsonb_build_object('systemId', s.id, 'name', s.name, 'killmails', p.killmails))
FROM plan p JOIN systems s ON s.n = p.system_n;

INSERT INTO battle_aliases (ended_battle_id, battle_id)
SELECT md5('ended' || g)::uuid, id FROM plan WHERE g % 10000 = 3;

ANALYZE battles;
ANALYZE battle_participants;
ANALYZE battle_killmails;
ANALYZE battle_statistics;

SELECT (SELECT count(*) FROM battles) AS battles,
       (SELECT count(*) FROM battles WHERE deleted_at IS NULL) AS visible,
       (SELECT sum(battles) FROM battle_counts) AS counted,
       (SELECT count(*) FROM battle_participants) AS participants,
       (SELECT count(*) FROM battle_killmails) AS killmails;
