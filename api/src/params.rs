//! Query-string validation. Every endpoint names the parameters it takes; anything else, a
//! repeated parameter, an empty value or a malformed one is a 400 naming the parameter and why.
//! Values become typed values here, so no handler sees text and no SQL is built from it.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

use crate::error::{ApiError, ApiResult};

/// Rows per page when `limit` is not given.
pub const DEFAULT_LIMIT: i64 = 50;
/// The largest `limit` accepted.
pub const MAX_LIMIT: i64 = 100;

/// The decoded query string of one request, checked against the parameters its endpoint takes.
#[derive(Debug)]
pub struct QueryParams {
    pairs: Vec<(String, String)>,
}

impl QueryParams {
    /// Decodes `raw` (without the `?`); unknown, repeated and empty parameters are errors.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> ApiResult<QueryParams> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (name, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            if !allowed.contains(&name.as_ref()) {
                return Err(ApiError::invalid(
                    name,
                    format!(
                        "unknown parameter; this endpoint takes {}",
                        allowed.join(", ")
                    ),
                ));
            }
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(ApiError::invalid(name, "given more than once"));
            }
            if value.trim().is_empty() {
                return Err(ApiError::invalid(name, "must not be empty"));
            }
            pairs.push((name.into_owned(), value.into_owned()));
        }
        Ok(QueryParams { pairs })
    }

    /// The raw value of `name`, if given.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `name` parsed as an integer of at least `min`.
    pub fn integer<T>(&self, name: &str, min: T) -> ApiResult<Option<T>>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(text) = self.text(name) else {
            return Ok(None);
        };
        let value: T = text
            .trim()
            .parse()
            .map_err(|_| ApiError::invalid(name, format!("not an integer: {text:?}")))?;
        if value < min {
            return Err(ApiError::invalid(name, format!("must be at least {min}")));
        }
        Ok(Some(value))
    }

    /// A positive entity id (system, region, alliance).
    pub fn id(&self, name: &str) -> ApiResult<Option<i64>> {
        self.integer(name, 1i64)
    }

    /// `name` as one of `choices`.
    pub fn choice<T: Copy>(&self, name: &str, choices: &[(&str, T)]) -> ApiResult<Option<T>> {
        let Some(text) = self.text(name) else {
            return Ok(None);
        };
        let found = choices.iter().find(|(spelling, _)| *spelling == text);
        match found {
            Some((_, value)) => Ok(Some(*value)),
            None => Err(ApiError::invalid(name, one_of(text, choices))),
        }
    }

    /// `name` as a sort: a key of `keys`, descending when prefixed with `-`.
    pub fn sort<K: Copy>(
        &self,
        name: &str,
        keys: &[(&str, K)],
        default: Sort<K>,
    ) -> ApiResult<Sort<K>> {
        let Some(text) = self.text(name) else {
            return Ok(default);
        };
        let (descending, key) = match text.strip_prefix('-') {
            Some(key) => (true, key),
            None => (false, text),
        };
        match keys.iter().find(|(spelling, _)| *spelling == key) {
            Some((_, key)) => Ok(Sort {
                key: *key,
                descending,
            }),
            None => Err(ApiError::invalid(name, one_of(text, keys))),
        }
    }

    /// `limit` (1..=100, default 50) and `offset` (>= 0, default 0).
    pub fn paging(&self) -> ApiResult<Paging> {
        let limit = self.integer("limit", 1i64)?.unwrap_or(DEFAULT_LIMIT);
        if limit > MAX_LIMIT {
            return Err(ApiError::invalid(
                "limit",
                format!("must be at most {MAX_LIMIT}"),
            ));
        }
        let offset = self.integer("offset", 0i64)?.unwrap_or(0);
        Ok(Paging { limit, offset })
    }

    /// `name` as an instant: an RFC 3339 date-time, or an ISO 8601 date meaning the start of
    /// that day (UTC), or with `end_of_day` the last instant of it.
    pub fn instant(&self, name: &str, end_of_day: bool) -> ApiResult<Option<DateTime<Utc>>> {
        let Some(text) = self.text(name) else {
            return Ok(None);
        };
        parse_instant(text, end_of_day).map(Some).ok_or_else(|| {
            ApiError::invalid(
                name,
                format!("not an ISO 8601 date (2025-11-25) or date-time (2025-11-25T09:00:00Z): {text:?}"),
            )
        })
    }
}

fn parse_instant(text: &str, end_of_day: bool) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    let time = match end_of_day {
        true => NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999)?,
        false => NaiveTime::MIN,
    };
    Some(day.and_time(time).and_utc())
}

fn one_of<T>(given: &str, choices: &[(&str, T)]) -> String {
    let names: Vec<&str> = choices.iter().map(|(s, _)| *s).collect();
    format!("{given:?} is not one of {}", names.join(", "))
}

