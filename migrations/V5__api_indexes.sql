-- Indexes the REST API's hot paths need beyond V4 (measured in docs/benchmarks.md, "API").
--
-- The place filters of the battle list in the default order: a page is one ordered index scan,
-- and the count of a system's or region's visible battles an index-only scan.
CREATE INDEX idx_battles_visible_system ON battles(primary_system_id, started_at DESC, id DESC)
  WHERE deleted_at IS NULL;
CREATE INDEX idx_battles_visible_region ON battles(primary_region_id, started_at DESC, id DESC)
  WHERE deleted_at IS NULL;

-- A battle's participants in the default order (-kills, then character id): the first page of
-- a 1,000-pilot battle reads 50 index entries instead of sorting every participant.
CREATE INDEX idx_battle_participants_kills ON battle_participants(battle_id, kills DESC, character_id);
