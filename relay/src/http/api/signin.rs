//! Signing in and out: `POST /api/login`, `GET /api/session` (who is signed in, renewing the
//! cookie), `POST /api/logout`. Only with a users file (`--users-file`); without one every one of
//! them answers 404 `sign_in_off`.
//!
//! The password is checked on actix's blocking pool (argon2 is slow on purpose) and never logged;
//! a wrong password and an unknown name take the same path and the same time and get the same
//! answer. Attempts are limited before any password is checked (`limits::signin`).

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use deskbridge_auth::access::short_jti;
use deskbridge_auth::token;
use serde::{Deserialize, Serialize};

use super::body::read_json;
use super::cookie;
use super::error::ApiError;
use super::public_url::https;
use crate::auth::SESSION_COOKIE;
use crate::limits::client_ip::client_ip;
use crate::limits::origin::origin_allowed;
use crate::limits::signin::SignInRefused;
use crate::metrics::{Limit, SignInOutcome};
use crate::state::RelayState;
use crate::store::record::AuditRecord;

/// How long a session cookie is good for without renewal. Short, so a stolen cookie is worth
/// little; the open page renews it (`GET /api/session`) long before it runs out.
pub const SESSION_TTL: Duration = Duration::from_secs(15 * 60);

pub use deskbridge_auth::token::SESSION_MAX_AGE;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    user: String,
    password: String,
}

const LOGIN_SHAPE: &str = r#"{"user":"…","password":"…"}"#;

#[derive(Serialize)]
struct SessionInfo {
    user: String,
    role: deskbridge_auth::Role,
    desktops: String,
    /// Unix milliseconds.
    expires: u64,
}

fn sign_in_off() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "sign_in_off",
        "sign-in is off on this relay: start it with --users-file (see docs/deployment.md)",
    )
}

/// State-changing sign-in requests must come from the relay's own pages (or an allowed origin),
/// cookie or not: another site must not sign a visitor in or out.
fn check_origin(req: &HttpRequest, state: &RelayState) -> Result<(), ApiError> {
    if origin_allowed(req.headers(), &state.config.allowed_origins, false) {
        return Ok(());
    }
    state.metrics.limited(Limit::Origin).inc();
    log::info!(
        "refused {} from {:?}: origin {:?} is not allowed",
        req.path(),
        req.peer_addr(),
        req.headers().get("origin")
    );
    Err(ApiError::forbidden(
        "this request comes from another site's page (its Origin is not allowed)",
    ))
}

/// A user name as it may appear in a log line: quoted, bounded.
fn shown(user: &str) -> String {
    format!("{:?}", user.chars().take(64).collect::<String>())
}

