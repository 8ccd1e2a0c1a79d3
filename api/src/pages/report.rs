//! `/battles/{id}`: the battle report. A header (systems, region, start, end, duration,
//! status, outcome); the two sides side by side with ISK destroyed and lost, efficiency, pilots,
//! ships, ship types fielded and lost; alliances and corporations of each side with pilot
//! counts; the timeline chart; the systems; top killers and losers; the most valuable kills
//! (linked to zKillboard); third parties marked. The battle itself is read by the API's detail
//! query, the rest by [`crate::report`], all pipelined on one connection. A merged battle's
//! page redirects (308) to the battle that continues it.

use std::collections::HashSet;

use axum::extract::{Path, RawQuery, State};
use maud::{html, Markup};

use crate::names::{self, Names};
use crate::params::{uuid_segment, QueryParams};
use crate::report::{
    self as queries, CorporationShare, Kills, ShipsLost, SystemFought, ThirdParty,
};
use crate::routes::battle_ref::moved_or_missing;
use crate::routes::{detail, killmails};
use crate::shapes::{BattleDetail, Killmail, TeamDetail};
use crate::state::ApiState;
use crate::universe::StaticData;

use super::chart;
use super::kills::{kill_rows, victims_of};
use super::{
    battle_nav, duration, efficiency, html_page, isk, name_or_id, team_class, team_label, when,
    PageError, PageResult,
};

/// Rows per side in the alliance and corporation tables before "and N more".
const ROWS_PER_TABLE: usize = 25;
/// Rows of the ship tables in a side's card (the card stays short enough to see the chart).
const SHIP_ROWS: usize = 12;
/// How many of the most valuable kills the report lists.
const TOP_KILLS: &str = "sort=-isk_destroyed&limit=10";

pub async fn report_page(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let id = uuid_segment("id", &id)?;
    QueryParams::parse(raw.as_deref(), &[])?;
    let client = state.pool().get().await?;
    let top_kills = killmails::Request::from_params(Some(TOP_KILLS))?;
    let (row, battle_kills, corporations, third_parties, top_kill_rows) = futures_util::try_join!(
        detail::battle_row(&client, id),
        queries::kill_rows(&client, id),
        queries::corporations(&client, id),
        queries::third_parties(&client, id),
        killmails::page(&client, &top_kills, id),
    )?;
    let Some(row) = row else {
        let error = moved_or_missing(&client, id, "", None).await;
        return Err(PageError::with_suffix(error, String::new()));
    };
    let stored = detail::StoredStatistics::of_battle(&client, &row, id).await?;
    let mut unnamed = stored.unnamed();
    for c in &corporations {
        c.note_unnamed(&mut unnamed);
    }
    let names = names::resolve(state.names(), &client, unnamed).await?;
    let battle = detail::detail_from(&row, stored, &names);
    let top_kills: Vec<Killmail> = top_kill_rows.iter().map(killmails::killmail).collect();
    let victims = victims_of(&state, &client, id, &top_kills).await?;
    let kills = Kills::from_rows(&battle_kills);
    let report = Report {
        battle: &battle,
        systems: &kills.systems,
        ships_lost: &kills.ships_lost,
        corporations: &corporations,
        third_parties: &third_parties,
        names: &names,
    };
    let title = format!("Battle in {}", system_name(&battle));
    let body = html! {
        (report.header())
        (battle_nav(id, "teams"))
        (report.teams())
        (report.third_party_section())
        section id="timeline" {
            h2 { "Timeline" }
            (chart::timeline(battle.started_at, battle.ended_at, &kills.timeline))
        }
        (report.alliances())
        (report.corporations())
        (report.systems())
        (report.top_combatants())
        section id="top-kills" {
            h2 { "Most valuable kills" }
            (kill_rows(&top_kills, &victims))
            p { a href={ "/battles/" (id) "/kills" } { "All " (battle.statistics.total_killmails) " kills →" } }
        }
    };
    Ok(html_page(&title, body))
}

fn system_name(b: &BattleDetail) -> String {
    name_or_id(b.primary_system.name.as_deref(), b.primary_system.id)
}

struct Report<'a> {
    battle: &'a BattleDetail,
    systems: &'a [SystemFought],
    ships_lost: &'a [ShipsLost],
    corporations: &'a [CorporationShare],
    third_parties: &'a [ThirdParty],
    names: &'a Names,
}

