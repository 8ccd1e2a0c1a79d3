//! `GET /api/battles`: the visible battles, filtered, sorted and paged.
//!
//! Orders are total (the sort key, then the id), each one scan of a partial index over visible
//! battles (V4), so pages never repeat or skip a row. `hasMore` is exact: the page reads one
//! row more than it shows. `total` never counts millions of rows per request:
//! - unfiltered or filtered by `status` only: `battle_counts`, maintained by triggers (exact);
//! - when the page itself proves the total (the last page, or a short first one): exact;
//! - otherwise, when the planner expects at most `exact_count_limit` matches, they are counted
//!   (exact); when it expects more, or the count reaches the limit, `total` is the planner's
//!   estimate and the response carries `X-Total-Estimated: true`.

use axum::extract::{RawQuery, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use deadpool_postgres::Client;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::params::{Paging, QueryParams, Sort};
use crate::routes::battle_ref::{summary_from_row, SUMMARY_COLUMNS};
use crate::shapes::{BattleList, ListPagination};
use crate::sql::Conditions;
use crate::state::ApiState;
use crate::totals::{Total, TotalsCache};

pub(crate) const PARAMETERS: &[&str] = &[
    "startDate",
    "endDate",
    "systemId",
    "regionId",
    "allianceId",
    "minIsk",
    "minPilots",
    "status",
    "sort",
    "limit",
    "offset",
];

/// Header saying `pagination.total` is an estimate.
pub const TOTAL_ESTIMATED_HEADER: &str = "x-total-estimated";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SortKey {
    StartedAt,
    IskDestroyed,
    Pilots,
}

pub(crate) const SORT_KEYS: [(&str, SortKey); 3] = [
    ("started_at", SortKey::StartedAt),
    ("isk_destroyed", SortKey::IskDestroyed),
    ("pilots", SortKey::Pilots),
];

const STATUSES: [(&str, &str); 3] = [
    ("open", "open"),
    ("closed", "closed"),
    ("historical", "historical"),
];

/// The validated filters.
#[derive(Debug, Default)]
pub(crate) struct Filter {
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    system_id: Option<i64>,
    region_id: Option<i64>,
    alliance_id: Option<i64>,
    min_isk: Option<i64>,
    min_pilots: Option<i32>,
    status: Option<&'static str>,
}

impl Filter {
    pub(crate) fn from_params(q: &QueryParams) -> ApiResult<Filter> {
        let filter = Filter {
            start: q.instant("startDate", false)?,
            end: q.instant("endDate", true)?,
            system_id: q.id("systemId")?,
            region_id: q.id("regionId")?,
            alliance_id: q.id("allianceId")?,
            min_isk: q.integer("minIsk", 0i64)?,
            min_pilots: q.integer("minPilots", 0i32)?,
            status: q.choice("status", &STATUSES)?,
        };
        if let (Some(start), Some(end)) = (filter.start, filter.end) {
            if end < start {
                return Err(ApiError::invalid("endDate", "is before startDate"));
            }
        }
        Ok(filter)
    }

    /// True when nothing but `status` narrows the list (the maintained counts answer).
    fn counted_by_status(&self) -> bool {
        let Filter {
            start,
            end,
            system_id,
            region_id,
            alliance_id,
            min_isk,
            min_pilots,
            ..
        } = self;
        start.is_none()
            && end.is_none()
            && system_id.is_none()
            && region_id.is_none()
            && alliance_id.is_none()
            && min_isk.is_none()
            && min_pilots.is_none()
    }

    fn conditions(&self) -> Conditions {
        let mut c = Conditions::new(&["b.deleted_at IS NULL"]);
        c.add_some("b.started_at >= $?", self.start);
        c.add_some("b.started_at <= $?", self.end);
        c.add_some("b.primary_system_id = $?", self.system_id);
        c.add_some("b.primary_region_id = $?", self.region_id);
        c.add_some(
            "b.id IN (SELECT p.battle_id FROM battle_participants p WHERE p.alliance_id = $?)",
            self.alliance_id,
        );
        c.add_some("b.total_isk_destroyed >= $?", self.min_isk);
        c.add_some("b.total_pilots >= $?", self.min_pilots);
        c.add_some("b.status = $?", self.status.map(str::to_owned));
        c
    }
}

fn order_by(sort: Sort<SortKey>) -> &'static str {
    match (sort.key, sort.descending) {
        (SortKey::StartedAt, true) => "b.started_at DESC, b.id DESC",
        (SortKey::StartedAt, false) => "b.started_at ASC, b.id ASC",
        (SortKey::IskDestroyed, true) => "b.total_isk_destroyed DESC, b.id DESC",
        (SortKey::IskDestroyed, false) => "b.total_isk_destroyed ASC, b.id ASC",
        (SortKey::Pilots, true) => "b.total_pilots DESC, b.id DESC",
        (SortKey::Pilots, false) => "b.total_pilots ASC, b.id ASC",
    }
}

