//! Killmail times: a fast parser for the `YYYY-MM-DDTHH:MM:SSZ` form every real source uses,
//! falling back to full RFC 3339 (offsets, fractions) for anything else; the result is UTC at
//! second resolution. Also the accepted range: from EVE Online's launch (2003-05-06) to now plus
//! a configurable skew.

use chrono::{DateTime, NaiveDate, TimeZone, Timelike, Utc};

/// EVE Online's launch: no killmail is older.
pub fn eve_launch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2003, 5, 6, 0, 0, 0)
        .single()
        .expect("a valid constant date")
}

/// Parses an RFC 3339 timestamp into UTC, truncated to the second.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Some(t) = parse_zulu_seconds(s.as_bytes()) {
        return Some(t);
    }
    let t = DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc);
    t.with_nanosecond(0)
}

/// `YYYY-MM-DDTHH:MM:SSZ` exactly.
fn parse_zulu_seconds(b: &[u8]) -> Option<DateTime<Utc>> {
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let date = NaiveDate::from_ymd_opt(num(0, 4)? as i32, num(5, 7)?, num(8, 10)?)?;
    let time = date.and_hms_opt(num(11, 13)?, num(14, 16)?, num(17, 19)?)?;
    Some(Utc.from_utc_datetime(&time))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_and_general_forms_agree() {
        let fast = parse_time("2021-11-27T00:01:24Z").unwrap();
        assert_eq!(fast.to_rfc3339(), "2021-11-27T00:01:24+00:00");
        assert_eq!(parse_time("2021-11-27T02:01:24.999+02:00"), Some(fast));
        assert_eq!(parse_time("2021-11-27t00:01:24z"), Some(fast));
    }

    #[test]
    fn garbage_and_impossible_dates_fail() {
        for s in [
            "",
            "2021-13-01T00:00:00Z",
            "2021-02-30T00:00:00Z",
            "2021-11-27T24:00:00Z",
            "2021-11-27 00:00:00",
            "yesterday",
            "2021-1a-27T00:00:00Z",
        ] {
            assert_eq!(parse_time(s), None, "{s}");
        }
    }

    #[test]
    fn launch_date() {
        assert_eq!(eve_launch().to_rfc3339(), "2003-05-06T00:00:00+00:00");
    }
}
