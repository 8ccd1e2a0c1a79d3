-- What the REST API (`api/`) needs beyond V1–V3: paging indexes, a maintained count of the
-- visible battles, a names cache for the ESI resolver, and cheap time indexes for the health and
-- stats figures. The spec's tables are unchanged.

-- Paging: every list order is total (sort key, then id) so pages never repeat or skip a battle,
-- and each order is one index scan over the visible (not soft-deleted) battles. A descending
-- sort reads the index forwards, an ascending one backwards.
CREATE INDEX idx_battles_visible_started ON battles(started_at DESC, id DESC)
  WHERE deleted_at IS NULL;
CREATE INDEX idx_battles_visible_isk ON battles(total_isk_destroyed DESC, id DESC)
  WHERE deleted_at IS NULL;
CREATE INDEX idx_battles_visible_pilots ON battles(total_pilots DESC, id DESC)
  WHERE deleted_at IS NULL;

-- battle_counts: how many visible battles have each status, kept exact by statement-level
-- triggers on battles. Why: `pagination.total` of an unfiltered (or status-only) list would
-- otherwise be a count(*) over millions of rows on every request. One row per status; the
-- sink is the only writer of battles (it holds the writer lock), so the rows are not contended.
CREATE TABLE battle_counts (
  status TEXT PRIMARY KEY,
  battles BIGINT NOT NULL
);

INSERT INTO battle_counts (status, battles)
SELECT status, count(*) FROM battles WHERE deleted_at IS NULL GROUP BY status;

CREATE FUNCTION battle_counts_apply(delta_rows JSONB) RETURNS void LANGUAGE sql AS $$
  INSERT INTO battle_counts AS c (status, battles)
  SELECT d.key, d.value::bigint FROM jsonb_each_text(delta_rows) AS d
  ON CONFLICT (status) DO UPDATE SET battles = c.battles + EXCLUDED.battles;
$$;

CREATE FUNCTION battle_counts_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM battle_counts_apply(coalesce(
    (SELECT jsonb_object_agg(status, n) FROM
       (SELECT status, count(*) AS n FROM new_rows WHERE deleted_at IS NULL GROUP BY status) s),
    '{}'::jsonb));
  RETURN NULL;
END
$$;

CREATE FUNCTION battle_counts_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM battle_counts_apply(coalesce(
    (SELECT jsonb_object_agg(status, -n) FROM
       (SELECT status, count(*) AS n FROM old_rows WHERE deleted_at IS NULL GROUP BY status) s),
    '{}'::jsonb));
  RETURN NULL;
END
$$;

CREATE FUNCTION battle_counts_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM battle_counts_apply(coalesce(
    (SELECT jsonb_object_agg(status, n) FROM
       (SELECT status, sum(n) AS n FROM (
          SELECT status, -1 AS n FROM old_rows WHERE deleted_at IS NULL
          UNION ALL
          SELECT status, 1 AS n FROM new_rows WHERE deleted_at IS NULL) d
        GROUP BY status HAVING sum(n) <> 0) s),
    '{}'::jsonb));
  RETURN NULL;
END
$$;

CREATE FUNCTION battle_counts_on_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM battle_counts;
  RETURN NULL;
END
$$;

CREATE TRIGGER battle_counts_insert AFTER INSERT ON battles
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION battle_counts_on_insert();
CREATE TRIGGER battle_counts_delete AFTER DELETE ON battles
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION battle_counts_on_delete();
CREATE TRIGGER battle_counts_update AFTER UPDATE ON battles
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION battle_counts_on_update();
CREATE TRIGGER battle_counts_truncate AFTER TRUNCATE ON battles
  FOR EACH STATEMENT EXECUTE FUNCTION battle_counts_on_truncate();

-- entity_names: names the optional ESI resolver (POST /universe/names/) found for ids the
-- killmails did not name (ESI killmails carry no names). name is NULL when ESI refused the id
-- (so it is not asked again until the entry is refreshed). Why a table: names almost never
-- change, and asking ESI on every request would be slow and rude.
CREATE TABLE entity_names (
  id BIGINT PRIMARY KEY,
  name TEXT,
  category TEXT,
  resolved_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- Health and stats count recent rows by arrival time. Both tables are appended in time order,
-- so a BRIN index finds the recent rows for almost no write cost.
CREATE INDEX idx_killmails_received_at_brin ON killmails USING brin(received_at);
CREATE INDEX idx_battle_events_outbox_created_brin ON battle_events_outbox USING brin(created_at);
