//! The JSON API under `/api/`: for the signed-in page and for scripts. Every handler starts from
//! [`caller::caller`] (who is asking, and what they may see and do) and answers errors as
//! [`error::ApiError`]; docs/protocol.md ("HTTP API") lists the endpoints.

pub mod add_desktop;
pub mod audit;
pub mod body;
pub mod caller;
pub mod cookie;
pub mod desktop_access;
pub mod desktops;
pub mod error;
pub mod history;
pub mod params;
pub mod public_url;
pub mod shares;
pub mod signin;

use actix_web::web;

/// Registers the API's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/desktops")
            .route(web::get().to(desktops::list))
            .route(web::post().to(add_desktop::add)),
    )
    .route("/api/login", web::post().to(signin::login))
    .route("/api/session", web::get().to(signin::session))
    .route("/api/logout", web::post().to(signin::logout))
    .service(
        web::resource("/api/shares")
            .route(web::get().to(shares::list))
            .route(web::post().to(shares::create)),
    )
    .route("/api/shares/{id}", web::delete().to(shares::revoke))
    .route("/api/history", web::get().to(history::history))
    .route("/api/audit", web::get().to(audit::audit));
}
