//! The relay's own address as the caller reaches it, for the URLs the API hands out (share
//! links, the agent's `--relay`) and for the session cookie's `Secure`: `--public-url` when the
//! operator set one, else the request's `Host`, with https when the relay serves TLS or a trusted
//! proxy says the client used https.

use actix_web::http::header;
use actix_web::HttpRequest;

use crate::config::Config;
use crate::limits::client_ip::forwarded_https;

/// Whether the client reached the relay over https (TLS here, or at a trusted proxy).
pub fn https(req: &HttpRequest, config: &Config) -> bool {
    config.tls.is_some()
        || forwarded_https(
            req.peer_addr().map(|a| a.ip()),
            req.headers(),
            &config.trusted_proxies,
        )
}

/// `https://host[:port]` (or `http://`), without a trailing slash.
pub fn page_base(req: &HttpRequest, config: &Config) -> String {
    if let Some(url) = &config.public_url {
        return url.clone();
    }
    let scheme = if https(req, config) { "https" } else { "http" };
    format!("{scheme}://{}", host(req))
}

/// The WebSocket endpoint: `wss://host/ws` (or `ws://`).
pub fn ws_url(req: &HttpRequest, config: &Config) -> String {
    let base = page_base(req, config);
    let ws = match base.strip_prefix("https://") {
        Some(rest) => format!("wss://{rest}"),
        None => format!("ws://{}", base.strip_prefix("http://").unwrap_or(&base)),
    };
    format!("{ws}/ws")
}

/// The `Host` the client used, if it looks like a host; else the address it connected to.
fn host(req: &HttpRequest) -> String {
    let named = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        });
    match named {
        Some(host) => host.to_owned(),
        None => req.app_config().host().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn urls_follow_the_public_url_or_the_host() {
        let mut config = Config::default();
        let req = TestRequest::default()
            .insert_header((header::HOST, "relay.local:8000"))
            .to_http_request();
        assert_eq!(page_base(&req, &config), "http://relay.local:8000");
        assert_eq!(ws_url(&req, &config), "ws://relay.local:8000/ws");
        config.public_url = Some("https://relay.example.com".into());
        assert_eq!(ws_url(&req, &config), "wss://relay.example.com/ws");
        let odd = TestRequest::default()
            .insert_header((header::HOST, "evil\"host"))
            .to_http_request();
        config.public_url = None;
        assert!(!page_base(&odd, &config).contains('"'));
    }
}
