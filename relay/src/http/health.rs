//! `GET /healthz` for load balancers and `GET /metrics` for Prometheus.

use actix_web::{web, HttpResponse};
use deskbridge_protocol::ClientMode;
use serde::Serialize;

use crate::matchmaker::SERVER_NAME;
use crate::state::RelayState;

#[derive(Serialize)]
struct Health {
    status: &'static str,
    server: &'static str,
    uptime_seconds: u64,
    desktops: i64,
    viewers: i64,
}

/// 200 with a small JSON body while serving; 503 once shutting down, so a load balancer stops
/// sending new clients here.
pub async fn healthz(state: web::Data<RelayState>) -> HttpResponse {
    let shutting_down = state.shutting_down();
    let body = Health {
        status: if shutting_down { "shutting_down" } else { "ok" },
        server: SERVER_NAME,
        uptime_seconds: state.started.elapsed().as_secs(),
        desktops: state.metrics.session_count(ClientMode::Desktop),
        viewers: state.metrics.session_count(ClientMode::Web),
    };
    if shutting_down {
        HttpResponse::ServiceUnavailable().json(body)
    } else {
        HttpResponse::Ok().json(body)
    }
}

pub async fn metrics(state: web::Data<RelayState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.render())
}
