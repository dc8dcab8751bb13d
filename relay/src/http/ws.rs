//! `GET /ws`: upgrades to a WebSocket and hands the connection to a session actor.

use actix_web::{web, HttpRequest, HttpResponse};

use crate::limits::client_ip::client_ip;
use crate::limits::connections::ConnectionRefused;
use crate::limits::origin::origin_allowed;
use crate::metrics::Limit;
use crate::session::WsSession;
use crate::state::RelayState;

pub async fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<RelayState>,
) -> Result<HttpResponse, actix_web::Error> {
    if state.shutting_down() {
        return Ok(HttpResponse::ServiceUnavailable().body("relay shutting down\n"));
    }
    let config = &state.config;
    if !origin_allowed(
        req.headers(),
        &config.allowed_origins,
        config.allow_anonymous,
    ) {
        state.metrics.limited(Limit::Origin).inc();
        log::info!(
            "refused a websocket from {:?}: origin {:?} is not allowed (see --allowed-origin)",
            req.peer_addr(),
            req.headers().get("origin")
        );
        return Ok(HttpResponse::Forbidden().body("origin not allowed\n"));
    }
    let ip = client_ip(
        req.peer_addr().map(|a| a.ip()),
        req.headers(),
        &config.trusted_proxies,
    );
    let slot = match state.connections.acquire(ip) {
        Ok(slot) => slot,
        Err(ConnectionRefused::Total) => {
            state.metrics.limited(Limit::Connections).inc();
            log::warn!(
                "refused a websocket from {ip:?}: {} connections open, the most allowed",
                config.max_connections
            );
            return Ok(HttpResponse::ServiceUnavailable()
                .insert_header(("retry-after", "10"))
                .body("relay full, try again later\n"));
        }
        Err(ConnectionRefused::PerAddress) => {
            state.metrics.limited(Limit::ConnectionsPerAddress).inc();
            log::warn!("refused a websocket from {ip:?}: too many connections from that address");
            return Ok(HttpResponse::TooManyRequests()
                .insert_header(("retry-after", "10"))
                .body("too many connections from your address\n"));
        }
    };
    WsSession::accept(&req, body, state.clone(), slot).await
}
