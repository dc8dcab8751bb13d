//! The relay's HTTP surface: the page, the WebSocket endpoint, health and metrics.
//!
//! Every GET route also answers HEAD (load balancers and uptime checkers send HEAD): actix-web's
//! `web::get()` guard does not match HEAD, so the page, health and metrics routes take both
//! methods and actix-http leaves the body out of a HEAD response, keeping status and headers.
//! `/ws` stays GET only: HEAD cannot upgrade, so it answers 405 with `Allow: GET`.

pub mod api;
pub mod assets;
pub mod health;
pub mod ws;

use actix_web::http::header;
use actix_web::{guard, web, HttpResponse, Route};

/// Registers every route on an app.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/ws")
            .route(web::get().to(ws::upgrade))
            .default_service(web::to(get_only)),
    )
    .configure(api::routes)
    .route("/healthz", get_or_head().to(health::healthz))
    .route("/metrics", get_or_head().to(health::metrics))
    .route("/", get_or_head().to(assets::index))
    .route("/{path:.*}", get_or_head().to(assets::asset));
}

/// A route for GET and HEAD alike.
fn get_or_head() -> Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// Any method but GET on a GET-only resource.
async fn get_only() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "GET"))
        .content_type("text/plain; charset=utf-8")
        .body("only GET is allowed here\n")
}

#[cfg(test)]
mod tests {
    use actix_web::http::{Method, StatusCode};
    use actix_web::test::{call_service, init_service, TestRequest};
    use actix_web::App;

    use super::*;

    #[actix_web::test]
    async fn head_reaches_the_get_handlers_and_ws_refuses_other_methods() {
        let app = init_service(App::new().configure(routes)).await;
        let head = TestRequest::default()
            .method(Method::HEAD)
            .uri("/")
            .to_request();
        assert_eq!(call_service(&app, head).await.status(), StatusCode::OK);
        for method in [Method::HEAD, Method::POST] {
            let request = TestRequest::default()
                .method(method.clone())
                .uri("/ws")
                .to_request();
            let response = call_service(&app, request).await;
            assert_eq!(
                response.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method}"
            );
            assert_eq!(response.headers().get(header::ALLOW).unwrap(), "GET");
        }
    }
}
