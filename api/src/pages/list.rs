//! `/`: the battles, newest first by default, with the list filters of `GET /api/battles`
//! (dates, region, system, alliance, minimum ISK and pilots, status) as a form, sortable column
//! heads and paging. Parameters are the API's, validated by the API's own code and read by its
//! own query (`routes::list::query_list`); empty form fields are ignored. The front page without
//! parameters also shows the largest battles.

use axum::extract::{RawQuery, State};
use maud::{html, Markup};

use crate::params::{Paging, QueryParams, Sort};
use crate::routes::list::{query_list, Counting, Filter, SortKey, PARAMETERS, SORT_KEYS};
use crate::shapes::{BattleList, BattleSummary};
use crate::state::ApiState;

use super::{
    duration, form_query, html_page, isk, name_or_id, pager, param, when, with_param, PageResult,
};

/// How many of the largest battles the front page shows.
const LARGEST: i64 = 10;

pub async fn list_page(State(state): State<ApiState>, RawQuery(raw): RawQuery) -> PageResult {
    let query = form_query(raw.as_deref());
    let query = query.as_deref();
    let q = QueryParams::parse(query, PARAMETERS)?;
    let filter = Filter::from_params(&q)?;
    let default = Sort {
        key: SortKey::StartedAt,
        descending: true,
    };
    let sort = q.sort("sort", &SORT_KEYS, default)?;
    let paging = q.paging()?;
    let client = state.pool().get().await?;
    let counting = Counting::of(&state);
    let (list, exact) = query_list(&client, &filter, sort, paging, &counting).await?;
    let largest = match query {
        None => {
            let by_isk = Sort {
                key: SortKey::IskDestroyed,
                descending: true,
            };
            let top = Paging {
                limit: LARGEST,
                offset: 0,
            };
            Some(
                query_list(&client, &Filter::default(), by_isk, top, &counting)
                    .await?
                    .0,
            )
        }
        Some(_) => None,
    };
    let body = html! {
        h1 { "Battles" }
        (filter_form(query))
        @if let Some(largest) = &largest {
            section id="largest" {
                h2 { "Largest battles" }
                (battle_table(&largest.battles, None))
            }
        }
        section id="battles" {
            h2 {
                @if query.is_none() { "Recent battles" } @else { "Battles" }
                " "
                small.muted {
                    @if exact { (list.pagination.total) } @else { "about " (list.pagination.total) }
                    " in all"
                }
            }
            (battle_table(&list.battles, Some(query)))
            (pager(query, list.pagination.offset, list.pagination.limit, list.battles.len(), total_for_pager(&list)))
        }
    };
    Ok(html_page("Battles", body))
}

/// The total the pager counts against: estimates can be off, so the next link follows `hasMore`.
fn total_for_pager(list: &BattleList) -> i64 {
    let p = &list.pagination;
    let shown_end = p.offset + list.battles.len() as i64;
    match p.has_more {
        true => p.total.max(shown_end + 1),
        false => shown_end,
    }
}

/// The filter form, filled with the request's values.
fn filter_form(query: Option<&str>) -> Markup {
    let value = |name: &str| param(query, name).unwrap_or_default();
    let status = value("status");
    let sort = value("sort");
    let text = |name: &'static str, label: &'static str, kind: &'static str, hint: &'static str| {
        html! {
            label {
                span { (label) }
                input type=(kind) name=(name) value=(value(name)) placeholder=(hint)
                    inputmode=[(kind == "text").then_some("numeric")];
            }
        }
    };
    html! {
        form.filters id="filters" action="/" method="get" {
            (text("startDate", "From", "date", ""))
            (text("endDate", "To", "date", ""))
            (text("regionId", "Region id", "text", "10000012"))
            (text("systemId", "System id", "text", "30001046"))
            (text("allianceId", "Alliance id", "text", "99003581"))
            (text("minIsk", "Min ISK", "text", "1000000000"))
            (text("minPilots", "Min pilots", "text", "10"))
            label {
                span { "Status" }
                select name="status" {
                    option value="" { "any" }
                    @for s in ["open", "closed", "historical"] {
                        option value=(s) selected[status == s] { (s) }
                    }
                }
            }
            label {
                span { "Sort" }
                select name="sort" {
                    @for (value, label) in SORTS {
                        option value=(value) selected[sort == *value] { (label) }
                    }
                }
            }
            div.actions {
                button type="submit" { "Filter" }
                a href="/" { "Reset" }
            }
        }
    }
}

const SORTS: &[(&str, &str)] = &[
    ("-started_at", "newest first"),
    ("started_at", "oldest first"),
    ("-isk_destroyed", "most ISK destroyed"),
    ("isk_destroyed", "least ISK destroyed"),
    ("-pilots", "most pilots"),
    ("pilots", "fewest pilots"),
];

/// A column head that sorts by `key` (descending first, ascending when already descending).
fn sort_head(query: Option<&str>, key: &str, label: &str) -> Markup {
    let current = param(query, "sort").unwrap_or_else(|| "-started_at".into());
    let desc = format!("-{key}");
    let (next, mark) = match current.as_str() {
        c if c == desc => (key.to_owned(), " ▼"),
        c if c == key => (desc.clone(), " ▲"),
        _ => (desc.clone(), ""),
    };
    let link = with_param(query, "sort", Some(&next));
    let link = with_param(Some(&link), "offset", None);
    html! { a.sort href={ "/?" (link) } { (label) (mark) } }
}

/// The battles as a table; `query` (the list's) makes the heads sortable.
fn battle_table(battles: &[BattleSummary], query: Option<Option<&str>>) -> Markup {
    let head = |key: &str, label: &str| match query {
        Some(q) => sort_head(q, key, label),
        None => html! { (label) },
    };
    html! {
        @if battles.is_empty() {
            p.empty { "No battles match." }
        } @else {
            div.scroll {
                table.battles {
                    thead {
                        tr {
                            th { (head("started_at", "Started (UTC)")) }
                            th { "System" }
                            th.num { "Duration" }
                            th.num { (head("pilots", "Pilots")) }
                            th.num { "Kills" }
                            th.num { (head("isk_destroyed", "ISK destroyed")) }
                            th { "A vs B" }
                            th { "Status" }
                        }
                    }
                    tbody {
                        @for b in battles { (battle_row(b)) }
                    }
                }
            }
        }
    }
}

fn battle_row(b: &BattleSummary) -> Markup {
    let href = format!("/battles/{}", b.id);
    let s = &b.statistics;
    let a = s.team_a.isk_destroyed as f64;
    let total = a + s.team_b.isk_destroyed as f64;
    let share = if total > 0.0 { 100.0 * a / total } else { 50.0 };
    html! {
        tr.battle data-id=(b.id) {
            td { a href=(href) { (when(b.started_at)) } }
            td {
                a href=(href) { (name_or_id(b.primary_system.name.as_deref(), b.primary_system.id)) }
                " "
                small.muted { (name_or_id(b.primary_region.name.as_deref(), b.primary_region.id)) }
            }
            td.num { (duration(b.duration.into())) }
            td.num { (s.total_pilots) }
            td.num { (s.total_killmails) }
            td.num { (isk(s.total_isk_destroyed)) }
            td {
                div.versus title={ "Team A destroyed " (isk(s.team_a.isk_destroyed)) ", team B " (isk(s.team_b.isk_destroyed)) } {
                    div.a style={ "width:" (format!("{share:.1}")) "%" } {}
                }
            }
            td { span class={ "status " (b.status) } { (b.status) } }
        }
    }
}
