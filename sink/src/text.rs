//! PostgreSQL cannot store the NUL character in TEXT or JSONB. Input is never trusted to be free
//! of it, so every string the sink writes passes through here: NUL becomes U+FFFD.

use std::borrow::Cow;

/// `s` with every NUL replaced by U+FFFD (borrowed when there is none).
pub fn pg_text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// An owned copy of `s` that PostgreSQL accepts.
pub fn pg_string(s: &str) -> String {
    pg_text(s).into_owned()
}

/// A JSON value that JSONB accepts: NUL removed from every string and object key.
pub fn pg_json(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) if s.contains('\0') => Value::String(pg_string(&s)),
        Value::Array(items) => Value::Array(items.into_iter().map(pg_json).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (pg_string(&k), pg_json(v)))
                .collect(),
        ),
        other => other,
    }
}

/// A JSON document that JSONB accepts, serialized once, bound as a `jsonb` (or `json`) value.
///
/// The sink's report types serialize straight to text. They used to become a
/// `serde_json::Value` tree first, which was built twice (the second time without NUL) and
/// walked three times for every statistics column and participant (docs/benchmarks.md, eighth
/// session).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgJson(String);

impl PgJson {
    /// `value` as JSON, with every NUL in its strings and keys replaced by U+FFFD.
    pub fn of<T: serde::Serialize>(value: &T) -> PgJson {
        // The sink's types (reports, killmails) always serialize: they hold no maps with
        // non-string keys except integer keys, which serde_json writes as strings.
        let text = serde_json::to_string(value).expect("report types serialize to JSON");
        // serde_json writes a NUL as `\u0000`, which JSONB refuses. That text can also be a
        // backslash followed by "u0000", so the rare document holding it takes the tree.
        if text.contains("\\u0000") {
            let tree = pg_json(serde_json::to_value(value).expect("serialized once already"));
            return PgJson(tree.to_string());
        }
        PgJson(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl tokio_postgres::types::ToSql for PgJson {
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        // JSONB's binary form is a version byte (1) and the text; JSON's is the text.
        if *ty == tokio_postgres::types::Type::JSONB {
            out.extend_from_slice(&[1]);
        }
        out.extend_from_slice(self.0.as_bytes());
        Ok(tokio_postgres::types::IsNull::No)
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        matches!(
            *ty,
            tokio_postgres::types::Type::JSONB | tokio_postgres::types::Type::JSON
        )
    }

    tokio_postgres::types::to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_replaced_in_text_and_json() {
        assert_eq!(pg_text("a\0b"), "a\u{FFFD}b");
        assert!(matches!(pg_text("ab"), Cow::Borrowed(_)));
        let v = serde_json::json!({"k\0": ["x\0", 1, {"n": "\0"}]});
        assert_eq!(
            pg_json(v),
            serde_json::json!({"k\u{FFFD}": ["x\u{FFFD}", 1, {"n": "\u{FFFD}"}]})
        );
    }

    #[test]
    fn pg_json_is_the_documents_json_without_nul() {
        #[derive(serde::Serialize)]
        struct Row<'a> {
            name: &'a str,
            ships: Vec<i64>,
        }
        let plain = Row {
            name: "Vexor \\u0000 \"Navy\"",
            ships: vec![1, 2],
        };
        let text = PgJson::of(&plain);
        let back: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
        assert_eq!(
            back,
            serde_json::to_value(&plain).unwrap(),
            "a literal \\u0000 is kept"
        );
        let with_nul = Row {
            name: "a\0b",
            ships: vec![],
        };
        let text = PgJson::of(&with_nul);
        assert!(!text.as_str().contains("\\u0000"));
        let back: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
        assert_eq!(back["name"], "a\u{FFFD}b");
    }
}
