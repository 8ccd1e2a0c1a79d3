//! `/battles/{id}/characters`: the battle's pilots with the parameters of
//! `GET /api/battles/{id}/participants` (`team`, `allianceId`, `sort`
//! `kills`/`deaths`/`isk_destroyed`, `limit`, `offset`), validated and read by the API's own
//! code; third parties are marked.

use axum::extract::{Path, RawQuery, State};
use maud::html;

use crate::names::{self, Unnamed};
use crate::params::{uuid_segment, Team};
use crate::report as queries;
use crate::routes::battle_ref::moved_or_missing;
use crate::routes::participants::{self, Request};
use crate::shapes::Participant;
use crate::state::ApiState;

use super::report::pilot;
use super::{
    battle_nav, form_query, html_page, isk, name_or_id, pager, team_class, team_label, team_link,
    with_param, PageError, PageResult,
};

pub async fn characters_page(
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
        participants::filtered_count(&client, &request, id),
        participants::page(&client, &request, id),
    )?;
    let Some(total) = total else {
        let error = moved_or_missing(&client, id, "", None).await;
        let suffix = match query {
            Some(q) => format!("/characters?{q}"),
            None => "/characters".to_owned(),
        };
        return Err(PageError::with_suffix(error, suffix));
    };
    let mut unnamed = Unnamed::default();
    for row in &rows {
        participants::note_unnamed(&mut unnamed, row);
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.get("character_id")).collect();
    let (names, third) = futures_util::try_join!(
        names::resolve(state.names(), &client, unnamed),
        queries::third_party_ids(&client, id, &ids),
    )?;
    let pilots: Vec<Participant> = rows
        .iter()
        .map(|r| participants::participant(r, &names))
        .collect();
    let body = html! {
        h1 { a href={ "/battles/" (id) } { "Battle" } " · characters" }
        (battle_nav(id, "characters"))
        nav.filter {
            "Side: "
            (team_link(query, "both", None, request.team))
            (team_link(query, "", Some(Team::A), request.team))
            (team_link(query, "", Some(Team::B), request.team))
            " · sort: "
            @for (key, label) in [("-kills", "kills"), ("-deaths", "losses"), ("-isk_destroyed", "ISK destroyed")] {
                a href={ "?" (with_param(query, "sort", Some(key))) } { (label) } " "
            }
        }
        @if pilots.is_empty() {
            p.empty { "No pilots." }
        } @else {
            div.scroll {
                table.characters {
                    thead {
                        tr {
                            th { "Pilot" } th { "Corporation" } th { "Alliance" } th { "Side" } th { "Ships" }
                            th.num { "Kills" } th.num { "Losses" } th.num { "Damage done" }
                            th.num { "ISK destroyed" } th.num { "ISK lost" }
                        }
                    }
                    tbody {
                        @for p in &pilots {
                            tr class=(team_class(&p.team)) {
                                td { (pilot(p.character_id, p.character_name.as_deref(), third.contains(&p.character_id))) }
                                td { @if let Some(c) = &p.corporation { (name_or_id(c.name.as_deref(), c.id)) } }
                                td {
                                    @if let Some(a) = &p.alliance {
                                        a href={ "/?allianceId=" (a.id) } { (name_or_id(a.name.as_deref(), a.id)) }
                                    }
                                }
                                td { (team_label(&p.team)) }
                                td {
                                    @for (i, s) in p.ships_flown.iter().enumerate() {
                                        @if i > 0 { ", " }
                                        (name_or_id(s.ship_type_name.as_deref(), s.ship_type_id))
                                    }
                                }
                                td.num { (p.kills) }
                                td.num { (p.deaths) }
                                td.num { (p.damage_done) }
                                td.num { (isk(p.isk_destroyed)) }
                                td.num { (isk(p.isk_lost)) }
                            }
                        }
                    }
                }
            }
        }
        (pager(query, request.paging.offset, request.paging.limit, pilots.len(), total))
    };
    Ok(html_page("Characters", body))
}
