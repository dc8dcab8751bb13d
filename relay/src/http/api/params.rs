//! What the store's endpoints share: their query parameters read into types (a wrong one is a
//! 400 naming it), and the errors only they give.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use deskbridge_protocol::ClientId;
use serde::Deserialize;

use super::error::ApiError;

/// 400: the request itself is wrong (a parameter missing or malformed).
pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

/// 404 when the relay keeps no store (`--no-store`).
pub fn no_store() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_store",
        "this relay keeps no history or audit log (it runs with --no-store)",
    )
}

/// 500: the store failed; the details go to the log, not to the client.
pub fn internal(what: &str, error: impl std::fmt::Display) -> ApiError {
    log::error!("{what}: {error}");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("{what} failed; the relay's log says why"),
    )
}

/// The query string in its typed form, or a 400 saying which parameter is wrong.
pub fn params<T: for<'de> Deserialize<'de>>(req: &HttpRequest) -> Result<T, ApiError> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| bad_request("bad_request", e.to_string()))
}

/// A client id from the query, or a 400 saying what ids look like.
pub fn client_id(raw: &str) -> Result<ClientId, ApiError> {
    ClientId::new(raw).map_err(|e| bad_request("bad_id", e.to_string()))
}
