//! The relay's HTTP surface: the page, the WebSocket endpoint, health and metrics.

pub mod assets;
pub mod health;
pub mod ws;

use actix_web::web;

/// Registers every route on an app.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws", web::get().to(ws::upgrade))
        .route("/healthz", web::get().to(health::healthz))
        .route("/metrics", web::get().to(health::metrics))
        .route("/", web::get().to(assets::index))
        .route("/{path:.*}", web::get().to(assets::asset));
}
