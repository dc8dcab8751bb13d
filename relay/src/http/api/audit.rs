//! `GET /api/audit?desktop=ID&since=…`: one desktop's audit log from the store (who did what,
//! from where, with what outcome). The store runs the query off the actix workers.

use actix_web::{web, HttpRequest, HttpResponse};
use deskbridge_protocol::ClientId;
use serde::{Deserialize, Serialize};

use super::desktop_access::{desktop_access, Records};
use super::error::ApiError;
use super::params::{client_id, internal, no_store, params};
use crate::state::RelayState;
use crate::store::query::AuditEntry;

#[derive(Deserialize)]
struct AuditParams {
    desktop: String,
    since: Option<u64>,
}

#[derive(Serialize)]
struct AuditAnswer {
    desktop: ClientId,
    since: u64,
    records: Vec<AuditEntry>,
    /// More records follow: ask again with `since` = the last record's `ts`.
    more: bool,
}

/// `GET /api/audit?desktop=ID&since=…`: the audit log of one desktop from `since` (Unix ms,
/// default 0), oldest first, at most 1,000 records. The same access rule as the history (once
/// roles exist: operators of that desktop only).
pub async fn audit(
    req: HttpRequest,
    state: web::Data<RelayState>,
) -> Result<HttpResponse, ApiError> {
    let params: AuditParams = params(&req)?;
    let desktop = client_id(&params.desktop)?;
    desktop_access(&req, &state, &desktop, Records::Audit)?;
    let since = params.since.unwrap_or(0);
    let (records, more) = state
        .store
        .audit_log(&desktop, since)
        .await
        .map_err(|e| internal("audit query", e))?
        .ok_or_else(no_store)?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(AuditAnswer {
            desktop,
            since,
            records,
            more,
        }))
}
