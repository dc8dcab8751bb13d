//! The close frames the relay sends, in one place, so the codes stay consistent with
//! `docs/protocol.md`.

use actix_ws::{CloseCode, CloseReason};

fn reason(code: CloseCode, description: &str) -> CloseReason {
    CloseReason {
        code,
        description: Some(description.to_owned()),
    }
}

/// 1000: the client closed, or its session ended normally.
pub fn normal() -> CloseReason {
    CloseCode::Normal.into()
}

/// 1001: the relay is shutting down.
pub fn going_away() -> CloseReason {
    reason(CloseCode::Away, "relay shutting down")
}

/// 1001: nothing heard from the client within the heartbeat timeout.
pub fn heartbeat_timeout() -> CloseReason {
    reason(CloseCode::Away, "heartbeat timeout")
}

/// 1007: a text frame that is not UTF-8.
pub fn invalid_utf8() -> CloseReason {
    reason(CloseCode::Invalid, "text frame is not valid UTF-8")
}

/// 1008: authentication failed or did not happen in time.
pub fn policy(description: &str) -> CloseReason {
    reason(CloseCode::Policy, description)
}

/// 1009: a message over the size limit.
pub fn too_large() -> CloseReason {
    reason(CloseCode::Size, "message too large")
}

/// 1002: the client broke the WebSocket protocol itself.
pub fn protocol_error() -> CloseReason {
    reason(CloseCode::Protocol, "websocket protocol error")
}

/// 1013: try again later (the id has as many viewers as allowed).
pub fn try_again_later(description: &str) -> CloseReason {
    reason(CloseCode::Again, description)
}

/// 4001: a newer connection of the same desktop took over. Application range, so an agent can
/// tell it apart from every transport-level close.
pub fn replaced() -> CloseReason {
    reason(CloseCode::Other(4001), "replaced by a newer connection")
}
