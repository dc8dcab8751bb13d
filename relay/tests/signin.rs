//! Signing in, staying signed in and signing out against a real relay with a users file: the
//! cookie and its attributes, bad credentials that all look alike, the attempt limits and their
//! metric, renewal, and sessions that end (sign-out, a removed user) closing their open sockets.

use std::time::Duration;

use awc::http::Method;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use deskbridge_auth::{KeySet, Role};
use deskbridge_testkit::cluster::metric;
use deskbridge_testkit::signin::{
    get, login, post, request, signin, signin_config, users_file, write_users, Auth, Person,
};
use deskbridge_testkit::tokens::{keys, secured, sign};
use deskbridge_testkit::{start_relay, test_config, Client, RelayHandle};
use serde_json::{json, Value};

const PEOPLE: [Person<'static>; 2] = [
    ("olive", Role::Operator, "office-*", "olive-pw"),
    ("vic", Role::Viewer, "office-*,kiosk", "vic-pw"),
];

fn relay(dir: &std::path::Path) -> (RelayHandle, KeySet) {
    let keys = keys("k1", 9);
    let users = users_file(dir, &PEOPLE);
    (start_relay(signin_config(&keys, &users)), keys)
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// The claims inside a token (its signature is the relay's business).
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// A fleet connection carrying the session cookie, past `welcome`.
async fn fleet_with_cookie(relay: &RelayHandle, cookie: &str) -> Client {
    let header = format!("deskbridge_session={cookie}");
    let mut client = Client::connect_with_headers(relay.addr(), &[("cookie", &header)]).await;
    client
        .send(r#"{"event":"authentication","client_mode":"fleet"}"#)
        .await;
    let welcome = client.next_named("welcome").await;
    assert_eq!(welcome["client_mode"], "fleet", "{welcome}");
    client
}

#[actix_web::test]
async fn signing_in_sets_a_strict_cookie_and_bad_credentials_all_look_alike() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys("k1", 9);
    let users = users_file(dir.path(), &PEOPLE);
    let relay = start_relay(deskbridge_relay::Config {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..signin_config(&keys, &users)
    });
    let addr = relay.addr();

    let ok = login(addr, "olive", "olive-pw").await;
    assert_eq!(ok.status, 204, "{ok:?}");
    let line = ok.set_cookie().unwrap();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=900"] {
        assert!(line.contains(part), "{part} missing in {line}");
    }
    assert!(!line.contains("Secure"), "plain http, no proxy: {line}");
    let cookie = ok.cookie().unwrap();
    let claims = claims_of(&cookie);
    assert_eq!(claims["kind"], "session");
    assert_eq!(claims["sub"], "olive");

    let session = get(addr, "/api/session", Auth::Cookie(&cookie)).await;
    assert_eq!(session.status, 200, "{session:?}");
    assert_eq!(session.body["user"], "olive");
    assert_eq!(session.body["role"], "operator");
    assert_eq!(session.body["desktops"], "office-*");
    assert_eq!(
        session.body["expires"].as_u64(),
        claims["exp"].as_u64().map(|s| s * 1000)
    );
    assert!(session.set_cookie().is_none(), "too young to renew");

    let wrong = login(addr, "olive", "nope").await;
    let unknown = login(addr, "nobody", "olive-pw").await;
    assert_eq!((wrong.status, unknown.status), (401, 401));
    assert_eq!(wrong.code(), "bad_credentials");
    assert_eq!(wrong.body, unknown.body, "no telling which names exist");
    assert!(wrong.set_cookie().is_none());

    // Behind a trusted proxy that says https, the cookie is Secure.
    let proxied = request(
        addr,
        Method::POST,
        "/api/login",
        Auth::None,
        Some(&json!({"user": "vic", "password": "vic-pw"})),
        &[("x-forwarded-proto", "https")],
    )
    .await;
    assert_eq!(proxied.status, 204);
    assert!(proxied.set_cookie().unwrap().contains("Secure"));

    // Bad bodies are 400 with a message, never a crash.
    for body in [
        json!({"user": "olive"}),
        json!({"user": "olive", "password": "x", "remember": true}),
        json!(["olive", "olive-pw"]),
        json!({"user": "olive", "password": "x".repeat(5000)}),
    ] {
        let answer = post(addr, "/api/login", Auth::None, &body).await;
        assert_eq!(answer.status, 400, "{body}: {answer:?}");
        assert_eq!(answer.code(), "bad_request");
        assert!(answer.body["message"].as_str().unwrap().contains("user"));
    }

    // Another site's page cannot sign anyone in.
    let cross = request(
        addr,
        Method::POST,
        "/api/login",
        Auth::None,
        Some(&json!({"user": "olive", "password": "olive-pw"})),
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(cross.status, 403, "{cross:?}");
    assert!(cross.set_cookie().is_none());

    assert_eq!(
        metric(addr, r#"deskbridge_signins_total{outcome="ok"}"#).await,
        2.0
    );
    assert_eq!(
        metric(
            addr,
            r#"deskbridge_signins_total{outcome="bad_credentials"}"#
        )
        .await,
        2.0
    );
    let anonymous = get(addr, "/api/session", Auth::None).await;
    assert_eq!(anonymous.status, 401);
}

#[actix_web::test]
async fn without_a_users_file_sign_in_is_off() {
    let relay = start_relay(secured(test_config(), &keys("k1", 9)));
    let addr = relay.addr();
    let body = json!({"user": "a", "password": "b"});
    for answer in [
        post(addr, "/api/login", Auth::None, &body).await,
        get(addr, "/api/session", Auth::Cookie("x")).await,
        post(addr, "/api/logout", Auth::Cookie("x"), &json!({})).await,
    ] {
        assert_eq!(answer.status, 404, "{answer:?}");
        assert_eq!(answer.code(), "sign_in_off");
    }
}

#[actix_web::test]
async fn attempts_are_limited_per_user_and_per_address_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (relay, _) = relay(dir.path());
    let addr = relay.addr();
    for _ in 0..5 {
        assert_eq!(login(addr, "olive", "guess").await.status, 401);
    }
    // Now even the right password waits: the limit answers before any password is checked.
    let limited = login(addr, "olive", "olive-pw").await;
    assert_eq!(limited.status, 429, "{limited:?}");
    assert_eq!(limited.code(), "too_many_attempts");
    assert!(limited.body["message"]
        .as_str()
        .unwrap()
        .contains("for this user"));
    let retry: u64 = limited
        .headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&retry), "{retry}");
    // Another person is not held up by olive's failures.
    assert_eq!(login(addr, "vic", "vic-pw").await.status, 204);

    // The address: 20 attempts at once, whoever they are for (6 made so far).
    let mut refused = None;
    for i in 0..30 {
        let answer = login(addr, &format!("guess{i}"), "pw").await;
        if answer.status == 429 {
            refused = Some((i, answer));
            break;
        }
        assert_eq!(answer.status, 401);
    }
    let (at, answer) = refused.expect("the address limit refuses within 30 attempts");
    assert!(at >= 13, "refused after {at} more attempts");
    assert!(answer.body["message"]
        .as_str()
        .unwrap()
        .contains("from this address"));
    assert!(answer.headers.contains_key("retry-after"));
    assert_eq!(
        metric(addr, r#"deskbridge_signins_total{outcome="limited"}"#).await,
        2.0
    );
}

