//! `GET /ws`: upgrades to a WebSocket and hands the connection to a session actor.

use actix_web::{web, HttpRequest, HttpResponse};

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
    let (response, socket, stream) = actix_ws::handle(&req, body)?;
    let limit = state.config.max_message_size;
    let stream = stream
        .max_frame_size(limit)
        .aggregate_continuations()
        .max_continuation_size(limit);
    WsSession::start(state.clone(), socket, stream, req.peer_addr());
    Ok(response)
}
