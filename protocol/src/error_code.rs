//! The machine-readable codes of `error` events.
//!
//! Clients branch on the code, people read the message; codes are part of the protocol and only
//! ever added to.

use serde::{Deserialize, Serialize};

/// Every code the relay may put in an `error` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, not an object, a binary frame, or a field of the wrong type or out of range.
    BadMessage,
    /// The `event` names nothing this relay knows.
    UnknownEvent,
    /// A known event from the wrong kind of client (a viewer sending `cpu`), or a second
    /// `authentication`.
    NotAllowed,
    /// A command for a desktop that is not connected.
    PeerOffline,
    /// A command for a desktop whose send queue is full; try again shortly.
    PeerBusy,
    /// The message is larger than the relay accepts; the connection is closed (1009).
    TooLarge,
    /// No `authentication` arrived in time; the connection is closed (1008).
    AuthTimeout,
    /// A message other than `authentication` before authenticating.
    AuthRequired,
    /// The credentials were refused; the connection is closed (1008).
    Unauthorized,
    /// A newer desktop connection for the same id took over; this one is closed.
    Replaced,
    /// The id already has as many viewers as the relay allows.
    TooManyViewers,
    /// The client sends faster than its rate limit.
    RateLimited,
    /// The relay is shutting down; reconnect elsewhere or later.
    ShuttingDown,
    /// The session was silent for longer than the heartbeat timeout.
    Timeout,
    /// A command asked to wait for an offline desktop that already has as many waiting
    /// commands as the relay keeps (16).
    QueueFull,
    /// A command id another sender already used for this desktop (in the last 10 minutes).
    IdTaken,
}

impl ErrorCode {
    /// The code as it appears on the wire (and in metrics labels).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadMessage => "bad_message",
            ErrorCode::UnknownEvent => "unknown_event",
            ErrorCode::NotAllowed => "not_allowed",
            ErrorCode::PeerOffline => "peer_offline",
            ErrorCode::PeerBusy => "peer_busy",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::AuthTimeout => "auth_timeout",
            ErrorCode::AuthRequired => "auth_required",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Replaced => "replaced",
            ErrorCode::TooManyViewers => "too_many_viewers",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::Timeout => "timeout",
            ErrorCode::QueueFull => "queue_full",
            ErrorCode::IdTaken => "id_taken",
        }
    }

    /// Every code, for pre-registering metrics so that a zero is visible before the first error.
    pub const ALL: [ErrorCode; 16] = [
        ErrorCode::BadMessage,
        ErrorCode::UnknownEvent,
        ErrorCode::NotAllowed,
        ErrorCode::PeerOffline,
        ErrorCode::PeerBusy,
        ErrorCode::TooLarge,
        ErrorCode::AuthTimeout,
        ErrorCode::AuthRequired,
        ErrorCode::Unauthorized,
        ErrorCode::Replaced,
        ErrorCode::TooManyViewers,
        ErrorCode::RateLimited,
        ErrorCode::ShuttingDown,
        ErrorCode::Timeout,
        ErrorCode::QueueFull,
        ErrorCode::IdTaken,
    ];
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_matches_serde_name() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
