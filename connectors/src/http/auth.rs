//! Tokens: where a request may carry one, and comparing it with the configured one without leaking
//! through timing how much of it matched.
//!
//! Four places are accepted because reader vendors differ in what their webhook settings offer:
//! `Authorization: Bearer <t>` (the common style), `Authorization: Token <t>` (Plate Recognizer's
//! style), an `X-Api-Key: <t>` header, and a `token=<t>` query parameter for webhook UIs that only
//! take a URL. The first one present in that order is the one checked.

use axum::http::{header, HeaderMap, Uri};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const API_KEY_HEADER: &str = "x-api-key";

/// A configured token, kept as its SHA-256. Comparing digests makes the comparison's time
/// independent of the token's length as well as its content.
#[derive(Clone)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    pub fn matches(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        presented.ct_eq(&self.0).into()
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The token a request carries, if any.
pub fn presented_token(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
    {
        if let Some((scheme, credentials)) = value.trim().split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token") {
                return Some(credentials.trim().to_owned());
            }
        }
    }
    if let Some(value) = headers
        .get(API_KEY_HEADER)
        .and_then(|value| value.to_str().ok())
    {
        return Some(value.trim().to_owned());
    }
    let query = uri.query()?;
    serde_urlencoded::from_str::<TokenQuery>(query)
        .ok()?
        .token
        .filter(|token| !token.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn every_documented_place_carries_a_token() {
        let plain: Uri = "/v1/ingest/rekor".parse().unwrap();
        let cases = [
            (headers("authorization", "Bearer s3cret"), plain.clone()),
            (headers("authorization", "bearer  s3cret "), plain.clone()),
            (headers("authorization", "Token s3cret"), plain.clone()),
            (headers("x-api-key", "s3cret"), plain.clone()),
            (
                HeaderMap::new(),
                "/v1/ingest/rekor?camera=3&token=s3cret".parse().unwrap(),
            ),
        ];
        for (headers, uri) in cases {
            assert_eq!(
                presented_token(&headers, &uri).as_deref(),
                Some("s3cret"),
                "{headers:?} {uri}"
            );
        }
    }

    #[test]
    fn other_schemes_and_empty_queries_carry_none() {
        let plain: Uri = "/v1/ingest/rekor".parse().unwrap();
        assert_eq!(
            presented_token(&headers("authorization", "Basic dTpw"), &plain),
            None
        );
        assert_eq!(presented_token(&HeaderMap::new(), &plain), None);
        let empty: Uri = "/v1/ingest/rekor?token=".parse().unwrap();
        assert_eq!(presented_token(&HeaderMap::new(), &empty), None);
    }

    #[test]
    fn only_the_exact_token_matches() {
        let digest = TokenDigest::of("correct-horse-battery-staple");
        assert!(digest.matches("correct-horse-battery-staple"));
        assert!(!digest.matches("correct-horse-battery-stapl"));
        assert!(!digest.matches("correct-horse-battery-staple "));
        assert!(!digest.matches(""));
    }
}