impl Report<'_> {
    fn team(&self, team: &str) -> &TeamDetail {
        match team {
            "team_a" => &self.battle.statistics.team_a,
            _ => &self.battle.statistics.team_b,
        }
    }

    fn header(&self) -> Markup {
        let b = self.battle;
        let data = StaticData::embedded();
        let outcome = match (&b.outcome.winning_team, b.outcome.is_decisive) {
            (Some(team), true) => format!("Decisive: {} won", team_label(team)),
            _ => "Indecisive".to_owned(),
        };
        html! {
            header.report {
                h1 { "Battle in " (system_name(b)) }
                p.meta {
                    span { (name_or_id(b.primary_region.name.as_deref(), b.primary_region.id)) }
                    @if let Some(sec) = b.primary_system.security { span.sec { (format!("{sec:.1}")) } }
                    span class={ "status " (b.status) } { (b.status) }
                    span.outcome { (outcome) }
                }
                dl.facts {
                    div { dt { "Start" } dd { (when(b.started_at)) } }
                    div { dt { "End" } dd { (when(b.ended_at)) } }
                    div { dt { "Duration" } dd { (duration(b.duration.into())) } }
                    div { dt { "Pilots" } dd { (b.statistics.total_pilots) } }
                    div { dt { "Kills" } dd { (b.statistics.total_killmails) } }
                    div { dt { "ISK destroyed" } dd { (isk(b.statistics.total_isk_destroyed)) } }
                }
                p.systems {
                    "Systems: "
                    @for (i, s) in self.systems.iter().enumerate() {
                        @if i > 0 { ", " }
                        a href={ "/?systemId=" (s.system_id) } {
                            (name_or_id(data.system_name(s.system_id), s.system_id))
                        }
                    }
                }
            }
        }
    }

    fn teams(&self) -> Markup {
        html! {
            section id="teams" class="sides" {
                (self.team_card("team_a"))
                (self.team_card("team_b"))
            }
        }
    }

    fn team_card(&self, team: &str) -> Markup {
        let t = self.team(team);
        let eff = efficiency(t.isk_destroyed, t.isk_lost);
        let won = self.battle.outcome.winning_team.as_deref() == Some(team);
        let data = StaticData::embedded();
        let mut fielded: Vec<(i64, Option<&str>, i32)> = t
            .ship_types
            .iter()
            .map(|(id, s)| (id.parse().unwrap_or(0), s.name.as_deref(), s.count))
            .collect();
        fielded.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        let lost: Vec<&ShipsLost> = self
            .ships_lost
            .iter()
            .filter(|s| s.victim_team == team)
            .collect();
        let id = format!("team-{}", team_class(team));
        html! {
            section id=(id) class={ "team " (team_class(team)) } {
                h2 {
                    (team_label(team))
                    @if won { " " span.badge.win { "winner" } }
                }
                dl.stats {
                    div { dt { "ISK destroyed" } dd.isk-destroyed { (isk(t.isk_destroyed)) } }
                    div { dt { "ISK lost" } dd.isk-lost { (isk(t.isk_lost)) } }
                    div {
                        dt { "Efficiency" }
                        dd.efficiency {
                            @match eff {
                                Some(e) => { (format!("{e:.1}%")) }
                                None => { "–" }
                            }
                        }
                    }
                    div { dt { "Pilots" } dd.pilots { (t.pilots) } }
                    div { dt { "Ships destroyed" } dd { (t.ships_destroyed) } }
                    div { dt { "Ships lost" } dd.ships-lost { (t.ships_lost) } }
                }
                @if let Some(e) = eff {
                    div.meter title="efficiency" { div style={ "width:" (format!("{e:.1}")) "%" } {} }
                }
                div.two {
                    div {
                        h3 { "Ships fielded" }
                        table.compact {
                            @for (id, name, count) in fielded.iter().take(SHIP_ROWS) {
                                tr { td { (name_or_id(*name, *id)) } td.num { (count) } }
                            }
                        }
                        (more(fielded.len(), SHIP_ROWS, "ship types"))
                    }
                    div {
                        h3 { "Ships lost" }
                        table.compact {
                            @for s in lost.iter().take(SHIP_ROWS) {
                                tr {
                                    td { (ship_name(data, s.ship_type_id)) }
                                    td.num { (s.lost) }
                                    td.num.muted { (isk(s.isk)) }
                                }
                            }
                        }
                        (more(lost.len(), SHIP_ROWS, "ship types"))
                    }
                }
            }
        }
    }

    fn third_party_section(&self) -> Markup {
        if self.third_parties.is_empty() {
            return html! {};
        }
        html! {
            section id="third-parties" {
                h2 { "Third parties " small.muted { "fought on both sides; placed with the side they fought least" } }
                ul.inline {
                    @for t in self.third_parties {
                        li class=(team_class(&t.team)) {
                            span.badge.third { "3rd party" } " "
                            a href=(zkill_character(t.character_id)) {
                                (name_or_id(self.names.pick(t.name.as_deref(), t.character_id).as_deref(), t.character_id))
                            }
                            " (" (team_label(&t.team))
                            @if let Some(a) = t.alliance_id {
                                ", " (name_or_id(t.alliance_name.as_deref(), a))
                            }
                            ")"
                        }
                    }
                }
            }
        }
    }

    fn alliances(&self) -> Markup {
        let side = |team: &str| {
            let t = self.team(team);
            html! {
                div class=(team_class(team)) {
                    h3 { (team_label(team)) }
                    @if t.top_alliances.is_empty() { p.empty { "No alliance." } } @else {
                        table.compact {
                            thead { tr { th { "Alliance" } th.num { "Pilots" } th.num { "Destroyed" } th.num { "Lost" } } }
                            tbody {
                                @for a in t.top_alliances.iter().take(ROWS_PER_TABLE) {
                                    tr {
                                        td { a href={ "/?allianceId=" (a.alliance_id) } { (name_or_id(a.alliance_name.as_deref(), a.alliance_id)) } }
                                        td.num { (a.pilots) }
                                        td.num { (isk(a.isk_destroyed)) }
                                        td.num { (isk(a.isk_lost)) }
                                    }
                                }
                            }
                        }
                        (more(t.top_alliances.len(), ROWS_PER_TABLE, "alliances"))
                    }
                }
            }
        };
        html! {
            section id="alliances" {
                h2 { "Alliances" }
                div.sides { (side("team_a")) (side("team_b")) }
            }
        }
    }

    fn corporations(&self) -> Markup {
        let side = |team: &str| {
            let corps: Vec<&CorporationShare> = self
                .corporations
                .iter()
                .filter(|c| c.team == team)
                .collect();
            html! {
                div class=(team_class(team)) {
                    h3 { (team_label(team)) }
                    @if corps.is_empty() { p.empty { "No corporation." } } @else {
                        table.compact {
                            thead { tr { th { "Corporation" } th.num { "Pilots" } th.num { "Kills" } th.num { "Losses" } } }
                            tbody {
                                @for c in corps.iter().take(ROWS_PER_TABLE) {
                                    tr {
                                        td { (name_or_id(c.display_name(self.names).as_deref(), c.corporation_id)) }
                                        td.num { (c.pilots) }
                                        td.num { (c.kills) }
                                        td.num { (c.deaths) }
                                    }
                                }
                            }
                        }
                        (more(corps.len(), ROWS_PER_TABLE, "corporations"))
                    }
                }
            }
        };
        html! {
            section id="corporations" {
                h2 { "Corporations" }
                div.sides { (side("team_a")) (side("team_b")) }
            }
        }
    }

    fn systems(&self) -> Markup {
        let data = StaticData::embedded();
        html! {
            section id="systems" {
                h2 { "Systems" }
                table.compact {
                    thead { tr { th { "System" } th.num { "Security" } th.num { "Kills" } th.num { "ISK" } th { "First – last (UTC)" } } }
                    tbody {
                        @for s in self.systems {
                            tr {
                                td { a href={ "/?systemId=" (s.system_id) } { (name_or_id(data.system_name(s.system_id), s.system_id)) } }
                                td.num { @if let Some(sec) = data.security(s.system_id) { (format!("{sec:.1}")) } }
                                td.num { (s.killmails) }
                                td.num { (isk(s.isk)) }
                                td { (s.first.format("%H:%M")) " – " (s.last.format("%H:%M")) }
                            }
                        }
                    }
                }
            }
        }
    }

    fn top_combatants(&self) -> Markup {
        let s = &self.battle.statistics;
        let third: HashSet<i64> = self.third_parties.iter().map(|t| t.character_id).collect();
        html! {
            section id="top" class="sides" {
                div {
                    h2 { "Top killers" }
                    table.compact {
                        thead { tr { th { "Pilot" } th { "Side" } th.num { "Kills" } th.num { "ISK destroyed" } } }
                        tbody {
                            @for k in &s.top_killers {
                                tr class=(team_class(&k.team)) {
                                    td { (pilot(k.character_id, k.character_name.as_deref(), third.contains(&k.character_id))) }
                                    td { (team_label(&k.team)) }
                                    td.num { (k.kills) }
                                    td.num { (isk(k.isk_destroyed)) }
                                }
                            }
                        }
                    }
                }
                div {
                    h2 { "Top losers" }
                    table.compact {
                        thead { tr { th { "Pilot" } th { "Side" } th.num { "Losses" } th.num { "ISK lost" } } }
                        tbody {
                            @for l in &s.top_losers {
                                tr class=(team_class(&l.team)) {
                                    td { (pilot(l.character_id, l.character_name.as_deref(), third.contains(&l.character_id))) }
                                    td { (team_label(&l.team)) }
                                    td.num { (l.deaths) }
                                    td.num { (isk(l.isk_lost)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// "and N more" under a table cut at `shown` rows.
fn more(count: usize, shown: usize, what: &str) -> Markup {
    html! {
        @if count > shown {
            p.muted { "and " (count - shown) " more " (what) }
        }
    }
}

/// A ship type's name, else its id.
pub fn ship_name(data: &StaticData, type_id: Option<i64>) -> String {
    match type_id {
        Some(id) => name_or_id(data.type_name(id), id),
        None => "unknown".to_owned(),
    }
}

/// zKillboard's page of a character.
pub fn zkill_character(id: i64) -> String {
    format!("https://zkillboard.com/character/{id}/")
}

/// A pilot's name (or id) linked to zKillboard, marked when a third party.
pub fn pilot(id: i64, name: Option<&str>, third_party: bool) -> Markup {
    html! {
        a href=(zkill_character(id)) { (name_or_id(name, id)) }
        @if third_party { " " span.badge.third title="fought on both sides" { "3rd party" } }
    }
}
