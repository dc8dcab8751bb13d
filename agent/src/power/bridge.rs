//! From an operating system's power callback, on a thread of its own, to the agent on the actix
//! runtime — and back, so the callback can hold the machine until the relay has been told.
//!
//! macOS (IOKit) and Windows (a window procedure) announce a sleep by calling a function on the
//! thread that registered for it, and go ahead when that function returns (Windows) or when it
//! allows the change (macOS). The agent's `going_away` must leave before then, so the callback
//! blocks on [`Bridge::going_away`] until the agent answers — never longer than the limit it
//! gives, so a stuck connection cannot hold up the machine.
//!
//! The OS thread never touches actix: it sends an [`Event`] down a channel, and [`forward`], a
//! task on the runtime, hands it to the agent.

use std::sync::mpsc;
use std::time::Duration;

use actix::Recipient;
use deskbridge_protocol::OfflineReason;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::agent::{GoingAway, Woke};

/// What the OS thread tells the runtime.
enum Event {
    /// Going away for this reason; answer on the sender once the agent has closed.
    GoingAway(OfflineReason, mpsc::SyncSender<()>),
    Woke,
}

/// The OS thread's end. Cheap to clone; usable from any thread.
#[derive(Clone)]
pub struct Bridge {
    events: UnboundedSender<Event>,
}

/// The runtime's end, consumed by [`forward`].
pub struct Inbox {
    events: UnboundedReceiver<Event>,
}

/// A connected pair of ends.
pub fn bridge() -> (Bridge, Inbox) {
    let (events, inbox) = unbounded_channel();
    (Bridge { events }, Inbox { events: inbox })
}

impl Bridge {
    /// Tells the agent the machine is going away and blocks the calling (OS) thread until the
    /// agent has closed its connection, or `limit` has passed. Returns whether the agent
    /// answered in time. Must not be called on the runtime's own thread.
    pub fn going_away(&self, reason: OfflineReason, limit: Duration) -> bool {
        let (done, answer) = mpsc::sync_channel(1);
        if self.events.send(Event::GoingAway(reason, done)).is_err() {
            return false;
        }
        answer.recv_timeout(limit).is_ok()
    }

    /// Tells the agent the machine woke up. Never blocks.
    pub fn woke(&self) {
        let _ = self.events.send(Event::Woke);
    }
}

/// Starts the thread an operating system's power callbacks run on, and waits for it to say it
/// is watching: `run` sends `Some(handle)` (what stops it) once registered, or `None` when the
/// platform refused (logged by `run`). `None` too when the thread cannot be started.
#[cfg(any(target_os = "macos", windows))]
pub fn start_thread<T: Send + 'static>(
    run: impl FnOnce(mpsc::SyncSender<Option<T>>) + Send + 'static,
) -> Option<T> {
    let (started, handle) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("power-events".into())
        .spawn(move || run(started));
    if let Err(e) = spawned {
        log::warn!("cannot start the thread that watches sleep and shutdown: {e}");
        return None;
    }
    handle.recv().ok().flatten()
}

/// Hands every event to the agent until the [`Bridge`] is gone.
pub async fn forward(mut inbox: Inbox, going: Recipient<GoingAway>, woke: Recipient<Woke>) {
    while let Some(event) = inbox.events.recv().await {
        match event {
            Event::GoingAway(reason, done) => {
                let _ = going.send(GoingAway(reason)).await;
                let _ = done.send(());
            }
            Event::Woke => woke.do_send(Woke),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use actix::prelude::*;

    use super::*;

    /// Stands in for the agent: records what it was told, and takes its time closing.
    struct Recorder {
        seen: Arc<Mutex<Vec<String>>>,
        closing: Duration,
    }

    impl Actor for Recorder {
        type Context = Context<Self>;
    }

    impl Handler<GoingAway> for Recorder {
        type Result = ResponseFuture<()>;

        fn handle(&mut self, going: GoingAway, _: &mut Self::Context) -> Self::Result {
            let seen = self.seen.clone();
            let closing = self.closing;
            Box::pin(async move {
                actix::clock::sleep(closing).await;
                seen.lock().unwrap().push(format!("gone {}", going.0));
            })
        }
    }

    impl Handler<Woke> for Recorder {
        type Result = ();

        fn handle(&mut self, _: Woke, _: &mut Self::Context) {
            self.seen.lock().unwrap().push("woke".into());
        }
    }

    fn start(closing: Duration) -> (Bridge, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorder = Recorder {
            seen: seen.clone(),
            closing,
        }
        .start();
        let (bridge, inbox) = bridge();
        actix::spawn(forward(
            inbox,
            recorder.clone().recipient(),
            recorder.recipient(),
        ));
        (bridge, seen)
    }

    #[actix::test]
    async fn the_os_thread_waits_until_the_agent_has_closed() {
        let (bridge, seen) = start(Duration::from_millis(200));
        let on_os_thread = bridge.clone();
        let (answered, seen_then) = actix::clock::timeout(
            Duration::from_secs(10),
            tokio::task::spawn_blocking({
                let seen = seen.clone();
                move || {
                    let answered =
                        on_os_thread.going_away(OfflineReason::Sleep, Duration::from_secs(5));
                    (answered, seen.lock().unwrap().clone())
                }
            }),
        )
        .await
        .unwrap()
        .unwrap();
        assert!(answered);
        // By the time the callback returns, the agent has finished closing.
        assert_eq!(seen_then, vec!["gone sleep".to_string()]);

        bridge.woke();
        actix::clock::timeout(Duration::from_secs(5), async {
            while seen.lock().unwrap().len() < 2 {
                actix::clock::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
        assert_eq!(seen.lock().unwrap()[1], "woke");
    }

    #[actix::test]
    async fn a_slow_agent_never_holds_the_machine_past_the_limit() {
        let (bridge, _seen) = start(Duration::from_secs(30));
        let answered = tokio::task::spawn_blocking(move || {
            bridge.going_away(OfflineReason::Shutdown, Duration::from_millis(100))
        })
        .await
        .unwrap();
        assert!(!answered);
    }

    #[test]
    fn without_a_runtime_going_away_returns_at_once() {
        let (bridge, inbox) = bridge();
        drop(inbox);
        assert!(!bridge.going_away(OfflineReason::Sleep, Duration::from_secs(30)));
    }
}
