//! `GET /api/desktops`: every desktop the caller may see, as the fleet grid shows them, for
//! scripts: `{"desktops":[{"id","online","since","viewers","cpu","reason"?,"waiting"}]}`, sorted
//! by id. Answered by the matchmaker, which knows every id of this relay and, in a cluster, the
//! state other nodes announced.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::caller::caller;
use super::error::ApiError;
use crate::matchmaker::messages::{DesktopSummary, ListDesktops};
use crate::state::RelayState;

#[derive(Serialize)]
struct Desktops {
    desktops: Vec<DesktopSummary>,
}

pub async fn list(
    req: HttpRequest,
    state: web::Data<RelayState>,
) -> Result<HttpResponse, ApiError> {
    let access = caller(&req, &state)?;
    let desktops = state
        .matchmaker
        .send(ListDesktops { access })
        .await
        .map_err(|_| ApiError::unavailable("the relay is shutting down"))?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(Desktops { desktops }))
}
