//! The JSON API under `/api/`: for the signed-in page and for scripts. Every handler starts from
//! [`caller::caller`] (who is asking, and what they may see and do) and answers errors as
//! [`error::ApiError`]; docs/protocol.md ("HTTP API") lists the endpoints.

pub mod audit;
pub mod caller;
pub mod desktop_access;
pub mod desktops;
pub mod error;
pub mod history;
pub mod params;

use actix_web::web;

/// Registers the API's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/desktops", web::get().to(desktops::list))
        .route("/api/history", web::get().to(history::history))
        .route("/api/audit", web::get().to(audit::audit));
}
