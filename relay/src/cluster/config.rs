//! Settings of cluster mode: which NATS servers to join, how to authenticate to them, and this
//! node's name among the relays.
//!
//! Kept apart from the relay's own [`Config`](crate::Config) because none of it matters to a
//! single relay: `Config::cluster` is `None` unless `--nats` is given.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use async_nats::ServerAddr;

/// How a relay joins the cluster.
#[derive(Clone)]
pub struct ClusterConfig {
    /// NATS servers to try, in any order (`nats://`, `tls://`; `user:pass@` or `token@` in the
    /// URL work as NATS clients usually accept them).
    pub servers: Vec<ServerAddr>,
    /// This relay's name in announcements and on `/metrics`; unique per running process.
    pub node_id: String,
    /// A NATS `.creds` file (JWT + nkey seed), as `nsc` writes them.
    pub credentials_file: Option<PathBuf>,
    /// A NATS authentication token.
    pub token: Option<String>,
    /// CA certificate (PEM) to verify the NATS servers with, instead of the system's roots.
    pub tls_ca: Option<PathBuf>,
    /// Client certificate and key (PEM) for NATS servers that require mutual TLS.
    pub tls_client_cert: Option<(PathBuf, PathBuf)>,
    /// Longest wait for another node to answer a command or a history request.
    pub request_timeout: Duration,
    /// Messages waiting to be handed to NATS; telemetry beyond it is dropped (and counted).
    pub publish_queue: usize,
}

impl ClusterConfig {
    /// A cluster configuration with the defaults for everything but where NATS is.
    pub fn new(servers: Vec<ServerAddr>, node_id: impl Into<String>) -> Self {
        Self {
            servers,
            node_id: node_id.into(),
            credentials_file: None,
            token: None,
            tls_ca: None,
            tls_client_cert: None,
            request_timeout: Duration::from_secs(1),
            publish_queue: 8192,
        }
    }

    /// Parses a comma-separated list of NATS server URLs (`nats://host:4222,nats://other:4222`).
    pub fn parse_servers(list: &str) -> Result<Vec<ServerAddr>, String> {
        let servers: Vec<ServerAddr> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<ServerAddr>()
                    .map_err(|e| format!("--nats {:?}: {e}", redact(s)))
            })
            .collect::<Result<_, _>>()?;
        if servers.is_empty() {
            return Err("--nats needs at least one server URL, like nats://127.0.0.1:4222".into());
        }
        Ok(servers)
    }

    /// The servers as `host:port`, for logs (never with credentials).
    pub fn servers_for_log(&self) -> String {
        self.servers
            .iter()
            .map(|s| format!("{}:{}", s.host(), s.port()))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl fmt::Debug for ClusterConfig {
    /// Leaves out the token and any credentials in the URLs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("servers", &self.servers_for_log())
            .field("node_id", &self.node_id)
            .field("credentials_file", &self.credentials_file)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("tls_ca", &self.tls_ca)
            .field("tls_client_cert", &self.tls_client_cert)
            .field("request_timeout", &self.request_timeout)
            .field("publish_queue", &self.publish_queue)
            .finish()
    }
}

fn redact(url: &str) -> String {
    match url.split_once('@') {
        Some((_, host)) => format!("…@{host}"),
        None => url.to_owned(),
    }
}

/// Checks a node id: 1–64 characters of `A-Z a-z 0-9 . _ -`, so it needs no escaping in JSON,
/// NATS headers or Prometheus labels.
pub fn validate_node_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "--node-id {id:?}: use 1-64 characters of A-Z a-z 0-9 . _ -"
        ))
    }
}

/// `<hostname>-<6 random hex digits>`: readable in logs, and new on every start, so a restarted
/// node is never mistaken for its previous life.
pub fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let mut host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(48)
        .collect();
    if host.is_empty() {
        host.push_str("relay");
    }
    format!("{host}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_lists_and_hides_credentials_in_errors() {
        let servers =
            ClusterConfig::parse_servers("nats://127.0.0.1:4222, nats://10.0.0.2:4223").unwrap();
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[1].port(), 4223);
        let err = ClusterConfig::parse_servers("http://secret@x").unwrap_err();
        assert!(!err.contains("secret"), "{err}");
        assert!(ClusterConfig::parse_servers(" , ").is_err());
    }

    #[test]
    fn debug_output_leaves_secrets_out() {
        let mut config = ClusterConfig::new(
            ClusterConfig::parse_servers("nats://user:hunter2@127.0.0.1:4222").unwrap(),
            "a",
        );
        config.token = Some("s3cr3t".into());
        let text = format!("{config:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("s3cr3t"),
            "{text}"
        );
        assert!(text.contains("127.0.0.1:4222"), "{text}");
    }

    #[test]
    fn node_ids_are_checked_and_defaults_are_valid_and_distinct() {
        assert!(validate_node_id("relay-1.eu_west").is_ok());
        assert!(validate_node_id("").is_err());
        assert!(validate_node_id("has space").is_err());
        assert!(validate_node_id(&"x".repeat(65)).is_err());
        let (a, b) = (default_node_id(), default_node_id());
        validate_node_id(&a).unwrap();
        assert_ne!(a, b);
    }
}
