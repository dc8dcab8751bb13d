//! Request bodies of the API: JSON objects of at most [`MAX_BODY`] bytes, read without trusting
//! `Content-Length`, so a huge or endless body costs the relay 4 KiB and a clear 400.

use actix_web::http::StatusCode;
use actix_web::web;
use futures_util::StreamExt as _;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// The largest request body the API reads.
pub const MAX_BODY: usize = 4096;

/// 400 `bad_request`: a body (or query) that is not what the endpoint takes.
pub fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
}

/// Reads the body as `T`; `shape` shows what was expected (`{"user":…,"password":…}`).
pub async fn read_json<T: DeserializeOwned>(
    mut payload: web::Payload,
    shape: &str,
) -> Result<T, ApiError> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| bad_request(format!("cannot read the request body: {e}")))?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(bad_request(format!(
                "the request body is larger than {MAX_BODY} bytes; send {shape}"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    let wrong =
        |e: serde_json::Error| bad_request(format!("the body must be JSON like {shape}: {e}"));
    // An object, always: serde would also take a struct's fields from an array, in order.
    match serde_json::from_slice(&body).map_err(wrong)? {
        object @ serde_json::Value::Object(_) => serde_json::from_value(object).map_err(wrong),
        _ => Err(bad_request(format!(
            "the body must be a JSON object like {shape}"
        ))),
    }
}
