//! The timeline chart, drawn as SVG on the server: per minute (or per few minutes for long
//! battles, so a chart has at most [`MAX_BARS`] bars), team A's kills above the axis and team
//! B's below, one chart for kills and one for ISK destroyed. A kill of a side is a killmail
//! whose victim was on the other side. Each bar carries a `<title>` for hover.

use chrono::{DateTime, Duration, Utc};
use maud::{html, Markup};

use crate::report::MinuteLosses;

use super::isk;

/// The most bars a chart draws; longer battles are bucketed by several minutes.
pub const MAX_BARS: i64 = 180;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 22.0;

/// Kills and ISK of both sides in one bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    pub kills: [i64; 2],
    pub isk: [i64; 2],
}

/// The buckets from `start` on, `minutes` wide each, and that width.
pub fn buckets(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    rows: &[MinuteLosses],
) -> (Vec<Bucket>, i64) {
    let first = start
        .duration_trunc_minute()
        .min(rows.first().map(|r| r.minute).unwrap_or(start));
    let last = rows.last().map(|r| r.minute).unwrap_or(end).max(end);
    let span = (last - first).num_minutes() + 1;
    let width = ((span + MAX_BARS - 1) / MAX_BARS).max(1);
    let count = ((span + width - 1) / width).max(1) as usize;
    let mut out = vec![Bucket::default(); count];
    for r in rows {
        let i = (((r.minute - first).num_minutes() / width) as usize).min(count - 1);
        // The victim's side lost it: the kill belongs to the other side.
        let killer = match r.victim_team.as_str() {
            "team_b" => 0,
            _ => 1,
        };
        out[i].kills[killer] += r.killmails;
        out[i].isk[killer] += r.isk;
    }
    (out, width)
}

trait TruncMinute {
    fn duration_trunc_minute(self) -> Self;
}

impl TruncMinute for DateTime<Utc> {
    fn duration_trunc_minute(self) -> Self {
        let secs = self.timestamp();
        DateTime::from_timestamp(secs - secs.rem_euclid(60), 0).unwrap_or(self)
    }
}

/// Both charts with their legend.
pub fn timeline(start: DateTime<Utc>, end: DateTime<Utc>, rows: &[MinuteLosses]) -> Markup {
    let (buckets, width) = buckets(start, end, rows);
    let first = start
        .duration_trunc_minute()
        .min(rows.first().map(|r| r.minute).unwrap_or(start));
    let unit = match width {
        1 => "minute".to_owned(),
        w => format!("{w} minutes"),
    };
    html! {
        p.legend {
            span.key.a {} "Team A kills (above) " span.key.b {} "Team B kills (below), per " (unit) " (UTC)"
        }
        (chart("timeline-kills", "Kills", &buckets, first, width, |b| b.kills, |v| v.to_string()))
        (chart("timeline-isk", "ISK destroyed", &buckets, first, width, |b| b.isk, isk))
    }
}