#[utoipa::path(
    get,
    path = "/api/battles",
    tag = "battles",
    params(
        ("startDate" = Option<String>, Query, description = "ISO 8601 date or date-time: battles started at or after it"),
        ("endDate" = Option<String>, Query, description = "ISO 8601 date (whole day) or date-time: battles started at or before it"),
        ("systemId" = Option<i64>, Query, description = "Primary solar system"),
        ("regionId" = Option<i64>, Query, description = "Primary region"),
        ("allianceId" = Option<i64>, Query, description = "An alliance with a participant in the battle"),
        ("minIsk" = Option<i64>, Query, description = "Minimum ISK destroyed"),
        ("minPilots" = Option<i32>, Query, description = "Minimum pilots"),
        ("status" = Option<String>, Query, description = "open, closed or historical"),
        ("sort" = Option<String>, Query, description = "started_at, isk_destroyed or pilots; prefix - for descending (default -started_at)"),
        ("limit" = Option<i64>, Query, description = "1 to 100, default 50"),
        ("offset" = Option<i64>, Query, description = "Default 0"),
    ),
    responses(
        (status = 200, body = BattleList),
        (status = 400, body = crate::shapes::ErrorBody),
    )
)]
pub async fn list_battles(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let q = QueryParams::parse(raw.as_deref(), PARAMETERS)?;
    let filter = Filter::from_params(&q)?;
    let default = Sort {
        key: SortKey::StartedAt,
        descending: true,
    };
    let sort = q.sort("sort", &SORT_KEYS, default)?;
    let paging = q.paging()?;
    let client = state.pool().get().await?;
    let (list, exact) = query_list(&client, &filter, sort, paging, &Counting::of(&state)).await?;
    let mut response = Json(list).into_response();
    if !exact {
        response
            .headers_mut()
            .insert(TOTAL_ESTIMATED_HEADER, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// How a filtered list's total is found.
pub(crate) struct Counting<'a> {
    /// Counted exactly when the planner expects at most this many matches.
    exact_limit: i64,
    /// Totals found for the same filter a moment ago.
    recent: &'a TotalsCache,
}

impl<'a> Counting<'a> {
    /// The state's settings and recent totals.
    pub(crate) fn of(state: &'a ApiState) -> Counting<'a> {
        Counting {
            exact_limit: state.settings().exact_count_limit,
            recent: state.totals(),
        }
    }
}

pub(crate) async fn query_list(
    client: &Client,
    filter: &Filter,
    sort: Sort<SortKey>,
    paging: Paging,
    counting: &Counting<'_>,
) -> ApiResult<(BattleList, bool)> {
    let page = async {
        let mut c = filter.conditions();
        let limit = c.bind(paging.limit + 1);
        let offset = c.bind(paging.offset);
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM battles b WHERE {} ORDER BY {} LIMIT {limit} OFFSET {offset}",
            c.where_sql(),
            order_by(sort)
        );
        let statement = client.prepare_cached(&sql).await?;
        Ok::<_, ApiError>(client.query(&statement, &c.params()).await?)
    };
    let (mut rows, total) = match filter.counted_by_status() {
        true => {
            let (rows, total) =
                futures_util::try_join!(page, maintained_count(client, filter.status))?;
            (rows, Some(total))
        }
        false => (page.await?, None),
    };
    let has_more = rows.len() as i64 > paging.limit;
    rows.truncate(paging.limit as usize);
    let total = match total {
        Some(total) => total,
        None => match page_proves_total(paging, rows.len(), has_more) {
            Some(value) => Total { value, exact: true },
            None => filtered_total(client, filter, counting).await?,
        },
    };
    let list = BattleList {
        battles: rows.iter().map(summary_from_row).collect(),
        pagination: ListPagination {
            total: total.value,
            limit: paging.limit,
            offset: paging.offset,
            has_more,
        },
    };
    Ok((list, total.exact))
}

/// The total when this page shows the end of the list.
fn page_proves_total(paging: Paging, shown: usize, has_more: bool) -> Option<i64> {
    (!has_more && (shown > 0 || paging.offset == 0)).then_some(paging.offset + shown as i64)
}

/// Visible battles (of `status`, or all) from the maintained `battle_counts`.
async fn maintained_count(client: &Client, status: Option<&'static str>) -> ApiResult<Total> {
    let statement = client
        .prepare_cached(
            "SELECT coalesce(sum(battles), 0)::bigint FROM battle_counts \
             WHERE $1::text IS NULL OR status = $1",
        )
        .await?;
    let status = status.map(str::to_owned);
    let value: i64 = client.query_one(&statement, &[&status]).await?.get(0);
    Ok(Total { value, exact: true })
}

/// The filter's total from a moment ago, else counted (or estimated) now and kept.
async fn filtered_total(
    client: &Client,
    filter: &Filter,
    counting: &Counting<'_>,
) -> ApiResult<Total> {
    let key = filter.conditions().key();
    if let Some(total) = counting.recent.get(&key) {
        return Ok(total);
    }
    let total = counted_total(client, filter, counting.exact_limit).await?;
    counting.recent.put(key, total);
    Ok(total)
}

/// The exact count when the planner expects at most `limit` matching rows (counting them stops
/// after `limit + 1`); otherwise, or when the count reaches the cap, the planner's estimate.
async fn counted_total(client: &Client, filter: &Filter, limit: i64) -> ApiResult<Total> {
    let estimate = planner_estimate(client, filter).await?;
    if estimate > limit {
        return Ok(Total {
            value: estimate,
            exact: false,
        });
    }
    let mut c = filter.conditions();
    let cap = c.bind(limit + 1);
    let sql = format!(
        "SELECT count(*) FROM (SELECT 1 FROM battles b WHERE {} LIMIT {cap}) t",
        c.where_sql()
    );
    let statement = client.prepare_cached(&sql).await?;
    let counted: i64 = client.query_one(&statement, &c.params()).await?.get(0);
    match counted <= limit {
        true => Ok(Total {
            value: counted,
            exact: true,
        }),
        false => Ok(Total {
            value: estimate.max(counted),
            exact: false,
        }),
    }
}

/// The planner's row estimate for the filter (`EXPLAIN`, nothing is executed).
async fn planner_estimate(client: &Client, filter: &Filter) -> ApiResult<i64> {
    let c = filter.conditions();
    let sql = format!(
        "EXPLAIN (FORMAT JSON) SELECT 1 FROM battles b WHERE {}",
        c.where_sql()
    );
    let statement = client.prepare_cached(&sql).await?;
    let row = client.query_one(&statement, &c.params()).await?;
    let plan: Value = row.get(0);
    plan.pointer("/0/Plan/Plan Rows")
        .and_then(Value::as_f64)
        .map(|rows| rows as i64)
        .ok_or_else(|| ApiError::Inconsistent("EXPLAIN gave no row estimate".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(raw: &str) -> ApiResult<Filter> {
        Filter::from_params(&QueryParams::parse(Some(raw), PARAMETERS)?)
    }

    #[test]
    fn end_before_start_is_rejected() {
        assert!(filter("startDate=2025-11-25&endDate=2025-11-25").is_ok());
        let err = filter("startDate=2025-11-26&endDate=2025-11-25").unwrap_err();
        assert!(err.to_string().contains("endDate"), "{err}");
    }

    #[test]
    fn only_status_uses_the_maintained_counts() {
        assert!(filter("").unwrap().counted_by_status());
        assert!(filter("status=open").unwrap().counted_by_status());
        assert!(!filter("minPilots=2").unwrap().counted_by_status());
        assert!(!filter("allianceId=99").unwrap().counted_by_status());
    }

    #[test]
    fn a_page_proves_the_total_only_at_the_end() {
        let p = Paging {
            limit: 50,
            offset: 100,
        };
        assert_eq!(page_proves_total(p, 7, false), Some(107));
        assert_eq!(page_proves_total(p, 50, true), None);
        assert_eq!(
            page_proves_total(p, 0, false),
            None,
            "past the end proves nothing"
        );
        let first = Paging {
            limit: 50,
            offset: 0,
        };
        assert_eq!(page_proves_total(first, 0, false), Some(0));
    }

    #[test]
    fn filters_become_bound_conditions() {
        let f = filter("systemId=30000142&minPilots=10&status=open&allianceId=99").unwrap();
        let c = f.conditions();
        assert_eq!(
            c.where_sql(),
            "b.deleted_at IS NULL AND b.primary_system_id = $1 AND b.id IN (SELECT p.battle_id \
             FROM battle_participants p WHERE p.alliance_id = $2) AND b.total_pilots >= $3 AND b.status = $4"
        );
        assert_eq!(c.params().len(), 4);
    }
}
