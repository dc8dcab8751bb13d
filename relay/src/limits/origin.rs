//! The WebSocket `Origin` check against cross-site WebSocket hijacking.
//!
//! Browsers attach the page's origin to every WebSocket handshake and cookies or not, a page on
//! another site could otherwise open a viewer session with a token it obtained. Only the relay's
//! own origin and the operator's `--allowed-origin` list pass. Non-browser clients (the agent)
//! send no `Origin` and are not affected.
//!
//! `Origin: null` is what a page opened from disk (`file://`), a sandboxed frame or some redirects
//! send: it names no site, so any page can produce it and an allow-list cannot tell them apart.
//! With tokens required it stays refused. Under `--allow-anonymous`, where anyone may watch any id
//! without a token anyway, refusing it protects nothing and breaks the 2018 prototype's own
//! `web.html`, which its article opens from disk; so there it passes.

use actix_web::http::header::{self, HeaderMap};

/// Whether a handshake with these headers may proceed; `allow_null` (the relay's
/// `--allow-anonymous`) lets `Origin: null` through.
pub fn origin_allowed(headers: &HeaderMap, allowed: &[String], allow_null: bool) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if origin == "null" {
        return allow_null;
    }
    let origin = origin.trim_end_matches('/');
    if allowed
        .iter()
        .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    // Same origin: the Origin's host[:port] is the Host the browser connected to.
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    /// Both with and without `--allow-anonymous`, which only changes `null`.
    fn origin_allowed_t(headers: &HeaderMap, allowed: &[String]) -> bool {
        let strict = origin_allowed(headers, allowed, false);
        let anonymous = origin_allowed(headers, allowed, true);
        if headers.get(header::ORIGIN).is_some_and(|o| o != "null") {
            assert_eq!(strict, anonymous, "allow_null changed a non-null origin");
        }
        strict
    }

    #[test]
    fn same_origin_and_listed_origins_pass_others_do_not() {
        let none: Vec<String> = vec![];
        assert!(origin_allowed_t(&headers(None, "relay:8000"), &none));
        assert!(origin_allowed_t(
            &headers(Some("http://relay:8000"), "relay:8000"),
            &none
        ));
        assert!(origin_allowed_t(
            &headers(Some("https://Relay:8000"), "relay:8000"),
            &none
        ));
        assert!(!origin_allowed_t(
            &headers(Some("http://evil.example"), "relay:8000"),
            &none
        ));
        assert!(!origin_allowed_t(
            &headers(Some("http://relay:8001"), "relay:8000"),
            &none
        ));
        assert!(!origin_allowed_t(
            &headers(Some("null"), "relay:8000"),
            &none
        ));
        let listed = vec!["https://app.example.com".to_owned()];
        assert!(origin_allowed_t(
            &headers(Some("https://app.example.com"), "relay:8000"),
            &listed
        ));
    }

    #[test]
    fn a_null_origin_passes_only_when_anonymous_clients_are_allowed() {
        let none: Vec<String> = vec![];
        let null = headers(Some("null"), "relay:8000");
        assert!(!origin_allowed(&null, &none, false));
        assert!(origin_allowed(&null, &none, true));
        // Listing it does not help with tokens required: it names no site.
        assert!(!origin_allowed(&null, &["null".to_owned()], false));
        // Only the exact value; anything else still has to match a site.
        assert!(!origin_allowed(
            &headers(Some("NULL"), "relay:8000"),
            &none,
            true
        ));
        assert!(!origin_allowed(
            &headers(Some("null "), "relay:8000"),
            &none,
            true
        ));
    }
}
