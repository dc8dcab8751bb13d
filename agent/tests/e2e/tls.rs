//! `wss://`: the agent verifies the relay's certificate against the system roots plus `--ca-file`,
//! and a certificate it cannot verify is an error it reports and retries, never a connection.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use deskbridge_testkit::start_relay;

use crate::harness::{relay_config, AgentProcess, Home, FAST};

/// A relay config serving TLS with a fresh self-signed certificate for `localhost`; returns the
/// certificate's PEM too.
fn tls_relay_config() -> (deskbridge_testkit::Config, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .unwrap();
    let mut config = relay_config();
    config.tls = Some(Arc::new(server));
    (config, certified.cert.pem())
}

#[actix_rt::test]
async fn wss_works_with_an_extra_ca_file_and_fails_clearly_without_it() {
    let (config, ca_pem) = tls_relay_config();
    let relay = start_relay(config);
    let url = format!("wss://localhost:{}/ws", relay.addr().port());

    let untrusting_home = Home::new();
    let untrusting = AgentProcess::run(&untrusting_home, &url, "tls-box", FAST);
    untrusting
        .wait_for_log(
            &format!("cannot connect to the relay at {url}"),
            Duration::from_secs(10),
        )
        .await;
    let log = untrusting.log();
    assert!(
        log.contains("certificate"),
        "the error names the certificate:\n{log}"
    );
    assert!(!log.contains("connected to the relay as"), "{log}");
    drop(untrusting);

    let home = Home::new();
    let ca_file = home.path().join("relay-ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let mut args = FAST.to_vec();
    let ca_arg = ca_file.to_str().unwrap().to_owned();
    args.extend(["--ca-file", &ca_arg]);
    let agent = AgentProcess::run(&home, &url, "tls-box", &args);
    agent
        .wait_for_log("connected to the relay as tls-box", Duration::from_secs(10))
        .await;
    relay.stop();
}

#[test]
fn an_unusable_ca_file_stops_the_agent_at_startup_with_one_line() {
    let home = Home::new();
    let ca_file = home.path().join("junk.pem");
    std::fs::write(&ca_file, "not a certificate").unwrap();
    let out = home
        .command()
        .args(["run", "--relay", "wss://localhost:9/ws", "--ca-file"])
        .arg(&ca_file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = err.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].contains("BEGIN CERTIFICATE"), "{err}");
}
