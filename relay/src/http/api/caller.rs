//! Who is calling the HTTP API: the [`Access`] of the request's credential, the same answer a
//! WebSocket gets at `authentication` (see `auth::Authenticator::access_of`).
//!
//! A request proves itself with `Authorization: Bearer <web token>` (v1, fleet or share token:
//! for scripts and kiosks) or with the signed-in page's session cookie. A Bearer header, when
//! present, wins: a script's explicit credential is never replaced by a cookie it did not mean to
//! send. State-changing requests (anything but GET and HEAD) made with the cookie must also pass
//! the same `Origin` check as `/ws`, so another site's page cannot act with a visitor's cookie.

use actix_web::http::{header, Method};
use actix_web::HttpRequest;
use deskbridge_auth::Access;

use super::error::ApiError;
use crate::auth::SESSION_COOKIE;
use crate::limits::client_ip::client_ip;
use crate::limits::origin::origin_allowed;
use crate::state::RelayState;

/// The caller's access, or why it has none (401), or a cross-site write (403).
pub fn caller(req: &HttpRequest, state: &RelayState) -> Result<Access, ApiError> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|value| {
            value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .ok_or_else(|| {
                    ApiError::unauthorized("the Authorization header must be `Bearer <web token>`")
                })
        })
        .transpose()?;
    let cookie = req.cookie(SESSION_COOKIE);
    let token = match (bearer, &cookie) {
        (Some(token), _) => token.to_owned(),
        (None, Some(cookie)) => {
            let writes = !matches!(*req.method(), Method::GET | Method::HEAD);
            let config = &state.config;
            if writes && !origin_allowed(req.headers(), &config.allowed_origins, false) {
                return Err(ApiError::forbidden(
                    "this request comes from another site's page (its Origin is not allowed)",
                ));
            }
            cookie.value().to_owned()
        }
        (None, None) => {
            return Err(ApiError::unauthorized(
                "sign in (POST /api/login) or send `Authorization: Bearer <web token>`",
            ))
        }
    };
    state.auth.access_of(&token).map_err(|why| {
        state.metrics.auth_failures().inc();
        log::info!(
            "refused an API request to {} from {:?}: {why}",
            req.path(),
            req.peer_addr()
        );
        ApiError::unauthorized(format!("credentials refused: {why}"))
    })
}

/// The caller's address (`X-Forwarded-For` believed only from a `--trusted-proxy`), for the
/// audit log.
pub fn caller_ip(req: &HttpRequest, state: &RelayState) -> Option<std::net::IpAddr> {
    client_ip(
        req.peer_addr().map(|a| a.ip()),
        req.headers(),
        &state.config.trusted_proxies,
    )
}
