//! Who may read a desktop's history and audit log through the API: the ONE place that decides,
//! so sign-in (people, roles, desktop patterns) replaces only this function.
//!
//! Until sign-in lands, the API takes the credentials a viewer already has: its web token for
//! that desktop, as `Authorization: Bearer <token>`, verified exactly as an `authentication`
//! message would be (signature, expiry, revocation, id and mode). Without a header the caller is
//! anonymous, which only `--allow-anonymous` lets in. Refusals go to the audit log, never the
//! token.

use actix_web::http::{header, StatusCode};
use actix_web::HttpRequest;
use deskbridge_auth::TokenError;
use deskbridge_protocol::{Authentication, ClientId, ClientMode};

use super::api::ApiError;
use crate::limits::client_ip::client_ip;
use crate::state::RelayState;
use crate::store::record::{who, AuditRecord};

/// A caller allowed to read one desktop's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// As the audit log names people: `token <first 8 of its id>`, or `anonymous`.
    pub by: String,
}

/// Decides whether the request may read `id`'s history and audit log. (Once roles exist, the
/// audit log is for that desktop's operators only.)
pub fn authorize(req: &HttpRequest, state: &RelayState, id: &ClientId) -> Result<Caller, ApiError> {
    let token = match req.headers().get(header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let bearer = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .filter(|t| !t.is_empty());
            match bearer {
                Some(token) => Some(token.to_owned()),
                None => {
                    return Err(ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "unauthorized",
                        "the Authorization header must be `Bearer <web token>`",
                    ))
                }
            }
        }
    };
    let auth = Authentication {
        client_id: id.clone(),
        client_mode: ClientMode::Web,
        token,
    };
    match state.auth.admit(&auth) {
        Ok(admitted) => Ok(Caller {
            by: who(admitted.jti.as_deref()),
        }),
        Err(why) => {
            let config = &state.config;
            let ip = client_ip(
                req.peer_addr().map(|a| a.ip()),
                req.headers(),
                &config.trusted_proxies,
            );
            state
                .store
                .audit(AuditRecord::token_refused(&auth, ip, &why));
            log::info!("api: refused {} for {id} from {ip:?}: {why}", req.path());
            Err(refusal(&why, id))
        }
    }
}

/// A good token for another desktop (or for a desktop, not a viewer) is forbidden; anything
/// else is not signed in.
fn refusal(why: &TokenError, id: &ClientId) -> ApiError {
    match why {
        TokenError::WrongClient { .. } | TokenError::WrongMode { .. } => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this token does not open {id}: {why}"),
        ),
        TokenError::Missing => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!("send `Authorization: Bearer <web token for {id}>`"),
        ),
        _ => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!("token refused: {why}"),
        ),
    }
}