#[actix_web::test]
async fn the_session_renews_past_half_its_life_with_the_same_id_up_to_30_days() {
    let dir = tempfile::tempdir().unwrap();
    let (relay, keys) = relay(dir.path());
    let addr = relay.addr();
    let key = keys.signing().clone();
    let session = |iat: u64, exp: u64, auth_time: u64| {
        sign(
            &key,
            &json!({"sub": "vic", "mode": "web", "kind": "session", "iat": iat, "exp": exp,
                    "auth_time": auth_time, "jti": "renew-me"}),
        )
    };
    let t = now();

    // Two thirds through its life: a fresh cookie, same jti and sign-in time, 15 minutes on.
    let old = session(t - 600, t + 300, t - 600);
    let answer = get(addr, "/api/session", Auth::Cookie(&old)).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let renewed = answer.cookie().expect("a renewed cookie");
    let claims = claims_of(&renewed);
    assert_eq!(claims["jti"], "renew-me");
    assert_eq!(claims["auth_time"], t - 600);
    let exp = claims["exp"].as_u64().unwrap();
    assert!(exp >= t + 900 && exp <= now() + 900, "{claims}");
    assert_eq!(answer.body["expires"].as_u64(), Some(exp * 1000));
    assert!(answer.set_cookie().unwrap().contains("HttpOnly"));
    assert_eq!(
        get(addr, "/api/session", Auth::Cookie(&renewed))
            .await
            .status,
        200
    );

    // Near the 30-day limit: renewed only up to it; past it, not at all.
    let month = 30 * 86_400;
    let near = session(t - 600, t + 300, t - month + 400);
    let capped = get(addr, "/api/session", Auth::Cookie(&near)).await;
    let capped = claims_of(&capped.cookie().expect("renewed up to the limit"));
    assert_eq!(capped["exp"].as_u64(), Some(t - month + 400 + month));
    let past = session(t - 600, t + 300, t - month - 10);
    let answer = get(addr, "/api/session", Auth::Cookie(&past)).await;
    assert_eq!(answer.status, 200);
    assert!(answer.cookie().is_none(), "no renewal past 30 days");
    assert_eq!(answer.body["expires"].as_u64(), Some((t + 300) * 1000));

    // A cookie that opens nothing is cleared.
    let forged = get(addr, "/api/session", Auth::Cookie("not.a.token")).await;
    assert_eq!(forged.status, 401);
    assert!(forged.set_cookie().unwrap().contains("Max-Age=0"));
}

