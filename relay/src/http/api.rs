//! What the JSON API's handlers (`/api/…`) share: reading query parameters, and saying no with
//! a status and `{"error":code,"message":…}`, the code a stable word for programs, the message
//! a sentence for people.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use deskbridge_protocol::ClientId;
use serde::{Deserialize, Serialize};

/// A refused or failed API request.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400: the request itself is wrong (a parameter missing or malformed).
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 500: the store failed; the details go to the log, not to the client.
    pub fn internal(what: &str, error: impl std::fmt::Display) -> Self {
        log::error!("{what}: {error}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{what} failed; the relay's log says why"),
        )
    }

    /// 404 when the relay keeps no store (`--no-store`).
    pub fn no_store() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "no_store",
            "this relay keeps no history or audit log (it runs with --no-store)",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status)
            .insert_header(("cache-control", "no-store"))
            .json(Body {
                error: self.code,
                message: &self.message,
            })
    }
}

/// Parses the query string into its typed form, or says which parameter is wrong.
pub fn params<T: for<'de> Deserialize<'de>>(req: &HttpRequest) -> Result<T, ApiError> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::bad_request("bad_request", e.to_string()))
}

/// A client id from the query, or a 400 saying what ids look like.
pub fn client_id(raw: &str) -> Result<ClientId, ApiError> {
    ClientId::new(raw).map_err(|e| ApiError::bad_request("bad_id", e.to_string()))
}
