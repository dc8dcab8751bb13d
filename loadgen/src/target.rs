//! The relay the load generator may talk to: a `ws://` URL whose host resolves to loopback only.
//!
//! A load generator pointed at someone else's server is a denial-of-service tool, so anything
//! that is not this machine is refused before a single socket is opened.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

/// Why a target was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("{0:?} is not a ws:// URL like ws://127.0.0.1:8000/ws (TLS is not supported by the load generator)")]
    NotWs(String),
    #[error("cannot resolve {0:?}")]
    Unresolvable(String),
    #[error("{host} resolves to {addr}, which is not a loopback address; the load generator only targets this machine")]
    NotLoopback { host: String, addr: IpAddr },
}

/// A checked loopback relay endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL to put in the WebSocket handshake.
    pub url: String,
    /// Where to connect.
    pub addr: SocketAddr,
    /// `http://host:port`, for `/metrics`.
    pub http_base: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Self, TargetError> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| TargetError::NotWs(url.to_owned()))?;
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() || authority.contains('@') {
            return Err(TargetError::NotWs(url.to_owned()));
        }
        let with_port = if authority.ends_with(']') || !authority.contains(':') {
            format!("{authority}:80")
        } else {
            authority.to_owned()
        };
        let addrs: Vec<SocketAddr> = with_port
            .to_socket_addrs()
            .map_err(|_| TargetError::Unresolvable(authority.to_owned()))?
            .collect();
        if addrs.is_empty() {
            return Err(TargetError::Unresolvable(authority.to_owned()));
        }
        if let Some(bad) = addrs.iter().find(|a| !a.ip().is_loopback()) {
            return Err(TargetError::NotLoopback {
                host: authority.to_owned(),
                addr: bad.ip(),
            });
        }
        let addr = addrs[0];
        Ok(Self {
            url: url.to_owned(),
            addr,
            http_base: format!("http://{addr}"),
        })
    }

    /// The `index`-th of `count` loopback source addresses to connect from.
    ///
    /// The relay limits connections per client address, as it should on the internet; thousands
    /// of simulated clients on one machine spread over 127.0.0.1, 127.0.0.2, … (all of 127/8 is
    /// loopback on Linux) as real clients spread over their own addresses.
    pub fn source_ip(&self, index: usize, count: u32) -> IpAddr {
        match self.addr.ip() {
            IpAddr::V6(v6) => IpAddr::V6(v6),
            IpAddr::V4(_) => {
                let n = (index as u32) % count.max(1) + 1;
                IpAddr::V4(Ipv4Addr::new(127, 0, (n >> 8) as u8, (n & 0xff) as u8))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_targets_pass() {
        let t = Target::parse("ws://127.0.0.1:8123/ws").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8123".parse().unwrap());
        assert_eq!(t.http_base, "http://127.0.0.1:8123");
        assert!(Target::parse("ws://[::1]:9/ws").is_ok());
        assert!(Target::parse("ws://localhost:9/ws").is_ok());
    }

    #[test]
    fn other_hosts_and_schemes_are_refused() {
        assert!(matches!(
            Target::parse("ws://192.0.2.1:80/ws"),
            Err(TargetError::NotLoopback { .. })
        ));
        assert!(matches!(
            Target::parse("ws://10.0.0.1/ws"),
            Err(TargetError::NotLoopback { .. })
        ));
        assert!(matches!(
            Target::parse("wss://127.0.0.1/ws"),
            Err(TargetError::NotWs(_))
        ));
        assert!(matches!(
            Target::parse("ws://user@127.0.0.1/ws"),
            Err(TargetError::NotWs(_))
        ));
    }

    #[test]
    fn source_addresses_cycle_through_loopback() {
        let t = Target::parse("ws://127.0.0.1:1/ws").unwrap();
        assert_eq!(t.source_ip(0, 3), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(t.source_ip(2, 3), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)));
        assert_eq!(t.source_ip(3, 3), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(
            t.source_ip(300, 1000),
            IpAddr::V4(Ipv4Addr::new(127, 0, 1, 45))
        );
    }
}
