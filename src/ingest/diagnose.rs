//! The slow path for records the fast parser refused: parse again while tracking the path of the
//! failing field (serde_path_to_error) and turn the parser's error into a typed
//! [`RejectReason`]. Only rejected records pay for this.

use serde::de::IgnoredAny;
use serde_json::error::Category;

use super::raw::RawRecord;
use super::RejectReason;

/// Why `bytes` does not deserialize as a record; `fallback` is the fast path's error.
pub(crate) fn diagnose(bytes: &[u8], fallback: serde_json::Error) -> RejectReason {
    if !starts_with_object(bytes) {
        return match serde_json::from_slice::<IgnoredAny>(bytes) {
            Ok(_) => RejectReason::UnknownShape("not a JSON object".into()),
            Err(e) => RejectReason::InvalidJson(e.to_string()),
        };
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, RawRecord>(&mut de) {
        Err(e) => classify(e.path().to_string(), e.into_inner()),
        Ok(_) => match de.end() {
            Err(e) => RejectReason::InvalidJson(e.to_string()),
            Ok(()) => RejectReason::InvalidJson(fallback.to_string()),
        },
    }
}

/// First non-whitespace byte is `{`.
fn starts_with_object(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{')
}

fn classify(path: String, e: serde_json::Error) -> RejectReason {
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => RejectReason::InvalidJson(e.to_string()),
        Category::Data => {
            let message = e.to_string();
            if let Some(field) = backticked(&message, "missing field `") {
                RejectReason::MissingField(join(&path, field))
            } else if let Some(field) = backticked(&message, "duplicate field `") {
                RejectReason::DuplicateField(join(&path, field))
            } else if path == "." {
                RejectReason::UnknownShape(message)
            } else {
                RejectReason::WrongType(path)
            }
        }
    }
}

/// The name inside backticks after `prefix`, when the message starts with it.
fn backticked<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split('`').next()
}

/// `path` (as serde_path_to_error prints it, `.` for the root) joined with a field name.
fn join(path: &str, field: &str) -> String {
    if path == "." || path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(s: &str) -> RejectReason {
        let err = serde_json::from_slice::<RawRecord>(s.as_bytes())
            .err()
            .expect("fails");
        diagnose(s.as_bytes(), err)
    }

    #[test]
    fn names_the_failing_field_with_its_path() {
        assert_eq!(
            reason(r#"{"killmail_id": 5, "victim": {"ship_type_id": "587"}}"#),
            RejectReason::WrongType("victim.ship_type_id".into())
        );
        assert_eq!(
            reason(
                r#"{"killmail_id": 5, "attackers": [{"damage_done": 1}, {"damage_done": 1.5}]}"#
            ),
            RejectReason::WrongType("attackers[1].damage_done".into())
        );
        assert_eq!(
            reason(r#"{"killmail_id": 5, "killmail_id": 6}"#),
            RejectReason::DuplicateField("killmail_id".into())
        );
    }

    #[test]
    fn syntax_errors_and_non_objects() {
        assert!(matches!(
            reason(r#"{"killmail_id": 5"#),
            RejectReason::InvalidJson(_)
        ));
        assert!(matches!(reason("nonsense"), RejectReason::InvalidJson(_)));
        assert!(matches!(
            reason(r#"{"a":1} x"#),
            RejectReason::InvalidJson(_)
        ));
        assert_eq!(
            reason("[1, 2]"),
            RejectReason::UnknownShape("not a JSON object".into())
        );
    }
}
