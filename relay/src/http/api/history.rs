//! `GET /api/history?id=ID&from=…&to=…&step=…`: a desktop's cpu history from the store, for the
//! page's charts. Times are Unix milliseconds; `step` is `raw`, a number of milliseconds (below
//! a minute: raw samples; otherwise whole minutes of aggregates), or absent (the relay picks one
//! for at most ~2,000 points). The answer:
//! `{"id","from","to","step","points":[[ts,min,mean,max],…],"memory_used":[…],
//! "offline":[{"from","to","reason"},…]}`, the last the intervals the desktop was offline (and
//! why) overlapping the range, so a chart's gap can say what it was.
//!
//! The store runs the query off the actix workers (a blocking thread for SQLite, a network request
//! for JetStream).

use actix_web::{web, HttpRequest, HttpResponse};
use deskbridge_protocol::ClientId;
use serde::{Deserialize, Serialize};

use super::desktop_access::{desktop_access, Records};
use super::error::ApiError;
use super::params::{bad_request, client_id, internal, no_store, params};
use crate::state::RelayState;
use crate::store::presence::Offline;
use crate::store::query::{History, Step, MAX_POINTS};
use crate::store::record::now_ms;

/// The range when the request names none: the last hour.
const DEFAULT_RANGE_MS: u64 = 3_600_000;

#[derive(Deserialize)]
struct Params {
    id: String,
    from: Option<u64>,
    to: Option<u64>,
    step: Option<String>,
}

#[derive(Serialize)]
struct Answer {
    id: ClientId,
    from: u64,
    to: u64,
    #[serde(flatten)]
    history: History,
    offline: Vec<Offline>,
}

pub async fn history(
    req: HttpRequest,
    state: web::Data<RelayState>,
) -> Result<HttpResponse, ApiError> {
    let params: Params = params(&req)?;
    let id = client_id(&params.id)?;
    desktop_access(&req, &state, &id, Records::History)?;
    if !state.store.is_enabled() {
        return Err(no_store());
    }
    let to = params.to.unwrap_or_else(|| now_ms() + 1);
    let from = params
        .from
        .unwrap_or_else(|| to.saturating_sub(DEFAULT_RANGE_MS));
    if from >= to {
        return Err(bad_request(
            "bad_range",
            format!("from ({from}) must be before to ({to}); both are Unix milliseconds"),
        ));
    }
    let step = match params.step.as_deref() {
        None => None,
        Some(text) => Some(Step::parse(text).ok_or_else(|| {
            bad_request(
                "bad_step",
                format!("step must be `raw` or a number of milliseconds, not {text:?}"),
            )
        })?),
    };
    if let Some(step) = step {
        if step.points(from, to) > MAX_POINTS {
            return Err(bad_request(
                "too_many_points",
                format!(
                    "at most {MAX_POINTS} points per request: a larger step, or a shorter range"
                ),
            ));
        }
    }
    // Both at once: the points and the gaps' reasons are independent reads.
    let (found, offline) = futures_util::join!(
        state.store.history(&id, from, to, step),
        state.store.offline(&id, from, to)
    );
    let found = found
        .map_err(|e| internal("history query", e))?
        .ok_or_else(no_store)?;
    let offline = offline
        .map_err(|e| internal("offline query", e))?
        .unwrap_or_default();
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(Answer {
            id,
            from,
            to,
            history: found,
            offline,
        }))
}
