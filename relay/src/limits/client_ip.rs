//! The address a connection really comes from.
//!
//! Behind a reverse proxy every connection comes from the proxy, so per-address limits would lump
//! all users together. `X-Forwarded-For` fixes that, but anyone can send the header, so it is only
//! believed when the direct peer is a proxy the operator listed with `--trusted-proxy`.

use std::net::IpAddr;

use actix_web::http::header::HeaderMap;

/// The client's address: the peer, or — if the peer is a trusted proxy — the last address in
/// `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    // Proxies append; walk from the right past our own proxies to the first outside address.
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|a| !trusted.contains(a))
            .unwrap_or(peer),
    )
}

/// Whether the request reached the client over https: only a trusted proxy's
/// `X-Forwarded-Proto: https` says so (the relay's own TLS is the caller's to check). Decides the
/// session cookie's `Secure` and the scheme of URLs the relay hands out.
pub fn forwarded_https(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpAddr]) -> bool {
    let Some(peer) = peer else {
        return false;
    };
    if !trusted.contains(&peer) {
        return false;
    }
    // Behind several proxies the header may list one scheme per hop; the first is the client's.
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            HeaderName::from_static("x-forwarded-for"),
            HeaderValue::from_str(xff).unwrap(),
        );
        h
    }

    #[test]
    fn untrusted_peers_cannot_spoof_their_address() {
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        let got = client_ip(Some(peer), &headers("1.2.3.4"), &[]);
        assert_eq!(got, Some(peer));
    }

    #[test]
    fn a_trusted_proxy_forwards_the_client_address() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let inner: IpAddr = "10.0.0.2".parse().unwrap();
        let got = client_ip(
            Some(proxy),
            &headers("6.6.6.6, 198.51.100.7, 10.0.0.2"),
            &[proxy, inner],
        );
        assert_eq!(got, Some("198.51.100.7".parse().unwrap()));
        let no_header = client_ip(Some(proxy), &HeaderMap::new(), &[proxy]);
        assert_eq!(no_header, Some(proxy));
    }

    #[test]
    fn only_a_trusted_proxy_says_https() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            HeaderName::from_static("x-forwarded-proto"),
            HeaderValue::from_static("https, http"),
        );
        assert!(forwarded_https(Some(proxy), &h, &[proxy]));
        assert!(!forwarded_https(Some(proxy), &h, &[]));
        assert!(!forwarded_https(Some(proxy), &HeaderMap::new(), &[proxy]));
        assert!(!forwarded_https(None, &h, &[proxy]));
    }
}
