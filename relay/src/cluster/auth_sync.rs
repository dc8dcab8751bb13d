//! Share links and sign-outs across the cluster: every node knows every live link and every
//! runtime revocation, so a link made on one node opens on any other, and revoking a link or
//! signing out on one node closes its connections on all of them within moments.
//!
//! ```text
//! deskbridge.auth.v1.events   an AuthEvent (JSON) per change made on a node, to all others
//! deskbridge.auth.v1.sync     request/reply: every node answers with its AuthSnapshot (JSON)
//! ```
//!
//! A node asks for the others' state once it is connected (at start, and after every
//! reconnection) and then every [`RESYNC`], merging every answer that arrives within the request
//! timeout: merging is a union (see `auth::live`), so a node that missed an event while NATS was
//! away agrees again at the next exchange. Own events never come back (the connection is
//! `no_echo`).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::broadcast::error::RecvError;

use super::Cluster;
use crate::auth::events::{AuthEvent, AuthSnapshot};
use crate::auth::Authenticator;

/// Changes made on a node.
pub const EVENTS: &str = "deskbridge.auth.v1.events";
/// Asking every node for its state.
pub const SYNC: &str = "deskbridge.auth.v1.sync";
/// How often a node asks again, to heal what it missed.
pub const RESYNC: Duration = Duration::from_secs(30);

/// Runs until the relay shuts down (`shutdown` becomes true): publishes local changes, applies the
/// others', answers and asks for state. It must end while the runtime is still there, since the
/// NATS subscriptions unsubscribe on drop.
pub async fn run(
    cluster: Arc<Cluster>,
    auth: Arc<Authenticator>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    tokio::select! {
        _ = shutdown.wait_for(|down| *down) => {}
        _ = serve(cluster.clone(), auth.clone()) => {}
    }
}

async fn serve(cluster: Arc<Cluster>, auth: Arc<Authenticator>) {
    let client = cluster.client.clone();
    let (mut events, mut requests) = match (
        client.subscribe(EVENTS).await,
        client.subscribe(SYNC).await,
    ) {
        (Ok(events), Ok(requests)) => (events, requests),
        (Err(e), _) | (_, Err(e)) => {
            log::error!("cluster: cannot subscribe to share link updates ({e}); links made on other nodes will not open here");
            return;
        }
    };
    let mut local = auth.events();
    let asking = ask_now_and_then(cluster.clone(), auth.clone());
    tokio::pin!(asking);
    loop {
        tokio::select! {
            _ = &mut asking => return,
            change = local.recv() => match change {
                Ok(event) => publish(&cluster, &event).await,
                Err(RecvError::Lagged(missed)) => {
                    log::warn!("cluster: {missed} share link updates were not sent at once; the next exchange brings them");
                }
                Err(RecvError::Closed) => return,
            },
            Some(message) = events.next() => match serde_json::from_slice::<AuthEvent>(&message.payload) {
                Ok(event) => auth.apply(event),
                Err(e) => log::warn!("cluster: ignored a share link update that is not valid: {e}"),
            },
            Some(request) = requests.next() => {
                let Some(reply) = request.reply else { continue };
                match serde_json::to_vec(&auth.snapshot()) {
                    Ok(body) => {
                        if let Err(e) = client.publish(reply, body.into()).await {
                            log::warn!("cluster: cannot answer a share link sync request: {e}");
                        }
                    }
                    Err(e) => log::warn!("cluster: cannot encode the share links: {e}"),
                }
            }
            else => return,
        }
    }
}

async fn publish(cluster: &Cluster, event: &AuthEvent) {
    let body = match serde_json::to_vec(event) {
        Ok(body) => body,
        Err(e) => {
            log::warn!("cluster: cannot encode a share link update: {e}");
            return;
        }
    };
    // Sent at once (not through the telemetry queue): a revocation must not wait behind samples.
    if let Err(e) = cluster.client.publish(EVENTS, body.into()).await {
        log::warn!("cluster: cannot send a share link update ({e}); the next exchange brings it");
    }
}

/// Asks for every node's state as soon as NATS is reachable, then every [`RESYNC`] and after
/// every reconnection.
async fn ask_now_and_then(cluster: Arc<Cluster>, auth: Arc<Authenticator>) {
    let mut was_connected = false;
    let mut since_last = RESYNC;
    let step = Duration::from_millis(100);
    loop {
        let connected = cluster.is_connected();
        if connected && (!was_connected || since_last >= RESYNC) {
            ask(&cluster, &auth).await;
            since_last = Duration::ZERO;
        }
        was_connected = connected;
        tokio::time::sleep(step).await;
        since_last += step;
    }
}

/// One request to every node; merges every answer that comes within the request timeout.
async fn ask(cluster: &Cluster, auth: &Authenticator) {
    let client = &cluster.client;
    let inbox = client.new_inbox();
    let mut answers = match client.subscribe(inbox.clone()).await {
        Ok(answers) => answers,
        Err(e) => {
            log::warn!("cluster: cannot ask for the share links: {e}");
            return;
        }
    };
    if let Err(e) = client
        .publish_with_reply(SYNC, inbox, bytes::Bytes::new())
        .await
    {
        log::warn!("cluster: cannot ask for the share links: {e}");
        return;
    }
    let deadline = tokio::time::Instant::now() + cluster.request_timeout;
    let mut nodes = 0;
    while let Ok(Some(answer)) = tokio::time::timeout_at(deadline, answers.next()).await {
        match serde_json::from_slice::<AuthSnapshot>(&answer.payload) {
            Ok(snapshot) => {
                nodes += 1;
                auth.merge(snapshot);
            }
            Err(e) => log::warn!("cluster: ignored a share link list that is not valid: {e}"),
        }
    }
    log::debug!("cluster: share links merged from {nodes} nodes");
}