/// An order: a key and a direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sort<K> {
    pub key: K,
    pub descending: bool,
}

/// A page: `limit` rows from `offset` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Paging {
    pub limit: i64,
    pub offset: i64,
}

/// A battle side as the API spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Team {
    A,
    B,
}

impl Team {
    pub const CHOICES: [(&'static str, Team); 2] = [("team_a", Team::A), ("team_b", Team::B)];

    pub fn as_str(self) -> &'static str {
        match self {
            Team::A => "team_a",
            Team::B => "team_b",
        }
    }
}

/// A path segment that must be a UUID.
pub fn uuid_segment(name: &str, text: &str) -> ApiResult<uuid::Uuid> {
    uuid::Uuid::parse_str(text)
        .map_err(|_| ApiError::invalid(name, format!("not a UUID: {text:?}")))
}

/// A path segment that must be a positive integer id.
pub fn id_segment(name: &str, text: &str) -> ApiResult<i64> {
    match text.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(ApiError::invalid(
            name,
            format!("not a positive integer id: {text:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOWED: &[&str] = &["limit", "offset", "sort", "startDate", "team"];

    fn parse(raw: &str) -> ApiResult<QueryParams> {
        QueryParams::parse(Some(raw), ALLOWED)
    }

    fn parameter_of(err: ApiError) -> String {
        match err {
            ApiError::InvalidParameter { parameter, .. } => parameter,
            other => panic!("expected an invalid parameter, got {other:?}"),
        }
    }

    #[test]
    fn unknown_repeated_and_empty_parameters_are_named() {
        assert_eq!(parameter_of(parse("bogus=1").unwrap_err()), "bogus");
        assert_eq!(parameter_of(parse("limit=1&limit=2").unwrap_err()), "limit");
        assert_eq!(parameter_of(parse("sort=").unwrap_err()), "sort");
    }

    #[test]
    fn paging_defaults_and_bounds() {
        let p = parse("").unwrap().paging().unwrap();
        assert_eq!(
            p,
            Paging {
                limit: 50,
                offset: 0
            }
        );
        let p = parse("limit=100&offset=7").unwrap().paging().unwrap();
        assert_eq!(
            p,
            Paging {
                limit: 100,
                offset: 7
            }
        );
        for bad in [
            "limit=101",
            "limit=0",
            "limit=x",
            "offset=-1",
            "offset=99999999999999999999",
        ] {
            assert!(parse(bad).unwrap().paging().is_err(), "{bad}");
        }
    }

    #[test]
    fn sort_takes_a_minus_for_descending() {
        let keys = [("kills", 1), ("deaths", 2)];
        let default = Sort {
            key: 1,
            descending: true,
        };
        let q = parse("sort=-deaths").unwrap();
        assert_eq!(
            q.sort("sort", &keys, default).unwrap(),
            Sort {
                key: 2,
                descending: true
            }
        );
        let q = parse("sort=kills").unwrap();
        assert_eq!(
            q.sort("sort", &keys, default).unwrap(),
            Sort {
                key: 1,
                descending: false
            }
        );
        assert_eq!(
            parse("").unwrap().sort("sort", &keys, default).unwrap(),
            default
        );
        assert!(parse("sort=--kills")
            .unwrap()
            .sort("sort", &keys, default)
            .is_err());
    }

    #[test]
    fn dates_and_date_times() {
        let q = parse("startDate=2025-11-25").unwrap();
        let start = q.instant("startDate", false).unwrap().unwrap();
        assert_eq!(start.to_rfc3339(), "2025-11-25T00:00:00+00:00");
        let end = q.instant("startDate", true).unwrap().unwrap();
        assert_eq!(end.to_rfc3339(), "2025-11-25T23:59:59.999999+00:00");
        let q = parse("startDate=2025-11-25T09:00:00%2B02:00").unwrap();
        let at = q.instant("startDate", false).unwrap().unwrap();
        assert_eq!(at.to_rfc3339(), "2025-11-25T07:00:00+00:00");
        for bad in [
            "startDate=2025-13-01",
            "startDate=yesterday",
            "startDate=2025-11-25T25:00:00Z",
        ] {
            assert!(
                parse(bad).unwrap().instant("startDate", false).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn segments() {
        assert!(uuid_segment("id", "not-a-uuid").is_err());
        assert!(uuid_segment("id", "6ba7b810-9dad-11d1-80b4-00c04fd430c8").is_ok());
        assert_eq!(id_segment("id", "42").unwrap(), 42);
        for bad in ["0", "-3", "4x", ""] {
            assert!(id_segment("id", bad).is_err(), "{bad}");
        }
    }
}
