//! Sign-in for tests: a users file, a relay configuration with sign-in on, and HTTP calls to the
//! API with a session cookie, a Bearer token or nothing, so every test file signs in the same way.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use awc::http::header::HeaderMap;
use awc::http::Method;
use deskbridge_auth::{KeySet, Patterns, Role, Users};
use deskbridge_relay::Config;
use serde_json::Value;

use crate::relay::test_config;
use crate::tokens::secured;

/// One person for [`users_file`]: name, role, desktop patterns, password.
pub type Person<'a> = (&'a str, Role, &'a str, &'a str);

/// Writes a users file listing `people` into `dir` and returns its path.
pub fn users_file(dir: &Path, people: &[Person<'_>]) -> PathBuf {
    let path = dir.join("users.toml");
    write_users(&path, people);
    path
}

/// Replaces the users file at `path` with `people` (atomically, as `deskbridge-relay user` does).
pub fn write_users(path: &Path, people: &[Person<'_>]) {
    let mut users = Users::default();
    for (name, role, desktops, password) in people {
        let patterns = Patterns::parse(desktops).expect("valid patterns");
        users
            .add(name, *role, patterns, password)
            .expect("a valid person");
    }
    users.save(path).expect("users file written");
}

/// The test relay settings with tokens required (`keys`) and sign-in on (`users`).
pub fn signin_config(keys: &KeySet, users: &Path) -> Config {
    Config {
        users_file: Some(users.to_owned()),
        ..secured(test_config(), keys)
    }
}

/// How a request proves itself.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    None,
    /// The session cookie's value.
    Cookie(&'a str),
    /// A web token, as `Authorization: Bearer`.
    Bearer(&'a str),
}

/// An API answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The body as JSON, or `Value::Null` when empty or not JSON.
    pub body: Value,
    pub headers: HeaderMap,
}

impl Answer {
    /// The `Set-Cookie` header of the session cookie, whole (value and attributes).
    pub fn set_cookie(&self) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("deskbridge_session="))
            .map(str::to_owned)
    }

    /// The session cookie's new value, if the answer sets one.
    pub fn cookie(&self) -> Option<String> {
        let line = self.set_cookie()?;
        let value = line
            .strip_prefix("deskbridge_session=")?
            .split(';')
            .next()?;
        Some(value.to_owned())
    }

    /// The error code of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
}

/// One API request: `method` `path`, proven by `auth`, with a JSON `body` and extra headers.
pub async fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    auth: Auth<'_>,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = awc::Client::new().request(method, format!("http://{addr}{path}"));
    match auth {
        Auth::None => {}
        Auth::Cookie(cookie) => {
            request = request.insert_header(("cookie", format!("deskbridge_session={cookie}")))
        }
        Auth::Bearer(token) => {
            request = request.insert_header(("authorization", format!("Bearer {token}")))
        }
    }
    for (name, value) in headers {
        request = request.insert_header((*name, *value));
    }
    let mut response = match body {
        Some(body) => request.send_json(body).await,
        None => request.send().await,
    }
    .expect("http request");
    let bytes = response.body().await.expect("body");
    Answer {
        status: response.status().as_u16(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        headers: response.headers().clone(),
    }
}

/// `GET path`.
pub async fn get(addr: SocketAddr, path: &str, auth: Auth<'_>) -> Answer {
    request(addr, Method::GET, path, auth, None, &[]).await
}

/// `POST path` with a JSON body.
pub async fn post(addr: SocketAddr, path: &str, auth: Auth<'_>, body: &Value) -> Answer {
    request(addr, Method::POST, path, auth, Some(body), &[]).await
}

/// `POST /api/login`.
pub async fn login(addr: SocketAddr, user: &str, password: &str) -> Answer {
    post(
        addr,
        "/api/login",
        Auth::None,
        &serde_json::json!({"user": user, "password": password}),
    )
    .await
}

/// Signs in and returns the session cookie's value; panics unless the relay says 204.
pub async fn signin(addr: SocketAddr, user: &str, password: &str) -> String {
    let answer = login(addr, user, password).await;
    assert_eq!(answer.status, 204, "sign-in as {user}: {answer:?}");
    answer.cookie().expect("a session cookie")
}
