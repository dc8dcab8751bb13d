//! Loading a PEM certificate chain and private key into a rustls server configuration, so the
//! relay can serve HTTPS and WSS itself when no reverse proxy terminates TLS in front of it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read the certificate chain {path}: {source}; pass a PEM file with --tls-cert")]
    Cert {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("{path} holds no certificate; pass a PEM file with --tls-cert")]
    NoCert { path: PathBuf },
    #[error("cannot read the private key {path}: {source}; pass a PEM key (PKCS#8, PKCS#1 or SEC1) with --tls-key")]
    Key {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("the certificate and key do not fit together: {0}")]
    Mismatch(rustls::Error),
}

/// Builds a server configuration (TLS 1.2 and 1.3, ring's safe defaults, HTTP/1.1 only since the
/// WebSocket upgrade needs it).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsSetupError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|source| TlsSetupError::Cert {
            path: cert.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsSetupError::NoCert {
            path: cert.to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsSetupError::Key {
        path: key.to_owned(),
        source,
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(TlsSetupError::Mismatch)?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(TlsSetupError::Mismatch)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
