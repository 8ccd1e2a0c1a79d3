-- The Battle Service's own tables, exactly as the specification
-- (battle-service-spec.md, "Database Schema") writes them: battles, battle_participants,
-- battle_killmails, battle_statistics and clustering_jobs, with every index.
-- gen_random_uuid() is built into PostgreSQL from version 13 on.

CREATE TABLE battles (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),

  -- Temporal
  started_at TIMESTAMPTZ NOT NULL,
  ended_at TIMESTAMPTZ NOT NULL,
  duration_seconds INT GENERATED ALWAYS AS (EXTRACT(EPOCH FROM (ended_at - started_at))) STORED,

  -- Spatial
  primary_system_id BIGINT NOT NULL,
  primary_system_name TEXT NOT NULL,
  primary_region_id BIGINT NOT NULL,
  primary_region_name TEXT NOT NULL,

  -- Statistics
  total_killmails INT DEFAULT 0,
  total_pilots INT DEFAULT 0,
  total_isk_destroyed BIGINT DEFAULT 0,

  team_a_pilots INT DEFAULT 0,
  team_a_isk_destroyed BIGINT DEFAULT 0,
  team_a_isk_lost BIGINT DEFAULT 0,
  team_a_ships_destroyed INT DEFAULT 0,
  team_a_ships_lost INT DEFAULT 0,

  team_b_pilots INT DEFAULT 0,
  team_b_isk_destroyed BIGINT DEFAULT 0,
  team_b_isk_lost BIGINT DEFAULT 0,
  team_b_ships_destroyed INT DEFAULT 0,
  team_b_ships_lost INT DEFAULT 0,

  -- Outcome
  is_decisive BOOLEAN DEFAULT FALSE,
  winning_team TEXT, -- 'team_a', 'team_b', NULL if indecisive

  -- Metadata
  status TEXT NOT NULL DEFAULT 'open', -- 'open', 'closed', 'historical'
  last_killmail_at TIMESTAMPTZ,

  -- Retention
  deleted_at TIMESTAMPTZ,
  deletion_reason TEXT,

  created_at TIMESTAMPTZ DEFAULT NOW(),
  updated_at TIMESTAMPTZ DEFAULT NOW()
);

CREATE INDEX idx_battles_started_at ON battles(started_at DESC);
CREATE INDEX idx_battles_ended_at ON battles(ended_at DESC);
CREATE INDEX idx_battles_system ON battles(primary_system_id);
CREATE INDEX idx_battles_region ON battles(primary_region_id);
CREATE INDEX idx_battles_isk_destroyed ON battles(total_isk_destroyed DESC);
CREATE INDEX idx_battles_status ON battles(status);
CREATE INDEX idx_battles_deleted_at ON battles(deleted_at) WHERE deleted_at IS NOT NULL;

-- Composite index for common queries
CREATE INDEX idx_battles_date_system ON battles(started_at DESC, primary_system_id);

CREATE TABLE battle_participants (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  battle_id UUID NOT NULL REFERENCES battles(id) ON DELETE CASCADE,

  -- Entity IDs
  character_id BIGINT NOT NULL,
  character_name TEXT NOT NULL,
  corporation_id BIGINT,
  corporation_name TEXT,
  alliance_id BIGINT,
  alliance_name TEXT,

  -- Participation
  team TEXT NOT NULL, -- 'team_a', 'team_b'
  ships_flown JSONB DEFAULT '[]', -- Array of ship type IDs
  kills INT DEFAULT 0,
  deaths INT DEFAULT 0,
  damage_done BIGINT DEFAULT 0,
  damage_received BIGINT DEFAULT 0,
  isk_destroyed BIGINT DEFAULT 0,
  isk_lost BIGINT DEFAULT 0,

  -- Timestamps
  first_seen_at TIMESTAMPTZ NOT NULL,
  last_seen_at TIMESTAMPTZ NOT NULL,

  created_at TIMESTAMPTZ DEFAULT NOW(),
  updated_at TIMESTAMPTZ DEFAULT NOW(),

  CONSTRAINT unique_battle_character UNIQUE (battle_id, character_id)
);

CREATE INDEX idx_battle_participants_battle ON battle_participants(battle_id);
CREATE INDEX idx_battle_participants_character ON battle_participants(character_id);
CREATE INDEX idx_battle_participants_alliance ON battle_participants(alliance_id);
CREATE INDEX idx_battle_participants_team ON battle_participants(battle_id, team);

CREATE TABLE battle_killmails (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  battle_id UUID NOT NULL REFERENCES battles(id) ON DELETE CASCADE,
  killmail_id BIGINT NOT NULL,
  killmail_time TIMESTAMPTZ NOT NULL,

  -- Location
  system_id BIGINT NOT NULL,

  -- Victim
  victim_character_id BIGINT,
  victim_alliance_id BIGINT,
  victim_ship_type_id BIGINT,
  victim_team TEXT NOT NULL, -- 'team_a', 'team_b'

  -- Value
  isk_destroyed BIGINT DEFAULT 0,

  created_at TIMESTAMPTZ DEFAULT NOW(),

  CONSTRAINT unique_battle_killmail UNIQUE (battle_id, killmail_id)
);

CREATE INDEX idx_battle_killmails_battle ON battle_killmails(battle_id);
CREATE INDEX idx_battle_killmails_killmail ON battle_killmails(killmail_id);
CREATE INDEX idx_battle_killmails_time ON battle_killmails(battle_id, killmail_time);

CREATE TABLE battle_statistics (
  battle_id UUID PRIMARY KEY REFERENCES battles(id) ON DELETE CASCADE,

  -- Top combatants
  top_killers JSONB DEFAULT '[]', -- [{characterId, name, kills, iskDestroyed}]
  top_losers JSONB DEFAULT '[]', -- [{characterId, name, deaths, iskLost}]

  -- Ship types involved
  team_a_ship_types JSONB DEFAULT '{}', -- {shipTypeId: count}
  team_b_ship_types JSONB DEFAULT '{}',

  -- Alliance participation
  team_a_alliances JSONB DEFAULT '[]', -- [{allianceId, name, pilots, iskDestroyed, iskLost}]
  team_b_alliances JSONB DEFAULT '[]',

  -- Temporal distribution
  killmail_timeline JSONB DEFAULT '[]', -- [{timestamp, killmailId, victimTeam, iskDestroyed}]

  -- Spatial
  systems_involved JSONB DEFAULT '[]', -- [{systemId, name, killmails}]

  updated_at TIMESTAMPTZ DEFAULT NOW()
);

CREATE TABLE clustering_jobs (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  job_type TEXT NOT NULL, -- 'initial_clustering', 'reclustering', 'retention_cleanup'

  -- Date range
  start_date DATE NOT NULL,
  end_date DATE NOT NULL,

  -- Status
  status TEXT NOT NULL, -- 'pending', 'running', 'completed', 'failed'
  priority TEXT NOT NULL DEFAULT 'normal', -- 'low', 'normal', 'high'

  -- Metrics
  killmails_processed INT DEFAULT 0,
  battles_created INT DEFAULT 0,
  battles_updated INT DEFAULT 0,
  battles_deleted INT DEFAULT 0,

  -- Timestamps
  created_at TIMESTAMPTZ DEFAULT NOW(),
  started_at TIMESTAMPTZ,
  completed_at TIMESTAMPTZ,

  -- Error handling
  error_message TEXT,
  retry_count INT DEFAULT 0
);

CREATE INDEX idx_clustering_jobs_status ON clustering_jobs(status);
CREATE INDEX idx_clustering_jobs_dates ON clustering_jobs(start_date, end_date);
