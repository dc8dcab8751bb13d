//! Presence changes in a cluster's JetStream store: stream `DESKBRIDGE_PRESENCE`, one subject per
//! desktop (`deskbridge.store.v1.presence.<id>`), `max_age` the minute aggregates' retention.
//! The node that saw the change publishes it (through the store's writing task); any node reads
//! it, so a gap's reason crosses nodes.
//!
//! A message is `{"ts":ms,"reason":"sleep"}` for a departure, `{"ts":ms}` for a return. Changes
//! are a few per desktop per day, so a query reads the desktop's whole subject (its retention's
//! worth) up to the range's end and folds it.

use async_nats::jetstream;
use deskbridge_protocol::ClientId;
use serde::{Deserialize, Serialize};

use super::{intervals, reason_of, Offline};
use crate::store::jetstream::{read, wire};
use crate::store::record::PresenceChange;
use crate::store::record::FUTURE_SKEW_MS;
use crate::store::schema::StoreError;

/// The stream, and the subjects' kind token.
pub const STREAM: &str = "DESKBRIDGE_PRESENCE";
pub const KIND: &str = "presence";

/// A change as published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub ts: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Message {
    pub fn of(change: &PresenceChange) -> Self {
        Self {
            ts: change.ts,
            reason: change.gone.map(|r| r.as_str().to_owned()),
        }
    }
}

/// The subject of `id`'s changes.
pub fn subject(id: &ClientId) -> String {
    wire::subject(KIND, Some(id))
}

/// The intervals `id` was offline overlapping `[from, to)`.
pub async fn offline(
    js: &jetstream::Context,
    id: &ClientId,
    from: u64,
    to: u64,
) -> Result<Vec<Offline>, StoreError> {
    let mut changes = Vec::new();
    // Stored by the JetStream server's clock; the writing node's may differ a little.
    let stop = to.saturating_add(FUTURE_SKEW_MS);
    read::read(js, STREAM, subject(id), 0, |payload, stored| {
        if let Ok(m) = serde_json::from_slice::<Message>(payload) {
            changes.push((m.ts, m.reason.as_deref().map(reason_of)));
        }
        stored <= stop
    })
    .await?;
    // Nodes' clocks differ a little; the fold wants time order.
    changes.sort_by_key(|&(ts, _)| ts);
    Ok(intervals(changes, from, to))
}

#[cfg(test)]
mod tests {
    use super::*;
    use deskbridge_protocol::OfflineReason;

    #[test]
    fn a_change_is_small_json_on_its_desktops_subject() {
        let id = ClientId::new("a.b").unwrap();
        let gone = PresenceChange {
            id: id.clone(),
            ts: 5,
            gone: Some(OfflineReason::Sleep),
        };
        let text = serde_json::to_string(&Message::of(&gone)).unwrap();
        assert_eq!(text, r#"{"ts":5,"reason":"sleep"}"#);
        let back = PresenceChange { gone: None, ..gone };
        assert_eq!(
            serde_json::to_string(&Message::of(&back)).unwrap(),
            r#"{"ts":5}"#
        );
        assert_eq!(subject(&id), "deskbridge.store.v1.presence.a~b");
    }
}
