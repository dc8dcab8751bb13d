//! `POST /api/desktops` `{"id":ID}`: an operator adds a desktop. The relay mints the desktop's
//! token (365 days, as `token --mode desktop`), marks the id as expected so every grid that may
//! see it shows it as waiting for its first connection, and answers the exact
//! `deskbridge-agent install` line to paste on that desktop.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use deskbridge_auth::token;
use deskbridge_protocol::{ClientId, ClientMode};
use serde::{Deserialize, Serialize};

use super::body::{bad_request, read_json};
use super::caller::{caller, caller_ip};
use super::error::ApiError;
use super::public_url::ws_url;
use crate::matchmaker::messages::Expect;
use crate::state::RelayState;
use crate::store::record::{AuditKind, AuditRecord};

/// How long an added desktop's token is good for: as long as `token --mode desktop` makes them.
pub const DESKTOP_TOKEN_TTL: Duration = Duration::from_secs(365 * 86_400);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDesktop {
    id: String,
}

#[derive(Serialize)]
struct Added {
    id: String,
    token: String,
    relay: String,
    command: String,
}

pub async fn add(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<RelayState>,
) -> Result<HttpResponse, ApiError> {
    let access = caller(&req, &state)?;
    let asked: NewDesktop = read_json(payload, r#"{"id":"ID"}"#).await?;
    let id = ClientId::new(&asked.id)
        .map_err(|e| bad_request(format!("{:?} cannot be a desktop id: {e}", asked.id)))?;
    if !access.may_act(id.as_str()) {
        return Err(ApiError::forbidden(format!(
            "{} may not add {:?}: only an operator whose desktops include it may",
            access.by,
            id.as_str()
        )));
    }
    let keys = state
        .auth
        .verifier()
        .ok_or_else(|| ApiError::unavailable("the relay has no key to sign tokens with"))?
        .keys();
    let token = token::mint(keys, &id, ClientMode::Desktop, DESKTOP_TOKEN_TTL);
    state.matchmaker.do_send(Expect {
        client_id: id.clone(),
    });
    log::info!("audit: desktop {id} added by {:?}", access.by);
    state.store.audit(AuditRecord::new(
        AuditKind::DesktopAdded,
        access.by.clone(),
        caller_ip(&req, &state),
        Some(&id),
        serde_json::json!({ "token_days": DESKTOP_TOKEN_TTL.as_secs() / 86_400 }),
    ));
    let relay = ws_url(&req, &state.config);
    let command = format!("deskbridge-agent install --relay {relay} --id {id} --token {token}");
    Ok(HttpResponse::Created()
        .insert_header(("cache-control", "no-store"))
        .json(Added {
            id: id.to_string(),
            token,
            relay,
            command,
        }))
}
