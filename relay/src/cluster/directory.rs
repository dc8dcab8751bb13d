//! Cluster mode: which desktop ids exist anywhere in the cluster, so a fleet grid on one node
//! shows the desktops that connected to the others (and the ids added from a page on another
//! node), not only its own.
//!
//! One subject for the whole cluster, `deskbridge.v1.directory`, carries rare, small messages: a
//! node lists an id when it first sees that id's desktop or when an operator adds it there
//! (`waiting`), and a node that (re)connects to NATS asks everyone (`query`) and each answers with
//! every id it knows, in chunks. Nothing per sample or per session travels here. Per-id traffic
//! still flows only on the id's own subjects, to nodes holding it: a node starts holding an id
//! when one of its grids watches it.

use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;
use deskbridge_protocol::ClientId;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};

use super::metrics::Traffic;
use super::subjects::PREFIX;
use super::Cluster;

/// Ids per message, so a node knowing 10,000 ids answers a query in 20 messages of ~35 kB.
const CHUNK: usize = 500;

/// A node's list of ids it knows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Message)]
#[rtype(result = "()")]
pub struct Listing {
    pub node: String,
    /// Ids whose desktop was seen.
    #[serde(default)]
    pub ids: Vec<ClientId>,
    /// Ids added from a page whose desktop has not connected yet.
    #[serde(default)]
    pub waiting: Vec<ClientId>,
    /// The sender (re)joined: every node answers with all it knows.
    #[serde(default)]
    pub query: bool,
}

fn subject() -> String {
    format!("{PREFIX}.directory")
}

/// Publishes what this node knows (in chunks); `query` asks the others to answer in kind.
pub fn publish(node: &Cluster, ids: &[ClientId], waiting: &[ClientId], query: bool) {
    let mut chunks: Vec<Listing> = ids
        .chunks(CHUNK)
        .map(|ids| Listing {
            ids: ids.to_vec(),
            ..Listing::default()
        })
        .chain(waiting.chunks(CHUNK).map(|waiting| Listing {
            waiting: waiting.to_vec(),
            ..Listing::default()
        }))
        .collect();
    if chunks.is_empty() && query {
        chunks.push(Listing::default());
    }
    for mut chunk in chunks {
        chunk.node = node.node_id().to_owned();
        chunk.query = query;
        // Plain structs of strings always serialize.
        if let Ok(payload) = serde_json::to_vec(&chunk) {
            node.publisher
                .publish(subject().into(), Bytes::from(payload), Traffic::State);
        }
    }
}

/// Subscribes to the directory and hands every other node's listing to `to` (the matchmaker),
/// until the relay stops. A malformed or oversized listing is logged and skipped.
pub fn listen(node: Arc<Cluster>, to: Recipient<Listing>) {
    tokio::spawn(async move {
        let mut subscription = match node.client.subscribe(subject()).await {
            Ok(subscription) => subscription,
            Err(e) => {
                log::warn!("cluster: cannot subscribe to the desktop directory: {e}");
                return;
            }
        };
        while let Some(message) = subscription.next().await {
            node.metrics.received(Traffic::State);
            if message.payload.len() > node.max_message_size.max(64 * 1024) {
                log::warn!(
                    "cluster: a directory listing of {} bytes was skipped",
                    message.payload.len()
                );
                continue;
            }
            match serde_json::from_slice::<Listing>(&message.payload) {
                Ok(listing) if listing.node != node.node_id() => {
                    if to.try_send(listing).is_err() && !to.connected() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => log::warn!("cluster: a malformed directory listing was skipped: {e}"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_round_trip_and_default_what_older_nodes_leave_out() {
        let listing = Listing {
            node: "a".into(),
            ids: vec![ClientId::new("x").unwrap()],
            waiting: vec![],
            query: true,
        };
        let text = serde_json::to_string(&listing).unwrap();
        assert_eq!(serde_json::from_str::<Listing>(&text).unwrap(), listing);
        let minimal: Listing = serde_json::from_str(r#"{"node":"b"}"#).unwrap();
        assert!(minimal.ids.is_empty() && !minimal.query);
    }
}
