//! The audit log records what people did besides commands: sign-ins (ok, bad credentials,
//! limited), share links made and revoked, desktops added — with who and from where, never a
//! password or a token.

use std::time::Duration;

use deskbridge_auth::Role;
use deskbridge_testkit::signin::{login, post, signin, signin_config, users_file, Auth};
use deskbridge_testkit::start_relay;
use deskbridge_testkit::store::{api_until, test_store};
use deskbridge_testkit::tokens::keys;
use deskbridge_testkit::Config;
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery";

#[actix_web::test]
async fn sign_ins_share_links_and_added_desktops_are_audited_without_secrets() {
    let keys = keys("k1", 1);
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(dir.path(), &[("alice", Role::Operator, "lab-*", PASSWORD)]);
    let relay = start_relay(Config {
        store: Some(test_store(&dir.path().join("store"))),
        ..signin_config(&keys, &users)
    });
    let addr = relay.addr();

    assert_eq!(login(addr, "alice", "not her password").await.status, 401);
    let cookie = signin(addr, "alice", PASSWORD).await;
    let added = post(
        addr,
        "/api/desktops",
        Auth::Cookie(&cookie),
        &json!({"id": "lab-9"}),
    )
    .await;
    assert_eq!(added.status, 201, "{:?}", added.body);
    let desktop_token = added.body["token"].as_str().unwrap().to_owned();
    let share = post(
        addr,
        "/api/shares",
        Auth::Cookie(&cookie),
        &json!({"desktop": "lab-9", "ttl": "1h"}),
    )
    .await;
    assert_eq!(share.status, 201, "{:?}", share.body);
    let (share_id, share_token) = (
        share.body["id"].as_str().unwrap().to_owned(),
        share.body["token"].as_str().unwrap().to_owned(),
    );
    let revoked = deskbridge_testkit::signin::request(
        addr,
        awc::http::Method::DELETE,
        &format!("/api/shares/{share_id}"),
        Auth::Cookie(&cookie),
        None,
        &[],
    )
    .await;
    assert_eq!(revoked.status, 204);

    // The desktop's log, as its operator reads it.
    let session = cookie.clone();
    let log = api_until(
        addr,
        "/api/audit?desktop=lab-9",
        Some(&session),
        Duration::from_secs(5),
        |body| body["records"].as_array().is_some_and(|r| r.len() >= 3),
    )
    .await;
    let kinds: Vec<&str> = log["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["desktop_added", "share_created", "share_revoked"],
        "{log}"
    );
    for record in log["records"].as_array().unwrap() {
        assert_eq!(record["by"], "alice", "{record}");
    }
    assert_eq!(log["records"][1]["detail"]["share"], share_id.as_str());

    // Sign-ins name no desktop: they are in the store's audit table itself.
    relay.stop();
    let db = rusqlite::Connection::open(dir.path().join("store/deskbridge.sqlite3")).unwrap();
    let mut rows = db
        .prepare("SELECT actor, detail FROM audit WHERE kind = 'sign_in' ORDER BY seq")
        .unwrap();
    let sign_ins: Vec<(String, Value)> = rows
        .query_map([], |r| {
            let detail: String = r.get(1)?;
            Ok((r.get(0)?, serde_json::from_str(&detail).unwrap()))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(sign_ins.len(), 2, "{sign_ins:?}");
    assert_eq!(sign_ins[0].1["outcome"], "bad_credentials");
    assert_eq!(
        (sign_ins[1].0.as_str(), &sign_ins[1].1["outcome"]),
        ("alice", &json!("ok"))
    );

    // Never a password or a token, anywhere in the log.
    let everything: Vec<String> = db
        .prepare("SELECT actor || ' ' || IFNULL(desktop, '') || ' ' || detail FROM audit")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let text = everything.join("\n");
    for secret in [
        PASSWORD,
        "not her password",
        &desktop_token,
        &share_token,
        &session,
    ] {
        assert!(!text.contains(secret), "a secret in the audit log:\n{text}");
    }
}
