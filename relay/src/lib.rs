//! The deskbridge relay: desktops dial out to it, web pages connect to it, and it pairs the two by
//! client id and relays messages both ways.
//!
//! Layout, following the path of a message:
//! - [`http`]: the routes; `/ws` upgrades and hands the socket to a session.
//! - [`session`]: one actor per connection; reads, validates, relays into peers' outboxes.
//! - [`outbox`]: a session's bounded send queue, the fan-out to viewers and a command's outcome.
//! - [`matchmaker`]: the registry of sessions by id; pairs peers on join and leave.
//! - [`auth`], [`limits`]: who may connect, and how much.
//! - [`history`], [`metrics`]: per-id cpu history and Prometheus counters.
//! - [`server`]: starting, running and gracefully stopping all of it.
//! - [`cluster`]: optional; several relays joined through NATS.

pub mod auth;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod history;
pub mod http;
pub mod limits;
pub mod matchmaker;
pub mod metrics;
pub mod outbox;
pub mod server;
pub mod session;
mod state;
pub mod tls;

pub use config::Config;
pub use server::{RelayHandle, RunningRelay};
