//! Composing a query from fixed SQL fragments. A fragment is a `&'static str` written in this
//! crate with `$?` where its value goes; values are always bound parameters, so nothing a
//! client sends ever becomes SQL text.

use std::fmt;
use tokio_postgres::types::ToSql;

use tokio_postgres::row::RowIndex;
use tokio_postgres::Row;

/// A conjunction of conditions and the values they bind.
#[derive(Default)]
pub struct Conditions {
    clauses: Vec<String>,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Conditions {
    /// Conditions starting with fixed ones (no values).
    pub fn new(fixed: &[&'static str]) -> Conditions {
        Conditions {
            clauses: fixed.iter().map(|c| (*c).to_owned()).collect(),
            params: Vec::new(),
        }
    }

    /// Adds `fragment` binding `value` at its `$?`.
    pub fn add<T: ToSql + Sync + Send + 'static>(&mut self, fragment: &'static str, value: T) {
        let placeholder = self.bind(value);
        self.clauses.push(fragment.replace("$?", &placeholder));
    }

    /// Adds `fragment` when `value` is given.
    pub fn add_some<T: ToSql + Sync + Send + 'static>(
        &mut self,
        fragment: &'static str,
        value: Option<T>,
    ) {
        if let Some(value) = value {
            self.add(fragment, value);
        }
    }

    /// Binds `value` without a condition (LIMIT, OFFSET): its placeholder, e.g. `$3`.
    pub fn bind<T: ToSql + Sync + Send + 'static>(&mut self, value: T) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }

    /// The `WHERE` body: the conditions joined by `AND` (`TRUE` when there are none).
    pub fn where_sql(&self) -> String {
        match self.clauses.is_empty() {
            true => "TRUE".to_owned(),
            false => self.clauses.join(" AND "),
        }
    }

    /// The conditions with their values, as one string: equal keys mean the same rows.
    pub fn key(&self) -> String {
        use std::fmt::Write;
        let mut key = self.where_sql();
        for value in &self.params {
            let _ = write!(key, "\u{1f}{value:?}");
        }
        key
    }

    /// The bound values, in placeholder order.
    pub fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// An `INT` column the schema leaves nullable (`DEFAULT 0`), as the number it means.
pub fn int<I: RowIndex + fmt::Display>(row: &Row, column: I) -> i32 {
    row.get::<_, Option<i32>>(column).unwrap_or(0)
}

/// A `BIGINT` column the schema leaves nullable (`DEFAULT 0`).
pub fn bigint<I: RowIndex + fmt::Display>(row: &Row, column: I) -> i64 {
    row.get::<_, Option<i64>>(column).unwrap_or(0)
}

/// A stored name, `None` when empty (the killmails carried none).
pub fn name<I: RowIndex + fmt::Display>(row: &Row, column: I) -> Option<String> {
    row.get::<_, Option<String>>(column)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_binding_order() {
        let mut c = Conditions::new(&["deleted_at IS NULL"]);
        c.add("primary_system_id = $?", 30000142i64);
        c.add_some("total_pilots >= $?", None::<i32>);
        c.add_some("status = $?", Some("open".to_owned()));
        let limit = c.bind(50i64);
        assert_eq!(
            c.where_sql(),
            "deleted_at IS NULL AND primary_system_id = $1 AND status = $2"
        );
        assert_eq!(limit, "$3");
        assert_eq!(c.params().len(), 3);
        assert_eq!(Conditions::default().where_sql(), "TRUE");
    }

    #[test]
    fn keys_differ_by_condition_and_by_value() {
        let with = |system: i64, pilots: Option<i32>| {
            let mut c = Conditions::new(&["deleted_at IS NULL"]);
            c.add("primary_system_id = $?", system);
            c.add_some("total_pilots >= $?", pilots);
            c.key()
        };
        assert_eq!(with(1, Some(3)), with(1, Some(3)));
        assert_ne!(with(1, Some(3)), with(2, Some(3)));
        assert_ne!(with(1, Some(3)), with(1, Some(4)));
        assert_ne!(with(1, Some(3)), with(1, None));
    }
}
