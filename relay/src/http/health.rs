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
    /// Cluster mode only: `ok`, or `degraded` while NATS is unreachable.
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<&'static str>,
    /// Cluster mode only: this node's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<String>,
}

/// 200 with a small JSON body while serving; 503 once shutting down, so a load balancer stops
/// sending new clients here.
///
/// A cluster node without NATS still answers 200 (with `"cluster":"degraded"`): it keeps serving
/// the pairs whose both ends are on it, and taking it out of the load balancer would cut those
/// off too, while every node is usually degraded at once when NATS itself is down.
pub async fn healthz(state: web::Data<RelayState>) -> HttpResponse {
    let shutting_down = state.shutting_down();
    let body = Health {
        status: if shutting_down { "shutting_down" } else { "ok" },
        server: SERVER_NAME,
        uptime_seconds: state.started.elapsed().as_secs(),
        desktops: state.metrics.sessions(ClientMode::Desktop).get(),
        viewers: state.metrics.sessions(ClientMode::Web).get(),
        cluster: state.cluster_metrics.as_deref().map(|c| {
            if c.is_connected() {
                "ok"
            } else {
                "degraded"
            }
        }),
        node: state
            .cluster_metrics
            .as_deref()
            .map(|c| c.node().to_owned()),
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
