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

/// Serializes `value` to JSON that JSONB accepts.
pub fn to_pg_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    // The sink's types (reports, killmails) always serialize: they hold no maps with
    // non-string keys except integer keys, which serde_json writes as strings.
    pg_json(serde_json::to_value(value).expect("report types serialize to JSON"))
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
}
