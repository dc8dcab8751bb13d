//! Who may read one desktop's records (its history, its audit log): the ONE place that decides,
//! on top of [`caller`] (who is asking).
//!
//! The history is for whoever may see the desktop (`Access::may_see`: any role); the audit log
//! says who did what to it, so it is for its operators (`Access::may_act`). A request with no
//! credentials at all is anonymous, which only `--allow-anonymous` lets in (full access to the
//! one id asked for, as for a socket).

use actix_web::http::header;
use actix_web::HttpRequest;
use deskbridge_auth::Access;
use deskbridge_protocol::ClientId;

use super::caller::caller;
use super::error::ApiError;
use crate::auth::SESSION_COOKIE;
use crate::state::RelayState;

/// What the caller wants to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Records {
    History,
    Audit,
}

/// The caller's access if it may read `records` of `id`: 401 without good credentials, 403 with
/// credentials that do not open `id` (or, for the audit log, only as a viewer).
pub fn desktop_access(
    req: &HttpRequest,
    state: &RelayState,
    id: &ClientId,
    records: Records,
) -> Result<Access, ApiError> {
    let anonymous =
        req.headers().get(header::AUTHORIZATION).is_none() && req.cookie(SESSION_COOKIE).is_none();
    let access = if anonymous && state.config.allow_anonymous {
        Access::anonymous(id)
    } else {
        caller(req, state)?
    };
    let allowed = match records {
        Records::History => access.may_see(id.as_str()),
        Records::Audit => access.may_act(id.as_str()),
    };
    if allowed {
        return Ok(access);
    }
    let what = match records {
        Records::History => "see",
        Records::Audit => "read the audit log of (that takes the operator role for it)",
    };
    log::info!("api: {} may not {what} {id}", access.by);
    Err(ApiError::forbidden(format!(
        "{} may not {what} {id}",
        access.by
    )))
}
