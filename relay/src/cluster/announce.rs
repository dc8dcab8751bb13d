//! What one node tells the others about one client id: whether it has the desktop (and since
//! when), how many viewers, and whether it wants everyone else to answer with theirs.
//!
//! Published on `deskbridge.v1.<id>.state` on every local change and every heartbeat interval;
//! a node that stops announcing (because it died or lost NATS) is forgotten after the client
//! timeout, exactly as a silent client is.

use bytes::Bytes;
use deskbridge_protocol::OfflineReason;
use serde::{Deserialize, Serialize};

/// One node's state for one id. Small JSON, so an operator can read it with `nats sub`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    /// The announcing node's id.
    pub node: String,
    /// Increases with every announcement of that node (it starts from the clock, so a restarted
    /// node with the same id still counts upwards); older ones arriving late are ignored.
    pub seq: u64,
    /// When this node's desktop of the id connected (Unix ms, made later than any desktop the node
    /// knew of at the time), if it has one. The newest desktop in the cluster wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desktop: Option<u64>,
    /// Viewers of the id connected to this node.
    #[serde(default)]
    pub viewers: u32,
    /// Sessions on this node watching the id only from a fleet grid. Absent when zero, and
    /// zero from nodes older than the field, so old and new nodes interoperate.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub watchers: u32,
    /// "I just started holding this id (or came back): everyone holding it, announce yourselves."
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub query: bool,
    /// Why this node's desktop of the id went (its `going_away`, or `lost`), when it went from
    /// here and no desktop took its place, so viewers on every node read the same reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gone: Option<OfflineReason>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Announcement {
    pub fn encode(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).expect("announcements always serialize"))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_stays_small() {
        let a = Announcement {
            node: "relay-1".into(),
            seq: 7,
            desktop: Some(1_764_093_600_000),
            viewers: 2,
            watchers: 0,
            query: false,
            gone: None,
        };
        let bytes = a.encode();
        assert_eq!(
            &bytes[..],
            br#"{"node":"relay-1","seq":7,"desktop":1764093600000,"viewers":2}"#
        );
        assert_eq!(Announcement::decode(&bytes).unwrap(), a);
        let q = Announcement::decode(br#"{"node":"b","seq":1,"query":true}"#).unwrap();
        assert!(q.query && q.desktop.is_none() && q.viewers == 0);
        assert!(Announcement::decode(b"not json").is_err());
        let grid = Announcement {
            watchers: 4,
            ..a.clone()
        };
        let back = Announcement::decode(&grid.encode()).unwrap();
        assert_eq!(back.watchers, 4);
    }
}
