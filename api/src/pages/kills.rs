//! `/battles/{id}/kills`: the battle's killmails, each linked to the killmail on zKillboard,
//! with the parameters of `GET /api/battles/{id}/killmails` (`team`: the victim's side,
//! `sort` `time`/`isk_destroyed`, `limit`, `offset`), validated and read by the API's own code.
//! Victims are named from the battle's participant rows (and the names resolver when on).

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use deadpool_postgres::Client;
use maud::{html, Markup};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::names::{self, Unnamed};
use crate::params::{uuid_segment, Team};
use crate::report as queries;
use crate::routes::battle_ref::moved_or_missing;
use crate::routes::killmails::{self, Request};
use crate::shapes::Killmail;
use crate::state::ApiState;
use crate::universe::StaticData;

use super::report::{pilot, ship_name};
use super::{
    battle_nav, form_query, html_page, isk, name_or_id, pager, team_class, team_label, team_link,
    with_param, PageError, PageResult,
};

/// What the page shows of a victim.
#[derive(Clone, Debug, Default)]
pub struct VictimInfo {
    pub name: Option<String>,
    pub alliance: Option<String>,
}

pub async fn kills_page(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let id = uuid_segment("id", &id)?;
    let query = form_query(raw.as_deref());
    let query = query.as_deref();
    let request = Request::from_params(query)?;
    let client = state.pool().get().await?;
    let (total, rows) = futures_util::try_join!(
        killmails::filtered_count(&client, &request, id),
        killmails::page(&client, &request, id),
    )?;
    let Some(total) = total else {
        let error = moved_or_missing(&client, id, "", None).await;
        let suffix = match query {
            Some(q) => format!("/kills?{q}"),
            None => "/kills".to_owned(),
        };
        return Err(PageError::with_suffix(error, suffix));
    };
    let kills: Vec<Killmail> = rows.iter().map(killmails::killmail).collect();
    let victims = victims_of(&state, &client, id, &kills).await?;
    let team = request.team;
    let body = html! {
        h1 { a href={ "/battles/" (id) } { "Battle" } " · kills" }
        (battle_nav(id, "kills"))
        nav.filter {
            "Victims: "
            (team_link(query, "all", None, team))
            (team_link(query, "", Some(Team::A), team))
            (team_link(query, "", Some(Team::B), team))
            " · sort: "
            a href={ "?" (with_param(query, "sort", Some("time"))) } { "time" }
            " "
            a href={ "?" (with_param(query, "sort", Some("-isk_destroyed"))) } { "ISK" }
        }
        (kill_rows(&kills, &victims))
        (pager(query, request.paging.offset, request.paging.limit, kills.len(), total))
    };
    Ok(html_page("Kills", body))
}

/// Names of the victims of `kills`: from the battle's participant rows, else resolved.
pub async fn victims_of(
    state: &ApiState,
    client: &Client,
    battle: Uuid,
    kills: &[Killmail],
) -> ApiResult<HashMap<i64, VictimInfo>> {
    let ids: Vec<i64> = kills.iter().filter_map(|k| k.victim_character_id).collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = queries::victims(client, battle, &ids).await?;
    let mut unnamed = Unnamed::default();
    for k in kills {
        let row = k.victim_character_id.and_then(|c| rows.get(&c));
        unnamed.note(row.and_then(|r| r.name.as_deref()), k.victim_character_id);
        unnamed.note(
            row.and_then(|r| r.alliance_name.as_deref()),
            k.victim_alliance_id,
        );
    }
    let names = names::resolve(state.names(), client, unnamed).await?;
    let mut out = HashMap::new();
    for k in kills {
        let Some(character) = k.victim_character_id else {
            continue;
        };
        let row = rows.get(&character);
        out.insert(
            character,
            VictimInfo {
                name: names.pick(row.and_then(|r| r.name.as_deref()), character),
                alliance: k
                    .victim_alliance_id
                    .and_then(|a| names.pick(row.and_then(|r| r.alliance_name.as_deref()), a)),
            },
        );
    }
    Ok(out)
}

/// zKillboard's page of a killmail.
pub fn zkill_kill(id: i64) -> String {
    format!("https://zkillboard.com/kill/{id}/")
}

/// The killmails as a table.
pub fn kill_rows(kills: &[Killmail], victims: &HashMap<i64, VictimInfo>) -> Markup {
    let data = StaticData::embedded();
    html! {
        @if kills.is_empty() {
            p.empty { "No kills." }
        } @else {
            div.scroll {
                table.kills {
                    thead {
                        tr {
                            th { "Time (UTC)" } th { "System" } th { "Victim" } th { "Alliance" }
                            th { "Ship" } th { "Lost by" } th.num { "ISK" } th { "zKillboard" }
                        }
                    }
                    tbody {
                        @for k in kills {
                            @let victim = k.victim_character_id.and_then(|c| victims.get(&c));
                            tr class={ "kill " (team_class(&k.victim_team)) } data-killmail=(k.killmail_id) {
                                td { (k.killmail_time.format("%Y-%m-%d %H:%M:%S")) }
                                td { (name_or_id(data.system_name(k.system_id), k.system_id)) }
                                td {
                                    @match k.victim_character_id {
                                        Some(c) => { (pilot(c, victim.and_then(|v| v.name.as_deref()), false)) }
                                        None => { span.muted { "structure or NPC" } }
                                    }
                                }
                                td {
                                    @if let Some(a) = k.victim_alliance_id {
                                        a href={ "/?allianceId=" (a) } { (name_or_id(victim.and_then(|v| v.alliance.as_deref()), a)) }
                                    }
                                }
                                td { (ship_name(data, k.victim_ship_type_id)) }
                                td { (team_label(&k.victim_team)) }
                                td.num { (isk(k.isk_destroyed)) }
                                td { a.zkill href=(zkill_kill(k.killmail_id)) rel="noopener" { (k.killmail_id) } }
                            }
                        }
                    }
                }
            }
        }
    }
}
