//! The sign-in state's changes and whole state as they travel: between the nodes of a cluster
//! (JSON on NATS, see `cluster::auth_sync`) and into the data directory's `shares.json`. Plain
//! data; applying them is `auth::live`'s.

use serde::{Deserialize, Serialize};

use super::revocation::Revoked;
use super::shares::Share;

/// One change to the sign-in state, as the nodes of a cluster tell each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AuthEvent {
    /// A share link was made.
    ShareCreated { share: Share },
    /// A token (a share link's, a signed-out session's) was revoked until `until` (Unix s).
    Revoked { jti: String, until: u64 },
}

/// Everything [`AuthEvent`]s build: what a starting node asks for, and what `shares.json` in the data directory holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthSnapshot {
    #[serde(default)]
    pub shares: Vec<Share>,
    #[serde(default)]
    pub revoked: Vec<Revoked>,
}
