-- battle_counts: one row per (status, shard) instead of one per status. Why: the sink writes with
-- several connections at once (issue 13), and each transaction that inserted, updated or deleted
-- battles updated the same status row, so the second writer waited at its `battles` statement
-- until the first committed: `pg_stat_activity` sampled during an incremental month showed
-- `Lock:transactionid` on `COPY battles` as the commonest state of the writers. Now a
-- transaction adds its delta to the shard of its transaction id (64 shards), so concurrent
-- writers almost never meet on a row; readers sum the shards of a status (every reader already
-- asks for `sum(battles)`).
ALTER TABLE battle_counts ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE battle_counts DROP CONSTRAINT battle_counts_pkey;
ALTER TABLE battle_counts ADD PRIMARY KEY (status, shard);

CREATE OR REPLACE FUNCTION battle_counts_apply(delta_rows JSONB) RETURNS void LANGUAGE sql AS $$
  INSERT INTO battle_counts AS c (status, shard, battles)
  SELECT d.key, (txid_current() % 64)::SMALLINT, d.value::BIGINT
  FROM jsonb_each_text(delta_rows) AS d
  ON CONFLICT (status, shard) DO UPDATE SET battles = c.battles + EXCLUDED.battles;
$$;
