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
//! - [`store`]: optional; history and the audit log on disk (SQLite).

// The public surface is what the binary, the test kit, the integration tests and the benchmarks
// use; everything else is internal, so the compiler reports what nothing uses.
pub mod cli;
pub mod tls;

mod auth;
mod cluster;
mod config;
mod history;
mod http;
mod limits;
mod matchmaker;
mod metrics;
mod outbox;
mod server;
mod session;
mod state;
mod store;

pub use auth::Authenticator;
pub use cluster::ClusterConfig;
pub use config::Config;
pub use server::{RelayHandle, RunningRelay};
pub use store::config::StoreConfig;

/// The pieces of the per-message path that `relay/benches/route.rs` measures as they are; not an
/// API.
#[doc(hidden)]
pub mod bench_support {
    pub use crate::history::History;
    pub use crate::metrics::Metrics;
    pub use crate::outbox::fanout::fan_out;
    pub use crate::outbox::{Outbound, Outbox};
}
