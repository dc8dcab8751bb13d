//! The relay serving HTTPS and WSS itself, with a certificate generated for the test.

use std::sync::Arc;

use deskbridge_relay::{tls, Config};
use deskbridge_testkit::{start_relay, test_config, Client};

struct TestCert {
    _dir: tempfile::TempDir,
    config: Arc<rustls::ServerConfig>,
    der: rustls_pki_types::CertificateDer<'static>,
}

fn test_cert() -> TestCert {
    let dir = tempfile::tempdir().unwrap();
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, signing_key.serialize_pem()).unwrap();
    TestCert {
        config: tls::server_config(&cert_path, &key_path).unwrap(),
        der: cert.der().clone(),
        _dir: dir,
    }
}

fn client_trusting(cert: Option<&rustls_pki_types::CertificateDer<'static>>) -> awc::Client {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(cert) = cert {
        roots.add(cert.clone()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(Arc::new(config)))
        .finish()
}

#[actix_web::test]
async fn serves_wss_to_clients_that_trust_the_certificate() {
    let cert = test_cert();
    let relay = start_relay(Config {
        tls: Some(cert.config.clone()),
        ..test_config()
    });
    let url = format!("wss://localhost:{}/ws", relay.addr().port());
    let (_, framed) = client_trusting(Some(&cert.der))
        .ws(&url)
        .connect()
        .await
        .expect("wss handshake");
    let mut web = Client::from_framed(framed);
    web.send(r#"{"event":"authentication","client_id":"tls","client_mode":"web"}"#)
        .await;
    assert_eq!(web.next_event().await["event"], "welcome");

    let page = client_trusting(Some(&cert.der))
        .get(format!("https://localhost:{}/healthz", relay.addr().port()))
        .send()
        .await
        .expect("https request");
    assert_eq!(page.status().as_u16(), 200);

    let untrusted = client_trusting(None).ws(&url).connect().await;
    assert!(
        untrusted.is_err(),
        "a client that does not trust the certificate must be refused"
    );
}

#[test]
fn bad_pem_files_are_reported_with_the_flag_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let err = tls::server_config(&empty, &empty).unwrap_err().to_string();
    assert!(err.contains("--tls-cert"), "{err}");
    let missing = dir.path().join("missing.pem");
    let err = tls::server_config(&missing, &missing)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--tls-cert"), "{err}");
}
