//! The deskbridge wire protocol, version 1: the JSON messages that desktops, web viewers and the
//! relay exchange over WebSocket text frames.
//!
//! This crate is shared by the relay, the agent and the load generator so that all three agree on
//! one definition of every message. It knows nothing about sockets or actors: it turns untrusted
//! text into validated values ([`parse_client_message`]) and says where each message may go
//! ([`EventKind::route`]).
//!
//! The original 2018 prototype's messages (`authentication`, `cpu` with only `value`, `beep` with no
//! `id`) are valid v1 messages, so its clients keep working.
//!
//! Adding a command is three small edits here: a payload struct in [`messages`], a variant in
//! [`ClientMessage`] and a row in [`EventKind`]'s routing table. The relay routes it without change.

pub mod client_id;
pub mod error_code;
pub mod event;
pub mod messages;
mod parse;
pub mod server;
mod time;

pub use client_id::{ClientId, InvalidClientId};
pub use error_code::ErrorCode;
pub use event::{ClientMode, EventKind, Role, Route};
pub use messages::{
    Authentication, Beep, BeepResult, Cpu, GoingAway, Memory, Notify, NotifyResult, OfflineReason,
};
pub use parse::{parse_client_message, ClientMessage, CommandRequest, Rejection};
pub use server::{
    forward_frame, forward_prefix, Audience, CommandEvent, CommandState, DesktopState, ErrorEvent,
    Forward, Presence, ServerMessage, Unwatched, Welcome,
};
pub use time::unix_millis;

/// The protocol version the relay announces in `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;
