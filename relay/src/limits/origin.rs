//! The WebSocket `Origin` check against cross-site WebSocket hijacking.
//!
//! Browsers attach the page's origin to every WebSocket handshake and cookies or not, a page on
//! another site could otherwise open a viewer session with a token it obtained. Only the relay's
//! own origin and the operator's `--allowed-origin` list pass. Non-browser clients (the agent)
//! send no `Origin` and are not affected.

use actix_web::http::header::{self, HeaderMap};

/// Whether a handshake with these headers may proceed.
pub fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
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

    #[test]
    fn same_origin_and_listed_origins_pass_others_do_not() {
        let none: Vec<String> = vec![];
        assert!(origin_allowed(&headers(None, "relay:8000"), &none));
        assert!(origin_allowed(
            &headers(Some("http://relay:8000"), "relay:8000"),
            &none
        ));
        assert!(origin_allowed(
            &headers(Some("https://Relay:8000"), "relay:8000"),
            &none
        ));
        assert!(!origin_allowed(
            &headers(Some("http://evil.example"), "relay:8000"),
            &none
        ));
        assert!(!origin_allowed(
            &headers(Some("http://relay:8001"), "relay:8000"),
            &none
        ));
        assert!(!origin_allowed(&headers(Some("null"), "relay:8000"), &none));
        let listed = vec!["https://app.example.com".to_owned()];
        assert!(origin_allowed(
            &headers(Some("https://app.example.com"), "relay:8000"),
            &listed
        ));
    }
}
