//! The fleet's HTTP API against a real relay with a users file and real desktops: what
//! `/api/desktops` shows each credential, adding a desktop (its minted token really connects),
//! and share links (made, listed, used, revoked — the revoked link's socket closing within 2 s).

use std::time::Duration;

use awc::http::Method;
use deskbridge_auth::{token, Patterns, Role};
use deskbridge_protocol::{ClientMode, ErrorCode};
use deskbridge_testkit::signin::{
    get, post, request, signin, signin_config, users_file, Answer, Auth, Person,
};
use deskbridge_testkit::tokens::{keys, mint};
use deskbridge_testkit::{start_relay, Client, RelayHandle, WAIT};
use serde_json::{json, Value};
use tokio::time::Instant;

const PEOPLE: [Person<'static>; 2] = [
    ("olive", Role::Operator, "office-*", "olive-pw"),
    ("vic", Role::Viewer, "office-*", "vic-pw"),
];

fn ids(answer: &Answer) -> Vec<String> {
    answer.body["desktops"]
        .as_array()
        .unwrap_or_else(|| panic!("a desktop list: {answer:?}"))
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The entry for `id` in `/api/desktops`, once `ready` accepts it.
async fn wait_desktop(
    relay: &RelayHandle,
    auth: Auth<'_>,
    id: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = get(relay.addr(), "/api/desktops", auth).await;
        let entry = answer.body["desktops"]
            .as_array()
            .and_then(|all| all.iter().find(|d| d["id"] == id).cloned());
        if let Some(entry) = entry.filter(|e| ready(e)) {
            return entry;
        }
        assert!(
            Instant::now() < deadline,
            "{id} not as expected: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A web connection for `id` with `token`, past `welcome` (returned).
async fn web(relay: &RelayHandle, id: &str, token: &str) -> (Client, Value) {
    let mut client = Client::connect(relay.addr()).await;
    client.authenticate(id, "web", Some(token)).await;
    let welcome = client.next_event().await;
    assert_eq!(welcome["event"], "welcome", "{welcome}");
    (client, welcome)
}

#[actix_web::test]
async fn each_credential_sees_its_desktops_and_only_operators_add_them() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys("k1", 4);
    let users = users_file(dir.path(), &PEOPLE);
    let relay = start_relay(signin_config(&keys, &users));
    let addr = relay.addr();
    let _office = Client::join_with_token(
        addr,
        "office-1",
        "desktop",
        Some(&mint(&keys, "office-1", ClientMode::Desktop)),
    )
    .await;
    let _home = Client::join_with_token(
        addr,
        "home-1",
        "desktop",
        Some(&mint(&keys, "home-1", ClientMode::Desktop)),
    )
    .await;
    let olive = signin(addr, "olive", "olive-pw").await;
    let vic = signin(addr, "vic", "vic-pw").await;
    let entry = wait_desktop(&relay, Auth::Cookie(&olive), "office-1", |d| {
        d["online"] == true
    })
    .await;
    assert_eq!(entry["waiting"], false);

    let home_token = mint(&keys, "home-1", ClientMode::Web);
    let fleet_token = token::mint_fleet(
        &keys,
        &Patterns::parse("*").unwrap(),
        Role::Viewer,
        Duration::from_secs(600),
    );
    for (who, auth, expected) in [
        ("operator", Auth::Cookie(&olive), vec!["office-1"]),
        ("viewer", Auth::Cookie(&vic), vec!["office-1"]),
        (
            "token for another desktop",
            Auth::Bearer(&home_token),
            vec!["home-1"],
        ),
        (
            "fleet token for all",
            Auth::Bearer(&fleet_token),
            vec!["home-1", "office-1"],
        ),
    ] {
        let answer = get(addr, "/api/desktops", auth).await;
        assert_eq!(answer.status, 200, "{who}: {answer:?}");
        assert_eq!(ids(&answer), expected, "{who}");
    }
    let nobody = get(addr, "/api/desktops", Auth::None).await;
    assert_eq!((nobody.status, nobody.code()), (401, "unauthorized"));

    // Adding: viewers and ids outside the patterns are refused, bad ids are 400.
    let add = |auth, id: &str| {
        let body = json!({ "id": id });
        async move { post(addr, "/api/desktops", auth, &body).await }
    };
    assert_eq!(add(Auth::Cookie(&vic), "office-2").await.status, 403);
    assert_eq!(add(Auth::Cookie(&olive), "home-2").await.status, 403);
    assert_eq!(
        add(Auth::Bearer(&fleet_token), "office-2").await.status,
        403
    );
    let bad = add(Auth::Cookie(&olive), "office/2").await;
    assert_eq!((bad.status, bad.code()), (400, "bad_request"));
    let cross = request(
        addr,
        Method::POST,
        "/api/desktops",
        Auth::Cookie(&olive),
        Some(&json!({"id": "office-2"})),
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(cross.status, 403, "a cross-site write with the cookie");

    let added = add(Auth::Cookie(&olive), "office-2").await;
    assert_eq!(added.status, 201, "{added:?}");
    let desktop_token = added.body["token"].as_str().unwrap();
    let relay_url = format!("ws://{addr}/ws");
    assert_eq!(added.body["id"], "office-2");
    assert_eq!(added.body["relay"], relay_url.as_str());
    assert_eq!(
        added.body["command"],
        format!(
            "deskbridge-agent install --relay {relay_url} --id office-2 --token {desktop_token}"
        )
    );
    // Waiting on every grid that may see it, then online once its desktop connects.
    let waiting = wait_desktop(&relay, Auth::Cookie(&vic), "office-2", |d| {
        d["waiting"] == true
    })
    .await;
    assert_eq!(waiting["online"], false);
    let _new = Client::join_with_token(addr, "office-2", "desktop", Some(desktop_token)).await;
    wait_desktop(&relay, Auth::Cookie(&vic), "office-2", |d| {
        d["online"] == true
    })
    .await;
}

#[actix_web::test]
async fn the_public_url_names_the_relay_in_what_the_api_hands_out() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys("k1", 4);
    let users = users_file(dir.path(), &PEOPLE[..1]);
    let relay = start_relay(deskbridge_relay::Config {
        public_url: Some("https://relay.example.com".into()),
        ..signin_config(&keys, &users)
    });
    let olive = signin(relay.addr(), "olive", "olive-pw").await;
    let added = post(
        relay.addr(),
        "/api/desktops",
        Auth::Cookie(&olive),
        &json!({"id": "office-9"}),
    )
    .await;
    assert_eq!(added.body["relay"], "wss://relay.example.com/ws");
    let shared = post(
        relay.addr(),
        "/api/shares",
        Auth::Cookie(&olive),
        &json!({"desktop": "office-9", "ttl": "15m"}),
    )
    .await;
    let url = shared.body["url"].as_str().unwrap();
    assert!(
        url.starts_with("https://relay.example.com/#id=office-9&share=ey"),
        "{url}"
    );
}

#[actix_web::test]
async fn operators_share_a_desktop_and_a_revoked_link_closes_within_2_s() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys("k1", 4);
    let users = users_file(dir.path(), &PEOPLE);
    let relay = start_relay(signin_config(&keys, &users));
    let addr = relay.addr();
    let _office = Client::join_with_token(
        addr,
        "office-1",
        "desktop",
        Some(&mint(&keys, "office-1", ClientMode::Desktop)),
    )
    .await;
    let olive = signin(addr, "olive", "olive-pw").await;
    let vic = signin(addr, "vic", "vic-pw").await;
    let share = |auth, body: Value| async move { post(addr, "/api/shares", auth, &body).await };

    let refused = share(
        Auth::Cookie(&vic),
        json!({"desktop": "office-1", "ttl": "1h"}),
    )
    .await;
    assert_eq!((refused.status, refused.code()), (403, "forbidden"));
    for ttl in [json!("10m"), json!(8 * 86_400), json!("soon"), json!(-5)] {
        let answer = share(
            Auth::Cookie(&olive),
            json!({"desktop": "office-1", "ttl": ttl}),
        )
        .await;
        assert_eq!(
            (answer.status, answer.code()),
            (400, "bad_request"),
            "{ttl}"
        );
    }

    let made = share(
        Auth::Cookie(&olive),
        json!({"desktop": "office-1", "ttl": "1h"}),
    )
    .await;
    assert_eq!(made.status, 201, "{made:?}");
    let link = &made.body;
    let link_token = link["token"].as_str().unwrap();
    let id = link["id"].as_str().unwrap();
    assert_eq!(link["desktop"], "office-1");
    assert_eq!(link["by"], "olive");
    assert_eq!(
        link["url"],
        format!("http://{addr}/#id=office-1&share={link_token}")
    );
    let lifetime = link["expires"].as_u64().unwrap() - link["created"].as_u64().unwrap();
    assert_eq!(lifetime, 3_600_000);
    let seconds = share(
        Auth::Cookie(&olive),
        json!({"desktop": "office-1", "ttl": 900}),
    )
    .await;
    assert_eq!(seconds.status, 201);

    let listed = get(addr, "/api/shares?desktop=office-1", Auth::Cookie(&olive)).await;
    let shares = listed.body["shares"].as_array().unwrap();
    assert_eq!(shares.len(), 2, "{listed:?}");
    assert!(shares.iter().any(|s| s["id"] == id), "{listed:?}");
    assert!(shares.iter().all(|s| s.get("token").is_none()), "no tokens");
    assert_eq!(
        get(addr, "/api/shares?desktop=office-1", Auth::Cookie(&vic))
            .await
            .status,
        403
    );

    // The link opens the desktop as a viewer, and nothing else.
    let (mut watcher, welcome) = web(&relay, "office-1", link_token).await;
    assert_eq!(welcome["role"], "viewer");
    assert_eq!(welcome["by"], "share link");
    watcher.send(r#"{"event":"beep"}"#).await;
    watcher.expect_error(ErrorCode::NotAllowed).await;
    let through_link = get(addr, "/api/desktops", Auth::Bearer(link_token)).await;
    assert_eq!(ids(&through_link), ["office-1"]);
    let by_link = share(
        Auth::Bearer(link_token),
        json!({"desktop": "office-1", "ttl": "1h"}),
    )
    .await;
    assert_eq!(by_link.status, 403, "a link cannot make links");

    // Revoking: viewers may not; the operator may, and the link's socket closes.
    let delete = |auth| {
        let path = format!("/api/shares/{id}");
        async move { request(addr, Method::DELETE, &path, auth, None, &[]).await }
    };
    assert_eq!(delete(Auth::Cookie(&vic)).await.status, 403);
    assert_eq!(delete(Auth::Cookie(&olive)).await.status, 204);
    let code = watcher.expect_close_within(Duration::from_secs(2)).await;
    assert_eq!(code, Some(awc::ws::CloseCode::Policy));
    let again = delete(Auth::Cookie(&olive)).await;
    assert_eq!((again.status, again.code()), (404, "no_such_share"));
    let listed = get(addr, "/api/shares", Auth::Cookie(&olive)).await;
    assert_eq!(listed.body["shares"].as_array().unwrap().len(), 1);
    let mut late = Client::connect(addr).await;
    late.authenticate("office-1", "web", Some(link_token)).await;
    late.expect_error(ErrorCode::Unauthorized).await;
}