#[actix_web::test]
async fn signing_out_closes_the_open_fleet_socket_within_2_s() {
    let dir = tempfile::tempdir().unwrap();
    let (relay, _) = relay(dir.path());
    let addr = relay.addr();
    let cookie = signin(addr, "olive", "olive-pw").await;
    let mut fleet = fleet_with_cookie(&relay, &cookie).await;

    // Another site cannot sign the person out.
    let cross = request(
        addr,
        Method::POST,
        "/api/logout",
        Auth::Cookie(&cookie),
        None,
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(cross.status, 403);
    assert_eq!(
        get(addr, "/api/session", Auth::Cookie(&cookie))
            .await
            .status,
        200
    );

    let out = post(addr, "/api/logout", Auth::Cookie(&cookie), &json!({})).await;
    assert_eq!(out.status, 204, "{out:?}");
    assert!(out.set_cookie().unwrap().contains("Max-Age=0"));
    let code = fleet.expect_close_within(Duration::from_secs(2)).await;
    assert_eq!(code, Some(awc::ws::CloseCode::Policy));
    for path in ["/api/session", "/api/desktops"] {
        let answer = get(addr, path, Auth::Cookie(&cookie)).await;
        assert_eq!(answer.status, 401, "{path}: {answer:?}");
    }
    // Signing out twice, or without a session, is fine.
    assert_eq!(
        post(addr, "/api/logout", Auth::None, &json!({}))
            .await
            .status,
        204
    );
}

#[actix_web::test]
async fn a_person_removed_from_the_users_file_loses_an_open_socket_within_2_s() {
    let dir = tempfile::tempdir().unwrap();
    let (relay, _) = relay(dir.path());
    let addr = relay.addr();
    let cookie = signin(addr, "vic", "vic-pw").await;
    let mut fleet = fleet_with_cookie(&relay, &cookie).await;
    write_users(&dir.path().join("users.toml"), &PEOPLE[..1]);
    // The relay polls the file every second, then closes the person's sessions.
    fleet.expect_close_within(Duration::from_secs(2)).await;
    assert_eq!(
        get(addr, "/api/session", Auth::Cookie(&cookie))
            .await
            .status,
        401
    );
}
