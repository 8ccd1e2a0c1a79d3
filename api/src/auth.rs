//! The admin check: `Authorization: Bearer <token>` against the configured token, compared in
//! constant time. No header (or not a bearer one) is 401; a wrong token is 403; with no token
//! configured the admin endpoints are closed (403), never open.

use axum::http::{header, HeaderMap};
use subtle::ConstantTimeEq;

use crate::error::{ApiError, ApiResult};

/// Ok when `headers` carry the admin token `configured`.
pub fn require_admin(headers: &HeaderMap, configured: Option<&str>) -> ApiResult<()> {
    let given = bearer_token(headers).ok_or(ApiError::Unauthorized)?;
    let Some(expected) = configured.filter(|t| !t.is_empty()) else {
        return Err(ApiError::Forbidden(
            "admin endpoints are closed: no admin token is configured",
        ));
    };
    // ct_eq on slices of different lengths is false without looking at the bytes: the length
    // of the token is the only thing a timing attacker can learn.
    match bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
        true => Ok(()),
        false => Err(ApiError::Forbidden("wrong admin token")),
    }
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_auth(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn missing_or_malformed_header_is_401() {
        for headers in [
            HeaderMap::new(),
            with_auth("Basic abc"),
            with_auth("Bearer "),
        ] {
            let err = require_admin(&headers, Some("secret")).unwrap_err();
            assert!(matches!(err, ApiError::Unauthorized), "{err:?}");
        }
    }

    #[test]
    fn wrong_token_or_none_configured_is_403() {
        for (given, configured) in [
            ("Bearer secreT", Some("secret")),
            ("Bearer secret2", Some("secret")),
            ("Bearer secret", None),
            ("Bearer secret", Some("")),
        ] {
            let err = require_admin(&with_auth(given), configured).unwrap_err();
            assert!(
                matches!(err, ApiError::Forbidden(_)),
                "{given} {configured:?}"
            );
        }
    }

    #[test]
    fn right_token_passes() {
        assert!(require_admin(&with_auth("Bearer secret"), Some("secret")).is_ok());
        assert!(require_admin(&with_auth("bearer secret"), Some("secret")).is_ok());
    }
}
