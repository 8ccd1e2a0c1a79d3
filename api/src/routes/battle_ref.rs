//! What a battle id in a path refers to when no visible battle has it: a battle that ended in
//! a merge answers 308 to the same request on the battle that continues it (`battle_aliases`);
//! anything else is 404. Also the summary columns and their JSON, shared by list and detail.

use deadpool_postgres::Client;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::params::Team;
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

/// Where each of [`SUMMARY_COLUMNS`] is in a row that starts with them (by position: looking
/// columns up by name cost the list a tenth of its time).
mod at {
    pub const ID: usize = 0;
    pub const STARTED_AT: usize = 1;
    pub const ENDED_AT: usize = 2;
    pub const DURATION_SECONDS: usize = 3;
    pub const PRIMARY_SYSTEM_ID: usize = 4;
    pub const PRIMARY_SYSTEM_NAME: usize = 5;
    pub const PRIMARY_REGION_ID: usize = 6;
    pub const PRIMARY_REGION_NAME: usize = 7;
    pub const TOTAL_KILLMAILS: usize = 8;
    pub const TOTAL_PILOTS: usize = 9;
    pub const TOTAL_ISK_DESTROYED: usize = 10;
    /// The first of each side's five totals, in [`super::TeamTotals`] order.
    pub const TEAM_A: usize = 11;
    pub const TEAM_B: usize = 16;
    pub const IS_DECISIVE: usize = 21;
    pub const WINNING_TEAM: usize = 22;
    pub const STATUS: usize = 23;
}

/// A [`BattleSummary`] from a row that starts with [`SUMMARY_COLUMNS`].
pub fn summary_from_row(row: &Row) -> BattleSummary {
    BattleSummary {
        id: row.get(at::ID),
        started_at: row.get(at::STARTED_AT),
        ended_at: row.get(at::ENDED_AT),
        duration: int(row, at::DURATION_SECONDS),
        primary_system: Place {
            id: row.get(at::PRIMARY_SYSTEM_ID),
            name: name(row, at::PRIMARY_SYSTEM_NAME),
        },
        primary_region: Place {
            id: row.get(at::PRIMARY_REGION_ID),
            name: name(row, at::PRIMARY_REGION_NAME),
        },
        statistics: SummaryStatistics {
            total_killmails: int(row, at::TOTAL_KILLMAILS),
            total_pilots: int(row, at::TOTAL_PILOTS),
            total_isk_destroyed: bigint(row, at::TOTAL_ISK_DESTROYED),
            team_a: team_totals(row, Team::A),
            team_b: team_totals(row, Team::B),
        },
        outcome: outcome(row),
        status: row.get(at::STATUS),
    }
}

/// One side's totals, from a row that starts with [`SUMMARY_COLUMNS`].
pub fn team_totals(row: &Row, team: Team) -> TeamTotals {
    let first = match team {
        Team::A => at::TEAM_A,
        Team::B => at::TEAM_B,
    };
    TeamTotals {
        pilots: int(row, first),
        isk_destroyed: bigint(row, first + 1),
        isk_lost: bigint(row, first + 2),
        ships_destroyed: int(row, first + 3),
        ships_lost: int(row, first + 4),
    }
}

/// The outcome, from a row that starts with [`SUMMARY_COLUMNS`].
pub fn outcome(row: &Row) -> Outcome {
    Outcome {
        is_decisive: row.get::<_, Option<bool>>(at::IS_DECISIVE).unwrap_or(false),
        winning_team: row.get(at::WINNING_TEAM),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_name_the_summary_columns() {
        let columns: Vec<&str> = SUMMARY_COLUMNS
            .split(',')
            .map(|c| c.trim().trim_start_matches("b."))
            .collect();
        let expected = [
            (at::ID, "id"),
            (at::STARTED_AT, "started_at"),
            (at::ENDED_AT, "ended_at"),
            (at::DURATION_SECONDS, "duration_seconds"),
            (at::PRIMARY_SYSTEM_ID, "primary_system_id"),
            (at::PRIMARY_SYSTEM_NAME, "primary_system_name"),
            (at::PRIMARY_REGION_ID, "primary_region_id"),
            (at::PRIMARY_REGION_NAME, "primary_region_name"),
            (at::TOTAL_KILLMAILS, "total_killmails"),
            (at::TOTAL_PILOTS, "total_pilots"),
            (at::TOTAL_ISK_DESTROYED, "total_isk_destroyed"),
            (at::IS_DECISIVE, "is_decisive"),
            (at::WINNING_TEAM, "winning_team"),
            (at::STATUS, "status"),
        ];
        assert_eq!(columns.len(), 24);
        for (position, column) in expected {
            assert_eq!(columns[position], column);
        }
        for (first, team) in [(at::TEAM_A, "team_a"), (at::TEAM_B, "team_b")] {
            let totals = [
                "pilots",
                "isk_destroyed",
                "isk_lost",
                "ships_destroyed",
                "ships_lost",
            ];
            for (i, field) in totals.iter().enumerate() {
                assert_eq!(columns[first + i], format!("{team}_{field}"));
            }
        }
    }
}
