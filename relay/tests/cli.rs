//! The real `deskbridge-relay` binary: key and token tools, refusing to start insecurely, and a
//! clean shutdown on SIGTERM.

use std::process::Command;
use std::time::{Duration, Instant};

use awc::ws::CloseCode;
use deskbridge_auth::token;
use deskbridge_auth::{KeySet, Role};
use deskbridge_protocol::{ClientId, ClientMode, ErrorCode};
use deskbridge_testkit::Client;
use deskbridge_testkit::RelayProcess;

const RELAY: &str = env!("CARGO_BIN_EXE_deskbridge-relay");

fn relay() -> Command {
    let mut cmd = Command::new(RELAY);
    cmd.env_remove("RUST_LOG")
        .env_remove("DESKBRIDGE_SECRET_FILE")
        .env_remove("DESKBRIDGE_ALLOW_ANONYMOUS");
    cmd
}

#[test]
fn keygen_writes_a_private_key_file_and_will_not_overwrite_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.keys");
    let out = relay().arg("keygen").arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "keygen prints nothing on stdout");
    KeySet::load(&path).expect("a loadable key file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let before = std::fs::read(&path).unwrap();
    let again = relay().arg("keygen").arg(&path).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert!(relay()
        .arg("keygen")
        .arg(&path)
        .arg("--force")
        .status()
        .unwrap()
        .success());
    assert_ne!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn token_prints_only_a_token_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.keys");
    assert!(relay().arg("keygen").arg(&path).status().unwrap().success());
    let out = relay()
        .args([
            "token",
            "--id",
            "alice-laptop",
            "--mode",
            "desktop",
            "--ttl",
            "90s",
            "--secret-file",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.trim_end();
    assert_eq!(stdout.lines().count(), 1);
    let keys = KeySet::load(&path).unwrap();
    let claims = token::Verifier::new(keys, token::DEFAULT_CLOCK_SKEW)
        .verify(
            token,
            &ClientId::new("alice-laptop").unwrap(),
            ClientMode::Desktop,
        )
        .unwrap();
    assert!(claims.exp - claims.iat <= 90);

    let bad = relay()
        .args(["token", "--id", "../etc", "--mode", "web", "--secret-file"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(bad.stdout.is_empty());
}

#[test]
fn token_mode_web_desktops_mints_a_fleet_token_viewer_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.keys");
    assert!(relay().arg("keygen").arg(&path).status().unwrap().success());
    let verifier = token::Verifier::new(KeySet::load(&path).unwrap(), token::DEFAULT_CLOCK_SKEW);
    let mint = |extra: &[&str]| {
        relay()
            .args(["token", "--mode", "web", "--secret-file"])
            .arg(&path)
            .args(extra)
            .output()
            .unwrap()
    };
    for (extra, role) in [
        (&["--desktops", "office-*,kiosk"][..], Role::Viewer),
        (
            &["--desktops", "office-*,kiosk", "--role", "operator"][..],
            Role::Operator,
        ),
    ] {
        let out = mint(extra);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token = String::from_utf8(out.stdout).unwrap();
        let claims = verifier.verify_signed(token.trim_end()).unwrap();
        assert_eq!(claims.kind, Some(token::TokenKind::Fleet));
        assert_eq!(claims.desktops.as_deref(), Some("office-*,kiosk"));
        assert_eq!(claims.role, Some(role));
        assert_eq!(
            claims.exp - claims.iat,
            12 * 3600,
            "web tokens' default ttl"
        );
    }
    for bad in [
        &["--desktops", "a/b"][..],
        &["--id", "a", "--desktops", "b"][..],
        &["--id", "a", "--role", "operator"][..],
        &["--desktops", "a", "--role", "admin"][..],
    ] {
        let out = mint(bad);
        assert!(!out.status.success(), "{bad:?}");
        assert!(out.stdout.is_empty());
        assert!(!out.stderr.is_empty());
    }
    let desktop = relay()
        .args([
            "token",
            "--mode",
            "desktop",
            "--desktops",
            "a-*",
            "--secret-file",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!desktop.status.success());
    assert!(String::from_utf8_lossy(&desktop.stderr).contains("--mode web"));
    let help = relay().args(["token", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("Default: viewer"));
}

#[test]
fn serve_refuses_to_start_without_a_key_and_says_how_to_make_one() {
    let out = relay()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("deskbridge-relay keygen"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short.keys");
    std::fs::write(&short, "k AAAA\n").unwrap();
    let out = relay()
        .args(["serve", "--listen", "127.0.0.1:0", "--secret-file"])
        .arg(&short)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("32"),
        "names the minimum key size"
    );
}

#[actix_web::test]
async fn sigterm_closes_sessions_with_1001_and_exits_cleanly() {
    let mut relay = RelayProcess::start(RELAY, &[]);
    let addr = relay.addr();
    let mut web = Client::join(addr, "bye", "web").await;
    web.expect_presence("offline", 1).await;
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(relay.pid() as i32, libc::SIGTERM) };
    web.expect_error(ErrorCode::ShuttingDown).await;
    assert_eq!(web.expect_close().await, Some(CloseCode::Away));
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = relay.try_wait() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "relay did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
}
