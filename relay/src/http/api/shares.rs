//! View-only links: `POST /api/shares` makes one, `GET /api/shares` lists the live ones (never
//! their tokens), `DELETE /api/shares/{id}` revokes one. Only an operator of the desktop may do
//! any of it (`Access::may_act`); the registry and its cluster-wide life are `auth::live`'s.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use deskbridge_auth::Access;
use deskbridge_protocol::ClientId;
use serde::{Deserialize, Serialize};

use super::body::{bad_request, read_json};
use super::caller::{caller, caller_ip};
use super::error::ApiError;
use super::public_url::page_base;
use crate::auth::shares::Share;
use crate::state::RelayState;
use crate::store::record::{AuditKind, AuditRecord};

/// The shortest a link may live.
pub const MIN_TTL: Duration = Duration::from_secs(15 * 60);
/// The longest a link may live.
pub const MAX_TTL: Duration = Duration::from_secs(7 * 86_400);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewShare {
    desktop: String,
    ttl: Ttl,
}

/// `"1h"` or `3600`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Ttl {
    Seconds(u64),
    Text(String),
}

const SHAPE: &str =
    r#"{"desktop":"ID","ttl":"1h"} (ttl: a duration like "15m", "1h", "7d", or seconds)"#;

#[derive(Serialize)]
struct Created {
    id: String,
    desktop: String,
    url: String,
    token: String,
    by: String,
    created: u64,
    expires: u64,
}

#[derive(Serialize)]
struct Listed {
    shares: Vec<Share>,
}

#[derive(Deserialize)]
struct ListQuery {
    desktop: Option<String>,
}

fn ttl_of(ttl: Ttl) -> Result<Duration, ApiError> {
    let ttl = match ttl {
        Ttl::Seconds(s) => Duration::from_secs(s),
        Ttl::Text(text) => humantime::parse_duration(text.trim()).map_err(|e| {
            bad_request(format!(
                "ttl {text:?} is not a duration ({e}): write 15m, 1h or 7d"
            ))
        })?,
    };
    if !(MIN_TTL..=MAX_TTL).contains(&ttl) {
        return Err(bad_request(format!(
            "ttl {} is out of range: a link lives 15 minutes to 7 days",
            humantime::format_duration(ttl)
        )));
    }
    Ok(ttl)
}

fn desktop_id(text: &str) -> Result<ClientId, ApiError> {
    ClientId::new(text).map_err(|e| bad_request(format!("desktop {text:?}: {e}")))
}

fn not_an_operator(access: &Access, desktop: &str) -> ApiError {
    ApiError::forbidden(format!(
        "{} may not share {desktop:?}: only an operator of that desktop may",
        access.by
    ))
}

/// `POST /api/shares`.
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<RelayState>,
) -> Result<HttpResponse, ApiError> {
    let access = caller(&req, &state)?;
    let asked: NewShare = read_json(payload, SHAPE).await?;
    let desktop = desktop_id(&asked.desktop)?;
    if !access.may_act(desktop.as_str()) {
        return Err(not_an_operator(&access, desktop.as_str()));
    }
    let ttl = ttl_of(asked.ttl)?;
    let (token, share) = state
        .auth
        .create_share(&desktop, ttl, &access.by)
        .map_err(|e| ApiError::unavailable(format!("cannot make a link: {e}")))?;
    state.store.audit(AuditRecord::share(
        AuditKind::ShareCreated,
        &access.by,
        caller_ip(&req, &state),
        &desktop,
        &share.id,
        Some(share.expires),
    ));
    let url = format!(
        "{}/#id={}&share={token}",
        page_base(&req, &state.config),
        share.desktop
    );
    Ok(HttpResponse::Created()
        .insert_header(("cache-control", "no-store"))
        .json(Created {
            id: share.id,
            desktop: share.desktop,
            url,
            token,
            by: share.by,
            created: share.created,
            expires: share.expires,
        }))
}

/// `GET /api/shares?desktop=ID`.
pub async fn list(
    req: HttpRequest,
    state: web::Data<RelayState>,
) -> Result<HttpResponse, ApiError> {
    let access = caller(&req, &state)?;
    let query = web::Query::<ListQuery>::from_query(req.query_string())
        .map_err(|e| bad_request(format!("the query must be ?desktop=ID: {e}")))?;
    let shares = match &query.desktop {
        Some(desktop) => {
            let desktop = desktop_id(desktop)?;
            if !access.may_act(desktop.as_str()) {
                return Err(not_an_operator(&access, desktop.as_str()));
            }
            state.auth.shares_where(|s| s.desktop == desktop.as_str())
        }
        None => state.auth.shares_where(|s| access.may_act(&s.desktop)),
    };
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(Listed { shares }))
}

/// `DELETE /api/shares/{id}`.
pub async fn revoke(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<RelayState>,
) -> Result<HttpResponse, ApiError> {
    let access = caller(&req, &state)?;
    let no_such = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_such_share",
            "there is no live share link with this id (expired or already revoked?)",
        )
    };
    let share = state.auth.share(&id).ok_or_else(no_such)?;
    if !access.may_see(&share.desktop) {
        // Whoever may not even see the desktop learns nothing of its links.
        return Err(no_such());
    }
    if !access.may_act(&share.desktop) {
        return Err(not_an_operator(&access, &share.desktop));
    }
    state
        .auth
        .revoke_share(&share.id, &access.by)
        .ok_or_else(no_such)?;
    if let Ok(desktop) = ClientId::new(&share.desktop) {
        state.store.audit(AuditRecord::share(
            AuditKind::ShareRevoked,
            &access.by,
            caller_ip(&req, &state),
            &desktop,
            &share.id,
            None,
        ));
    }
    Ok(HttpResponse::NoContent()
        .insert_header(("cache-control", "no-store"))
        .finish())
}
