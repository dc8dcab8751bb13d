//! What deskbridge's tests share, so that each is written once: a real relay on an ephemeral
//! loopback port ([`relay`]), keys and tokens ([`tokens`]), a WebSocket client that reads events
//! with deadlines and answers pings ([`client`]), hand-made frames ([`raw`]), child processes
//! with deadlines ([`process`]), a NATS cluster ([`cluster`]), sign-in: a users file and API
//! calls with a session cookie ([`signin`]), and the relay's store and its JSON API ([`store`]).
//!
//! A dev-only crate: panicking with what was seen is how its helpers report failure.

pub mod client;
pub mod cluster;
pub mod process;
pub mod raw;
pub mod relay;
pub mod signin;
pub mod store;
pub mod tokens;

/// The relay types tests hold, so a crate's tests need not name the relay crate themselves.
pub use deskbridge_relay::{Config, RelayHandle};

pub use client::{decode, http_get, Client, Received};
pub use process::RelayProcess;
pub use relay::{free_port, start_relay, start_relay_on, test_config, ws_url, WAIT};
