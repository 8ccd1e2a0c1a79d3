-- Tables the service needs beyond the specification's five. The spec's tables stay exactly as
-- written; everything the service keeps for itself lives here.

-- killmails: every killmail the service consumed, as the typed record
-- (battles_dataflow::Killmail serialized with serde_json, the enriched camelCase shape).
-- Why: a restart or a re-clustering rebuilds the engine's state from this table alone, without
-- asking the upstream (files, Kafka) to replay. content_md5 fingerprints the record so a
-- re-delivery with different content can be told from a plain duplicate.
CREATE TABLE killmails (
  killmail_id BIGINT PRIMARY KEY,
  killmail_hash TEXT,
  killmail_time TIMESTAMPTZ NOT NULL,
  solar_system_id BIGINT NOT NULL,
  region_id BIGINT NOT NULL,
  record JSONB NOT NULL,
  content_md5 TEXT GENERATED ALWAYS AS (md5(record::text)) STORED,
  received_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

CREATE INDEX idx_killmails_time ON killmails(killmail_time);

-- rejected_killmails: input records that could not become a killmail, kept with the reason
-- and where they came from. Why: bad input is never silently dropped; an operator can see,
-- count and replay what was refused. source_position is the human-readable position
-- ("file:/data/x.jsonl.gz:1234", "kafka:topic:3:9912"); the structured columns allow queries.
CREATE TABLE rejected_killmails (
  id BIGSERIAL PRIMARY KEY,
  raw_payload TEXT NOT NULL,
  reason_code TEXT NOT NULL,
  reason_message TEXT NOT NULL,
  source_position TEXT NOT NULL,
  source_kind TEXT NOT NULL, -- 'file', 'kafka', 'other'
  source_file TEXT,
  source_line BIGINT,
  source_topic TEXT,
  source_partition INT,
  source_offset BIGINT,
  received_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

CREATE INDEX idx_rejected_killmails_received_at ON rejected_killmails(received_at);
CREATE INDEX idx_rejected_killmails_reason ON rejected_killmails(reason_code);
-- The same record refused at the same position is one rejection: re-reading a file after a
-- restart, or retrying a step whose commit was lost with the connection, adds no duplicates.
CREATE UNIQUE INDEX uq_rejected_killmails_position_payload
  ON rejected_killmails(source_position, md5(raw_payload));

-- battle_aliases: a battle that ended because it merged into (or was split from) another keeps
-- pointing at the battle that continues it. Why: battle ids are handed out to clients and in
-- events; a client holding an ended id is redirected instead of getting a 404. Aliases are
-- repointed when their target ends in turn, so each alias is one hop; an alias disappears
-- with its target when that target ends without a successor.
CREATE TABLE battle_aliases (
  ended_battle_id UUID PRIMARY KEY,
  battle_id UUID NOT NULL REFERENCES battles(id) ON DELETE CASCADE,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

CREATE INDEX idx_battle_aliases_battle ON battle_aliases(battle_id);

-- source_offsets: how far each input has been consumed, committed in the same transaction as
-- the battles it produced. Why: a restart resumes exactly where the committed state ends.
-- Keys: 'file:/path/x.jsonl.gz' (position = records read) or 'kafka:topic:partition'
-- (position = next offset).
CREATE TABLE source_offsets (
  source_key TEXT PRIMARY KEY,
  position BIGINT NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- battle_events_outbox: battle.created / battle.updated / battle.deleted events written in the
-- same transaction as the change they describe (transactional outbox). Why: an event is
-- published if and only if its change committed; a publisher sends unpublished rows in id
-- order and sets published_at.
CREATE TABLE battle_events_outbox (
  id BIGSERIAL PRIMARY KEY,
  event_id UUID NOT NULL UNIQUE,
  event_type TEXT NOT NULL,
  battle_id UUID NOT NULL,
  payload JSONB NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  published_at TIMESTAMPTZ
);

CREATE INDEX idx_battle_events_outbox_unpublished ON battle_events_outbox(id) WHERE published_at IS NULL;

-- battle_third_parties: participants that fought on both sides (the engine places them on the
-- team they fought least with). Why a table of its own: the spec's battle_participants must stay
-- exactly as written, so the flag is a row here, one per (battle, character) flagged.
CREATE TABLE battle_third_parties (
  battle_id UUID NOT NULL REFERENCES battles(id) ON DELETE CASCADE,
  character_id BIGINT NOT NULL,
  PRIMARY KEY (battle_id, character_id)
);
