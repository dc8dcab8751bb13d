//! A bound on acknowledgements awaited at once: [`InFlight::push`] waits for earlier ones to
//! come back before it lets one more go out.
//!
//! Why: JetStream answers a connection's publishes in order, so a message published behind
//! thousands of others gets its acknowledgement only after all of them. When a minute closes, the
//! writer publishes two messages per desktop (20,000 for 10,000 desktops); unbounded, the next
//! batch's journal message waited behind all of them for more than its 5 s and the batch was
//! dropped. Folding a minute through an `InFlight` of [`FOLD_IN_FLIGHT`] keeps a journal message at
//! most that many acknowledgements behind.

use std::future::Future;

use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;

/// Most of a minute's messages awaiting their acknowledgement at once.
pub const FOLD_IN_FLIGHT: usize = 256;

/// Futures awaited together, at most `limit` at once; `ok` is whether every one finished `Ok`.
pub struct InFlight<F> {
    pending: FuturesUnordered<F>,
    limit: usize,
    pub ok: bool,
}

impl<F, T, E> InFlight<F>
where
    F: Future<Output = Result<T, E>>,
{
    pub fn new(limit: usize) -> Self {
        Self {
            pending: FuturesUnordered::new(),
            limit: limit.max(1),
            ok: true,
        }
    }

    /// Waits until fewer than the limit are pending; call before sending the next one.
    pub async fn room(&mut self) {
        while self.pending.len() >= self.limit {
            self.next().await;
        }
    }

    /// Adds one whose message was sent (after [`Self::room`]).
    pub fn push(&mut self, ack: F) {
        self.pending.push(ack);
    }

    /// Awaits every pending one; `true` if all of them (and all before) were `Ok`.
    pub async fn finish(&mut self) -> bool {
        while !self.pending.is_empty() {
            self.next().await;
        }
        self.ok
    }

    async fn next(&mut self) {
        if let Some(result) = self.pending.next().await {
            self.ok &= result.is_ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::oneshot;

    use super::*;

    #[tokio::test]
    async fn no_more_than_the_limit_go_out_before_one_comes_back() {
        let mut inflight = InFlight::new(2);
        let mut senders = Vec::new();
        for _ in 0..2 {
            let (tx, rx) = oneshot::channel::<()>();
            inflight.room().await;
            inflight.push(rx);
            senders.push(tx);
        }
        // Full: room() must not return while both are pending.
        let waited = tokio::time::timeout(Duration::from_millis(50), inflight.room()).await;
        assert!(waited.is_err(), "room() returned with 2 of 2 in flight");
        assert_eq!(inflight.pending.len(), 2);
        senders.remove(0).send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(2), inflight.room())
            .await
            .expect("room() after an acknowledgement came back");
        assert_eq!(inflight.pending.len(), 1);
        // A failed one (its sender dropped) is remembered.
        drop(senders);
        assert!(!inflight.finish().await);
        assert_eq!(inflight.pending.len(), 0);
    }

    #[tokio::test]
    async fn all_ok_is_ok() {
        let mut inflight = InFlight::new(1);
        for _ in 0..3 {
            inflight.room().await;
            inflight.push(async { Ok::<(), ()>(()) });
        }
        assert!(inflight.finish().await);
    }
}