fn chart(
    id: &str,
    label: &str,
    buckets: &[Bucket],
    first: DateTime<Utc>,
    width: i64,
    value: impl Fn(&Bucket) -> [i64; 2],
    format: impl Fn(i64) -> String,
) -> Markup {
    let max = buckets.iter().flat_map(&value).max().unwrap_or(0).max(1);
    let plot_w = WIDTH - LEFT - RIGHT;
    let half = (HEIGHT - TOP - BOTTOM) / 2.0;
    let axis = TOP + half;
    let step = plot_w / buckets.len() as f64;
    let bar_w = (step * 0.8).max(0.5);
    let scale = |v: i64| half * v as f64 / max as f64;
    let at = |i: usize| first + Duration::minutes(i as i64 * width);
    let ticks = tick_indexes(buckets.len());
    html! {
        figure.chart {
            figcaption { (label) }
            svg id=(id) viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img"
                aria-label={ (label) " per side over time" } preserveAspectRatio="none" {
                line.axis x1=(LEFT) y1=(axis) x2=(WIDTH - RIGHT) y2=(axis) {}
                text.tick x=(LEFT - 4.0) y=(TOP + 10.0) text-anchor="end" { (format(max)) }
                text.tick x=(LEFT - 4.0) y=(HEIGHT - BOTTOM) text-anchor="end" { (format(max)) }
                text.tick x=(LEFT - 4.0) y=(axis + 4.0) text-anchor="end" { "0" }
                @for (i, b) in buckets.iter().enumerate() {
                    @let [a, bb] = value(b);
                    @let x = LEFT + i as f64 * step + (step - bar_w) / 2.0;
                    @if a > 0 {
                        rect.bar-a x=(fmt(x)) y=(fmt(axis - scale(a))) width=(fmt(bar_w)) height=(fmt(scale(a))) {
                            title { (at(i).format("%H:%M")) " team A: " (format(a)) }
                        }
                    }
                    @if bb > 0 {
                        rect.bar-b x=(fmt(x)) y=(fmt(axis)) width=(fmt(bar_w)) height=(fmt(scale(bb))) {
                            title { (at(i).format("%H:%M")) " team B: " (format(bb)) }
                        }
                    }
                }
                @for i in ticks {
                    text.tick x=(fmt(LEFT + (i as f64 + 0.5) * step)) y=(HEIGHT - 6.0) text-anchor="middle" {
                        (at(i).format("%H:%M"))
                    }
                }
            }
        }
    }
}

/// About six evenly spaced bucket indexes for time labels.
fn tick_indexes(count: usize) -> Vec<usize> {
    let every = count.div_ceil(6).max(1);
    (0..count).step_by(every).collect()
}

fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn row(minute: &str, victim: &str, killmails: i64, isk: i64) -> MinuteLosses {
        MinuteLosses {
            minute: at(minute),
            victim_team: victim.into(),
            killmails,
            isk,
        }
    }

    #[test]
    fn kills_go_to_the_side_that_did_not_lose_the_ship() {
        let rows = [
            row("2021-11-28T10:20:00Z", "team_b", 3, 300),
            row("2021-11-28T10:20:00Z", "team_a", 1, 50),
            row("2021-11-28T10:22:00Z", "team_a", 2, 70),
        ];
        let (b, width) = buckets(
            at("2021-11-28T10:20:30Z"),
            at("2021-11-28T10:22:10Z"),
            &rows,
        );
        assert_eq!(width, 1);
        assert_eq!(b.len(), 3);
        assert_eq!(
            b[0],
            Bucket {
                kills: [3, 1],
                isk: [300, 50]
            }
        );
        assert_eq!(b[1], Bucket::default());
        assert_eq!(
            b[2],
            Bucket {
                kills: [0, 2],
                isk: [0, 70]
            }
        );
    }

    #[test]
    fn long_battles_are_bucketed_to_at_most_max_bars() {
        let rows = [
            row("2021-11-28T10:00:00Z", "team_b", 1, 1),
            row("2021-11-28T14:00:00Z", "team_b", 1, 1),
        ];
        let (b, width) = buckets(
            at("2021-11-28T10:00:00Z"),
            at("2021-11-28T14:00:00Z"),
            &rows,
        );
        assert_eq!(width, 2);
        assert!(b.len() as i64 <= MAX_BARS, "{}", b.len());
        assert_eq!(b.iter().map(|b| b.kills[0]).sum::<i64>(), 2);
        assert_eq!(b.last().unwrap().kills[0], 1);
    }

    #[test]
    fn the_svg_has_a_bar_per_side_and_bucket_with_kills() {
        let rows = [
            row("2021-11-28T10:20:00Z", "team_b", 3, 300),
            row("2021-11-28T10:21:00Z", "team_a", 1, 50),
        ];
        let svg = timeline(
            at("2021-11-28T10:20:00Z"),
            at("2021-11-28T10:21:00Z"),
            &rows,
        )
        .into_string();
        assert_eq!(
            svg.matches("class=\"bar-a\"").count(),
            2,
            "kills and ISK charts"
        );
        assert_eq!(svg.matches("class=\"bar-b\"").count(), 2);
        assert!(svg.contains("10:20 team A: 3"), "{svg}");
        assert!(svg.contains("10:21 team B: 50"), "{svg}");
    }
}
