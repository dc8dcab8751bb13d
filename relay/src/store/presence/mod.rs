//! When each desktop was offline, and why: the store keeps every presence change a node sees of
//! its own desktops (one leaving, with its `going_away` reason or `lost`; one coming back), so a
//! history chart can say of its gap "desktop asleep 22:10–06:45" rather than only break its line.
//!
//! The same contract as samples: the matchmaker calls [`Store::presence`], one `try_send` into the
//! store's bounded queue (counted under `kind="presence"` when dropped), and never waits.
//! Written by the node that saw the change — in SQLite ([`sqlite`], table `presence`) or in
//! JetStream ([`jetstream`], stream `DESKBRIDGE_PRESENCE`) — and kept as long as the minute
//! aggregates (`--retention-minutes`), so every gap a chart can show has its reason.
//!
//! Reading folds the changes into intervals ([`intervals`]): a departure opens one, the next
//! return closes it; a later departure before any return replaces the earlier (as `presence`
//! shows the latest reason); a return with nothing open (the relay itself was down) opens none.

pub mod jetstream;
pub mod sqlite;
pub mod table;

use deskbridge_protocol::{ClientId, OfflineReason};
use serde::Serialize;

use super::metrics::Kind;
use super::record::{now_ms, Item, PresenceChange};
use super::schema::StoreError;
use super::{blocking, Backend, Store};

/// One interval a desktop was offline, as `/api/history` shows it in `offline`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Offline {
    /// When it went, Unix ms (possibly before the range asked: the interval overlaps it).
    pub from: u64,
    /// When it came back; `null` while it is still away.
    pub to: Option<u64>,
    /// `sleep`, `shutdown`, `logout`, `quit`, `update` or `lost`, as in `presence`.
    pub reason: &'static str,
}

/// A reason as stored (the protocol's word) back into its variant; a word this relay does not
/// know (written by a newer one) reads as `lost` rather than failing a query.
pub fn reason_of(word: &str) -> OfflineReason {
    match word {
        "sleep" => OfflineReason::Sleep,
        "shutdown" => OfflineReason::Shutdown,
        "logout" => OfflineReason::Logout,
        "quit" => OfflineReason::Quit,
        "update" => OfflineReason::Update,
        _ => OfflineReason::Lost,
    }
}

/// The offline intervals overlapping `[from, to)`, from a desktop's changes in time order:
/// `(ts, Some(reason))` a departure, `(ts, None)` a return. The changes may start anywhere
/// before `from` (the last one before it is enough) and those at or after `to` are ignored.
pub fn intervals(
    changes: impl IntoIterator<Item = (u64, Option<OfflineReason>)>,
    from: u64,
    to: u64,
) -> Vec<Offline> {
    let mut out = Vec::new();
    let mut open: Option<(u64, OfflineReason)> = None;
    for (ts, gone) in changes {
        if ts >= to {
            break;
        }
        match (gone, open) {
            (Some(reason), _) => open = Some((ts, reason)),
            (None, Some((went, reason))) => {
                if ts > from {
                    out.push(Offline {
                        from: went,
                        to: Some(ts),
                        reason: reason.as_str(),
                    });
                }
                open = None;
            }
            (None, None) => {}
        }
    }
    if let Some((went, reason)) = open {
        out.push(Offline {
            from: went,
            to: None,
            reason: reason.as_str(),
        });
    }
    out
}

impl Store {
    /// Queues a presence change of `id`, now: `gone` why its desktop left this node, `None` that
    /// one joined. Never blocks (a full queue drops it, counted).
    pub fn presence(&self, id: &ClientId, gone: Option<OfflineReason>) {
        self.presence_at(id, gone, now_ms());
    }

    /// [`Self::presence`] at `ts` (Unix ms) rather than now: a change learnt of after the fact.
    pub fn presence_at(&self, id: &ClientId, gone: Option<OfflineReason>, ts: u64) {
        if self.inner.is_some() {
            let change = PresenceChange {
                id: id.clone(),
                ts,
                gone,
            };
            self.offer(Item::Presence(change), Kind::Presence);
        }
    }

    /// The intervals `id` was offline overlapping `[from, to)` (Unix ms), oldest first. `None`
    /// without a store.
    pub async fn offline(
        &self,
        id: &ClientId,
        from: u64,
        to: u64,
    ) -> Result<Option<Vec<Offline>>, StoreError> {
        match &self.inner {
            None => Ok(None),
            Some(Backend::Sqlite(inner)) => {
                let (inner, id) = (inner.clone(), id.clone());
                blocking(move || {
                    inner.with_reader(|conn| sqlite::offline(conn, id.as_str(), from, to))
                })
                .await
                .map(Some)
            }
            Some(Backend::JetStream(store, ..)) => {
                jetstream::offline(store.context(), id, from, to)
                    .await
                    .map(Some)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OfflineReason::{Lost, Sleep};

    #[test]
    fn departures_and_returns_fold_into_the_intervals_of_the_range() {
        let changes = [
            (10, Some(Sleep)),
            (20, None),
            (30, Some(Lost)),
            (35, None),
            (40, None), // a return with nothing open: the relay was down, no reason known
            (50, Some(Sleep)),
            (55, Some(Lost)), // a later departure replaces the earlier, as presence does
            (60, None),
            (70, Some(Sleep)),
            (200, None), // after the range
        ];
        let got = intervals(changes, 25, 100);
        let want = [
            (30, Some(35), "lost"),
            (55, Some(60), "lost"),
            (70, None, "sleep"),
        ];
        let got: Vec<_> = got.iter().map(|o| (o.from, o.to, o.reason)).collect();
        assert_eq!(got, want);
        // An interval open when the range starts is in it, with its true start.
        let got = intervals([(10, Some(Sleep)), (20, None)], 15, 100);
        assert_eq!(
            got,
            vec![Offline {
                from: 10,
                to: Some(20),
                reason: "sleep"
            }]
        );
        assert!(intervals([(10, Some(Sleep)), (15, None)], 15, 100).is_empty());
        assert_eq!(reason_of("sleep"), Sleep);
        assert_eq!(reason_of("hibernate"), Lost, "a newer relay's word");
    }
}
