//! What a battle id in a path refers to when no visible battle has it: a battle that ended in
//! a merge answers 308 to the same request on the battle that continues it (`battle_aliases`);
//! anything else is 404. Also the summary columns and their JSON, shared by list and detail.

use deadpool_postgres::Client;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::shapes::{BattleSummary, Outcome, Place, SummaryStatistics, TeamTotals};
use crate::sql::{bigint, int, name};

/// The `battles` columns of a [`BattleSummary`].
pub const SUMMARY_COLUMNS: &str = "b.id, b.started_at, b.ended_at, b.duration_seconds, \
    b.primary_system_id, b.primary_system_name, b.primary_region_id, b.primary_region_name, \
    b.total_killmails, b.total_pilots, b.total_isk_destroyed, \
    b.team_a_pilots, b.team_a_isk_destroyed, b.team_a_isk_lost, b.team_a_ships_destroyed, b.team_a_ships_lost, \
    b.team_b_pilots, b.team_b_isk_destroyed, b.team_b_isk_lost, b.team_b_ships_destroyed, b.team_b_ships_lost, \
    b.is_decisive, b.winning_team, b.status";

/// The error for `id` having no visible battle: 308 to its continuation, or 404.
/// `suffix` (e.g. `/participants`) and `query` are carried over into the redirect.
pub async fn moved_or_missing(
    client: &Client,
    id: Uuid,
    suffix: &str,
    query: Option<&str>,
) -> ApiError {
    match continuing_battle(client, id).await {
        Ok(Some(battle_id)) => {
            let mut location = format!("/api/battles/{battle_id}{suffix}");
            if let Some(query) = query.filter(|q| !q.is_empty()) {
                location.push('?');
                location.push_str(query);
            }
            ApiError::MergedInto {
                ended: id,
                battle_id,
                location,
            }
        }
        Ok(None) => ApiError::NotFound {
            resource: "battle",
            id: id.to_string(),
        },
        Err(e) => e,
    }
}

/// The visible battle that continues the ended battle `id`, if any.
async fn continuing_battle(client: &Client, id: Uuid) -> ApiResult<Option<Uuid>> {
    let statement = client
        .prepare_cached(
            "SELECT a.battle_id FROM battle_aliases a JOIN battles b ON b.id = a.battle_id \
             WHERE a.ended_battle_id = $1 AND b.deleted_at IS NULL",
        )
        .await?;
    Ok(client
        .query_opt(&statement, &[&id])
        .await?
        .map(|r| r.get(0)))
}

/// A [`BattleSummary`] from a row holding [`SUMMARY_COLUMNS`].
pub fn summary_from_row(row: &Row) -> BattleSummary {
    BattleSummary {
        id: row.get("id"),
        started_at: row.get("started_at"),
        ended_at: row.get("ended_at"),
        duration: int(row, "duration_seconds"),
        primary_system: Place {
            id: row.get("primary_system_id"),
            name: name(row, "primary_system_name"),
        },
        primary_region: Place {
            id: row.get("primary_region_id"),
            name: name(row, "primary_region_name"),
        },
        statistics: SummaryStatistics {
            total_killmails: int(row, "total_killmails"),
            total_pilots: int(row, "total_pilots"),
            total_isk_destroyed: bigint(row, "total_isk_destroyed"),
            team_a: team_totals(row, "team_a"),
            team_b: team_totals(row, "team_b"),
        },
        outcome: outcome(row),
        status: row.get("status"),
    }
}

/// One side's totals from the `team_a_*` or `team_b_*` columns.
pub fn team_totals(row: &Row, team: &str) -> TeamTotals {
    let column = |field: &str| format!("{team}_{field}");
    TeamTotals {
        pilots: int(row, &column("pilots")),
        isk_destroyed: bigint(row, &column("isk_destroyed")),
        isk_lost: bigint(row, &column("isk_lost")),
        ships_destroyed: int(row, &column("ships_destroyed")),
        ships_lost: int(row, &column("ships_lost")),
    }
}

pub fn outcome(row: &Row) -> Outcome {
    Outcome {
        is_decisive: row.get::<_, Option<bool>>("is_decisive").unwrap_or(false),
        winning_team: row.get("winning_team"),
    }
}
