//! TLS for `wss://` relays: rustls with the operating system's trusted roots, plus an optional PEM
//! file of extra CAs for relays behind a private or company CA.
//!
//! The config is built once at startup, so a wrong `--ca-file` is reported before the first
//! connection attempt instead of as a handshake failure every minute. rustls uses the `ring`
//! provider, which builds with a plain C compiler (aws-lc-rs would need cmake on every
//! developer's machine). `SSL_CERT_FILE` / `SSL_CERT_DIR` are honoured by rustls-native-certs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// Why no TLS configuration could be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read --ca-file {path}: {source}; check the path")]
    CaFileUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "--ca-file {path} holds no usable PEM certificate ({why}); it must contain \
         \"-----BEGIN CERTIFICATE-----\" blocks"
    )]
    CaFileInvalid { path: PathBuf, why: String },
    #[error(
        "no trusted CA certificates found: the system store is empty or unreadable and no \
         --ca-file was given; install the ca-certificates package or pass --ca-file"
    )]
    NoRoots,
    #[error("cannot set up TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A rustls client config trusting the system roots and the certificates in `ca_file`.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        log::warn!("skipping part of the system certificate store: {error}");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    log::debug!("trusting {added} system root certificates ({ignored} unparsable ones skipped)");
    if let Some(path) = ca_file {
        let extra = read_ca_file(path)?;
        for cert in extra {
            roots.add(cert).map_err(|e| TlsError::CaFileInvalid {
                path: path.to_owned(),
                why: e.to_string(),
            })?;
        }
    }
    if roots.is_empty() {
        return Err(TlsError::NoRoots);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // WebSockets run over HTTP/1.1 (awc has no WebSocket-over-HTTP/2).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::CaFileUnreadable {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |why: String| TlsError::CaFileInvalid {
        path: path.to_owned(),
        why,
    };
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(e.to_string()))?;
    if certs.is_empty() {
        return Err(invalid("no certificate found".into()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_roots_are_enough_without_a_ca_file() {
        // The build machines carry the ca-certificates package, as any desktop does.
        let config = client_config(None).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn a_bad_ca_file_is_a_clear_startup_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = client_config(Some(&missing)).unwrap_err();
        assert!(matches!(e, TlsError::CaFileUnreadable { .. }), "{e}");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let e = client_config(Some(&junk)).unwrap_err().to_string();
        assert!(e.contains("BEGIN CERTIFICATE"), "{e}");
        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert!(client_config(Some(&broken)).is_err());
    }
}
