//! The JSON the API answers, field for field as the spec's examples (camelCase). Names the
//! killmails did not carry (and the resolver did not find) are `null`, never made up.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// `{id, name}` of a system or region.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Place {
    pub id: i64,
    pub name: Option<String>,
}

/// The primary system of a battle in the detail view, with its security status.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SystemDetail {
    pub id: i64,
    pub name: Option<String>,
    pub security: Option<f64>,
}

/// One side's totals.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamTotals {
    pub pilots: i32,
    pub isk_destroyed: i64,
    pub isk_lost: i64,
    pub ships_destroyed: i32,
    pub ships_lost: i32,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SummaryStatistics {
    pub total_killmails: i32,
    pub total_pilots: i32,
    pub total_isk_destroyed: i64,
    pub team_a: TeamTotals,
    pub team_b: TeamTotals,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub is_decisive: bool,
    /// `team_a`, `team_b`, or null when indecisive.
    pub winning_team: Option<String>,
}

/// A battle in a list.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BattleSummary {
    pub id: Uuid,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    /// Seconds.
    pub duration: i32,
    pub primary_system: Place,
    pub primary_region: Place,
    pub statistics: SummaryStatistics,
    pub outcome: Outcome,
    /// `open`, `closed` or `historical`.
    pub status: String,
}

/// The paging block of the battle list.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListPagination {
    /// Exact when the list is unfiltered, filtered by status only, or matches at most the
    /// exact-count limit; otherwise the planner's estimate (header `X-Total-Estimated: true`).
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
    /// Exact: whether a row exists after this page.
    pub has_more: bool,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BattleList {
    pub battles: Vec<BattleSummary>,
    pub pagination: ListPagination,
}

/// An alliance's part in one side.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllianceShare {
    pub alliance_id: i64,
    pub alliance_name: Option<String>,
    pub pilots: i32,
    pub isk_destroyed: i64,
    pub isk_lost: i64,
}

/// Pilots of one side that flew a ship type.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ShipTypeCount {
    pub name: Option<String>,
    pub count: i32,
}

/// One side in the detail view.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamDetail {
    pub pilots: i32,
    pub isk_destroyed: i64,
    pub isk_lost: i64,
    pub ships_destroyed: i32,
    pub ships_lost: i32,
    pub top_alliances: Vec<AllianceShare>,
    /// Keyed by ship type id.
    pub ship_types: BTreeMap<String, ShipTypeCount>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopKiller {
    pub character_id: i64,
    pub character_name: Option<String>,
    pub team: String,
    pub kills: i32,
    pub isk_destroyed: i64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopLoser {
    pub character_id: i64,
    pub character_name: Option<String>,
    pub team: String,
    pub deaths: i32,
    pub isk_lost: i64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DetailStatistics {
    pub total_killmails: i32,
    pub total_pilots: i32,
    pub total_isk_destroyed: i64,
    pub team_a: TeamDetail,
    pub team_b: TeamDetail,
    pub top_killers: Vec<TopKiller>,
    pub top_losers: Vec<TopLoser>,
}

/// One battle in full.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BattleDetail {
    pub id: Uuid,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub duration: i32,
    pub primary_system: SystemDetail,
    pub primary_region: Place,
    pub statistics: DetailStatistics,
    pub outcome: Outcome,
    pub status: String,
    pub last_killmail_at: Option<DateTime<Utc>>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// A corporation or alliance.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Entity {
    pub id: i64,
    pub name: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShipFlown {
    pub ship_type_id: i64,
    pub ship_type_name: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub character_id: i64,
    pub character_name: Option<String>,
    pub corporation: Option<Entity>,
    pub alliance: Option<Entity>,
    pub team: String,
    pub ships_flown: Vec<ShipFlown>,
    pub kills: i32,
    pub deaths: i32,
    pub damage_done: i64,
    pub damage_received: i64,
    pub isk_destroyed: i64,
    pub isk_lost: i64,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// The paging block of a battle's participants or killmails (exact totals).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PagePosition {
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ParticipantList {
    pub participants: Vec<Participant>,
    pub pagination: PagePosition,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Killmail {
    pub killmail_id: i64,
    pub killmail_time: DateTime<Utc>,
    pub system_id: i64,
    pub victim_character_id: Option<i64>,
    pub victim_alliance_id: Option<i64>,
    pub victim_ship_type_id: Option<i64>,
    pub victim_team: String,
    pub isk_destroyed: i64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct KillmailList {
    pub killmails: Vec<Killmail>,
    pub pagination: PagePosition,
}

/// Which battle holds a killmail.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KillmailBattle {
    pub killmail_id: i64,
    pub battle_id: Uuid,
}

/// `GET /api/battles/health`.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// `healthy` or `unhealthy`.
    pub status: String,
    /// Why the service is unhealthy; absent when healthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When input was last committed (the newest `source_offsets` row).
    pub last_processed: Option<DateTime<Utc>>,
    pub active_battles: Option<i64>,
    /// Killmails stored per second over the last five minutes.
    pub processing_rate: Option<f64>,
}

/// `GET /api/battles/stats`.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub total_battles: i64,
    pub active_battles: i64,
    pub last24_hours: Last24Hours,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Last24Hours {
    /// `battle.created` events written in the last 24 hours.
    pub battles_created: i64,
    /// `battle.updated` events written in the last 24 hours.
    pub battles_updated: i64,
    /// Killmails stored in the last 24 hours.
    pub killmails_processed: i64,
    /// Mean clustering time per killmail in milliseconds, when the process running the
    /// consumer measures it; null under `battles serve`.
    pub avg_clustering_time: Option<f64>,
}

/// `POST /api/battles/recluster` body.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReclusterRequest {
    /// ISO 8601 date, e.g. `2025-11-24`.
    pub start_date: String,
    pub end_date: String,
    /// `low`, `normal` (default) or `high`.
    pub priority: Option<String>,
}

/// `POST /api/battles/recluster` answer (202).
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReclusterAccepted {
    pub job_id: Uuid,
    pub status: String,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub priority: String,
}

/// A re-clustering job.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReclusterJob {
    pub job_id: Uuid,
    /// `pending`, `running`, `completed` or `failed`.
    pub status: String,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub progress: JobProgress,
    pub started_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobProgress {
    pub killmails_processed: i32,
    pub battles_created: i32,
    pub battles_updated: i32,
    pub battles_deleted: i32,
}

/// Every error body.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A code: `invalid_parameter`, `invalid_body`, `not_found`, `merged`, `unauthorized`,
    /// `forbidden`, `unavailable`, `internal`.
    pub error: String,
    pub message: String,
    /// The parameter at fault (400 `invalid_parameter` only).
    pub parameter: Option<String>,
    pub reason: Option<String>,
}