/// `POST /api/login`.
pub async fn login(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<RelayState>,
) -> Result<HttpResponse, ApiError> {
    let Some(users) = state
        .auth
        .users
        .current()
        .filter(|_| state.auth.users.enabled())
    else {
        return Err(sign_in_off());
    };
    check_origin(&req, &state)?;
    let Login { user, password } = read_json(payload, LOGIN_SHAPE).await?;
    let config = &state.config;
    let ip = client_ip(
        req.peer_addr().map(|a| a.ip()),
        req.headers(),
        &config.trusted_proxies,
    );
    if let Err(refused) = state.signin.check(ip, &user) {
        state.metrics.signins(SignInOutcome::Limited).inc();
        let which = match refused {
            SignInRefused::Address(_) => "from this address",
            SignInRefused::User(_) => "for this user",
        };
        let wait = refused.retry_after().as_secs().max(1);
        log::warn!(
            "sign-in as {} from {ip:?} refused: too many attempts {which}; retry in {wait} s",
            shown(&user)
        );
        state
            .store
            .audit(AuditRecord::sign_in(&user, ip, "limited"));
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!("too many sign-in attempts {which}; try again in {wait} s"),
        )
        .with_retry_after(wait));
    }
    let name = user.clone();
    let verified = web::block(move || users.verify(&name, &password).map(|u| u.name.clone()))
        .await
        .map_err(|_| ApiError::unavailable("the relay is shutting down"))?;
    let Some(name) = verified else {
        state.signin.failed(&user);
        state.metrics.signins(SignInOutcome::BadCredentials).inc();
        log::info!("sign-in as {} from {ip:?}: bad credentials", shown(&user));
        state
            .store
            .audit(AuditRecord::sign_in(&user, ip, "bad_credentials"));
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "wrong user name or password",
        ));
    };
    let keys = state
        .auth
        .verifier()
        .ok_or_else(|| ApiError::unavailable("the relay has no key to sign sessions with"))?
        .keys();
    let (token, claims) = token::mint_session(keys, &name, SESSION_TTL);
    state.signin.succeeded(&name);
    state.metrics.signins(SignInOutcome::Ok).inc();
    log::info!(
        "audit: {name:?} signed in from {ip:?} (session {})",
        short_jti(&claims.jti)
    );
    state.store.audit(AuditRecord::sign_in(&name, ip, "ok"));
    Ok(HttpResponse::NoContent()
        .insert_header(("cache-control", "no-store"))
        .cookie(cookie::session(&token, SESSION_TTL, https(&req, config)))
        .finish())
}

/// `GET /api/session`: who is signed in; renews the cookie past half its life.
pub async fn session(
    req: HttpRequest,
    state: web::Data<RelayState>,
) -> Result<HttpResponse, ApiError> {
    if !state.auth.users.enabled() {
        return Err(sign_in_off());
    }
    let secure = https(&req, &state.config);
    let not_signed_in = |message: String| {
        let mut error = ApiError::unauthorized(message);
        error.clear_cookie = Some(secure);
        error
    };
    let Some(presented) = req.cookie(SESSION_COOKIE) else {
        return Err(ApiError::unauthorized(
            "not signed in: sign in with POST /api/login",
        ));
    };
    let (access, claims) = state
        .auth
        .session_of(presented.value())
        .map_err(|why| not_signed_in(format!("the session ended ({why}); sign in again")))?;
    let now = jsonwebtoken_now();
    let mut response = HttpResponse::Ok();
    response.insert_header(("cache-control", "no-store"));
    let mut expires = claims.exp;
    let half_life = claims.exp.saturating_sub(claims.iat) / 2;
    if now >= claims.iat + half_life {
        let renewed = state
            .auth
            .verifier()
            .and_then(|v| token::renew_session(v.keys(), &claims, SESSION_TTL, SESSION_MAX_AGE));
        if let Some((token, renewed)) = renewed {
            expires = renewed.exp;
            let left = Duration::from_secs(renewed.exp.saturating_sub(now));
            response.cookie(cookie::session(&token, left, secure));
        }
    }
    Ok(response.json(SessionInfo {
        user: claims.sub,
        role: access.role,
        desktops: access.desktops.to_string(),
        expires: expires * 1000,
    }))
}

/// `POST /api/logout`: clears the cookie and revokes its session everywhere.
pub async fn logout(
    req: HttpRequest,
    state: web::Data<RelayState>,
) -> Result<HttpResponse, ApiError> {
    if !state.auth.users.enabled() {
        return Err(sign_in_off());
    }
    check_origin(&req, &state)?;
    if let Some(presented) = req.cookie(SESSION_COOKIE) {
        // A session that is no good any more (expired, revoked, a removed user) has nothing left
        // to end; the cookie is cleared all the same.
        if let Ok((_, claims)) = state.auth.session_of(presented.value()) {
            state.auth.sign_out(&claims, SESSION_TTL);
        }
    }
    Ok(HttpResponse::NoContent()
        .insert_header(("cache-control", "no-store"))
        .cookie(cookie::cleared(https(&req, &state.config)))
        .finish())
}

fn jsonwebtoken_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
