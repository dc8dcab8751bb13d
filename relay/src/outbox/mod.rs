//! A session's bounded send queue and the task that drains it into the socket.
//!
//! Peers hold an [`Outbox`] and push frames straight into it, so relaying a message touches neither
//! the matchmaker nor the receiving session's actor. The queue is bounded: telemetry is dropped
//! (and counted) once it is three-quarters full, so a slow viewer cannot grow the relay's memory or
//! hold up anyone else, while replies and control frames may still use the last quarter.
//!
//! A fleet connection (one signed-in grid watching many desktops) holds one queue but joins each
//! desktop's room with a *forwarding* clone of its outbox ([`Outbox::forwarding`]): frames the
//! fan-out sends through it are wrapped in `forward` with that desktop's id. Its queue may also
//! hold more frames ([`Outbox::raise_limit`]), since it carries every watched desktop's samples,
//! and it is written in batches ([`Outbox::batch_writes`]): what arrives within [`BATCH_WINDOW`]
//! of a first frame goes out in one write, so a grid of a thousand desktops reporting at their own
//! moments wakes the relay's writer ten times a second instead of once a frame. A grid card
//! refreshed every 5 s does not show 100 ms; a detail view's live chart, written frame by frame,
//! would, and is not batched.
//!
//! Beside the queue live the two decisions every relaying path shares: [`fanout`] (one frame to
//! every viewer) and [`command`] (what happens to a command for a desktop).

pub mod command;
pub mod fanout;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_ws::{CloseReason, Session};
use bytestring::ByteString;
use tokio::sync::{mpsc, oneshot};

use crate::metrics::DropReason;

/// Identifies one WebSocket session for as long as the process runs.
pub type SessionId = u64;

/// One frame waiting to be written to a client.
#[derive(Debug)]
pub enum Outbound {
    Text(ByteString),
    Ping(&'static [u8]),
    Pong(actix_web::web::Bytes),
    Close(CloseReason),
}

/// Why a frame could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// Queue too full for this kind of frame; the client is slow or stuck.
    Full(DropReason),
    /// The session is gone.
    Closed,
}

/// The sending half of a session's queue; cheap to clone, held by peers and the matchmaker.
#[derive(Debug, Clone)]
pub struct Outbox {
    session: SessionId,
    tx: mpsc::Sender<Outbound>,
    /// Frames this queue may hold now: at most the channel's bound, raised for a fleet
    /// connection. Shared by every clone, so raising it applies to all.
    limit: Arc<AtomicUsize>,
    /// For a fleet connection's clone in one desktop's room: the `forward` prefix of that id.
    forward: Option<Arc<str>>,
    /// Whether the writer batches: shared with it and with every clone.
    batch: Arc<AtomicBool>,
}

/// How long a batching writer gathers frames after the first one before writing them all.
pub const BATCH_WINDOW: Duration = Duration::from_millis(100);

impl Outbox {
    /// Creates the queue for `session` with room for `capacity` frames (at least 4), which
    /// [`Outbox::raise_limit`] may raise up to `most` later. The channel allocates as frames
    /// arrive, so a high `most` costs nothing until it is used.
    pub fn new(
        session: SessionId,
        capacity: usize,
        most: usize,
    ) -> (Self, mpsc::Receiver<Outbound>) {
        let capacity = capacity.max(4);
        let (tx, rx) = mpsc::channel(most.max(capacity));
        let outbox = Self {
            session,
            tx,
            limit: Arc::new(AtomicUsize::new(capacity)),
            forward: None,
            batch: Arc::default(),
        };
        (outbox, rx)
    }

    pub fn session(&self) -> SessionId {
        self.session
    }

    /// Lets this queue hold up to `capacity` frames (bounded by the channel's `most`).
    pub fn raise_limit(&self, capacity: usize) {
        self.limit
            .store(capacity.min(self.tx.max_capacity()), Ordering::Relaxed);
    }

    /// From now on its writer gathers frames for [`BATCH_WINDOW`] after the first and writes them
    /// together (a fleet connection; see the module docs).
    pub fn batch_writes(&self) {
        self.batch.store(true, Ordering::Relaxed);
    }

    /// The flag [`run_writer`] reads to know whether to batch.
    pub fn pacing(&self) -> Pacing {
        Pacing(self.batch.clone())
    }

    /// A clone that the fan-out wraps in `forward` frames with `prefix` (see
    /// [`deskbridge_protocol::forward_prefix`]): a fleet connection's seat in one desktop's room.
    pub fn forwarding(&self, prefix: Arc<str>) -> Self {
        Self {
            forward: Some(prefix),
            ..self.clone()
        }
    }

    /// The `forward` prefix the fan-out wraps frames in, for a fleet connection's clone.
    pub fn forward_prefix(&self) -> Option<&str> {
        self.forward.as_deref()
    }

    /// Frames queued and not yet written.
    fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Queues superseded-by-the-next data (cpu samples): refused while the queue is above the
    /// telemetry limit (three quarters of its limit).
    pub fn send_telemetry(&self, frame: ByteString) -> Result<(), SendError> {
        let limit = self.limit.load(Ordering::Relaxed);
        if self.queued() >= limit - limit / 4 {
            return Err(if self.tx.is_closed() {
                SendError::Closed
            } else {
                SendError::Full(DropReason::QueueFull)
            });
        }
        self.send(Outbound::Text(frame))
    }

    /// Queues a frame that must not be dropped quietly (replies, commands, control); fails only
    /// if the queue is completely full or the session is gone.
    pub fn send(&self, frame: Outbound) -> Result<(), SendError> {
        if self.tx.is_closed() {
            return Err(SendError::Closed);
        }
        if self.queued() >= self.limit.load(Ordering::Relaxed) {
            return Err(SendError::Full(DropReason::StuckClient));
        }
        self.tx.try_send(frame).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::Full(DropReason::StuckClient),
            mpsc::error::TrySendError::Closed(_) => SendError::Closed,
        })
    }

    /// Queues a text frame with [`Outbox::send`].
    pub fn send_text(&self, text: impl Into<ByteString>) -> Result<(), SendError> {
        self.send(Outbound::Text(text.into()))
    }
}

/// Whether a writer batches; see [`Outbox::batch_writes`].
#[derive(Debug, Clone)]
pub struct Pacing(Arc<AtomicBool>);

/// Where a writer puts frames: the client's WebSocket, or a recording in this module's tests.
pub(crate) trait FrameSink {
    /// Writes one frame; an error once the client is gone.
    async fn write(&mut self, frame: Outbound) -> Result<(), actix_ws::Closed>;
}

impl FrameSink for Session {
    async fn write(&mut self, frame: Outbound) -> Result<(), actix_ws::Closed> {
        match frame {
            Outbound::Text(text) => self.text(text).await,
            Outbound::Ping(payload) => self.ping(payload).await,
            Outbound::Pong(payload) => self.pong(&payload).await,
            Outbound::Close(reason) => self.clone().close(Some(reason)).await,
        }
    }
}

/// Drains `rx` into the socket until a `Close` frame is written, the client goes away, or `abort`
/// fires (the session ended and its grace period for flushing is over). Everything queued when
/// the writer wakes is handed to the socket before it yields, so the connection's dispatcher
/// writes it in one go; a batching writer (`pacing`) first waits [`BATCH_WINDOW`] after the frame
/// that woke it, and senders meanwhile do not wake it again (tokio's channel wakes a receiver once
/// per wait).
pub(crate) async fn run_writer(
    mut socket: impl FrameSink,
    mut rx: mpsc::Receiver<Outbound>,
    abort: oneshot::Receiver<()>,
    pacing: Pacing,
) {
    let drain = async move {
        while let Some(first) = rx.recv().await {
            if pacing.0.load(Ordering::Relaxed) && !matches!(first, Outbound::Close(_)) {
                tokio::time::sleep(BATCH_WINDOW).await;
            }
            let mut next = Some(first);
            while let Some(frame) = next.take() {
                let close = matches!(frame, Outbound::Close(_));
                if socket.write(frame).await.is_err() || close {
                    return; // gone (the reading side notices too), or closed
                }
                next = rx.try_recv().ok();
            }
        }
    };
    tokio::select! {
        _ = drain => {}
        _ = abort => {}
    }
}

/// How long a closing session may take to flush its last frames to a slow client.
pub const FLUSH_GRACE: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telemetry_stops_at_the_limit_but_control_frames_still_fit() {
        let (outbox, mut rx) = Outbox::new(1, 8, 8);
        let mut queued = 0;
        while outbox.send_telemetry(ByteString::from_static("{}")).is_ok() {
            queued += 1;
        }
        assert_eq!(queued, 6, "8 slots minus a quarter kept for control frames");
        assert_eq!(
            outbox.send_telemetry(ByteString::from_static("{}")),
            Err(SendError::Full(DropReason::QueueFull))
        );
        assert!(outbox.send_text("reply").is_ok());
        assert!(outbox.send_text("reply").is_ok());
        assert_eq!(
            outbox.send_text("reply"),
            Err(SendError::Full(DropReason::StuckClient))
        );
        rx.close();
        while rx.try_recv().is_ok() {}
        assert_eq!(outbox.send_text("x"), Err(SendError::Closed));
    }

    #[test]
    fn a_raised_limit_holds_more_and_applies_to_every_clone() {
        let (outbox, _rx) = Outbox::new(1, 8, 64);
        let clone = outbox.forwarding(Arc::from("prefix"));
        let mut queued = 0;
        while clone.send_telemetry(ByteString::from_static("{}")).is_ok() {
            queued += 1;
        }
        assert_eq!(queued, 6);
        outbox.raise_limit(1000);
        while clone.send_telemetry(ByteString::from_static("{}")).is_ok() {
            queued += 1;
        }
        assert_eq!(queued, 48, "bounded by the channel: 64 less a quarter");
        assert_eq!(clone.forward_prefix(), Some("prefix"));
        assert_eq!(outbox.forward_prefix(), None);
    }

    /// Records what a writer wrote and when, on tokio's paused clock.
    struct Recorder {
        start: tokio::time::Instant,
        writes: std::rc::Rc<std::cell::RefCell<Vec<(u64, String)>>>,
    }

    impl FrameSink for Recorder {
        async fn write(&mut self, frame: Outbound) -> Result<(), actix_ws::Closed> {
            let what = match frame {
                Outbound::Text(text) => text.to_string(),
                Outbound::Close(_) => "close".to_owned(),
                other => format!("{other:?}"),
            };
            let ms = self.start.elapsed().as_millis() as u64;
            self.writes.borrow_mut().push((ms, what));
            Ok(())
        }
    }

    /// Sends a, b, c 30 ms apart, d 200 ms after c, then a close 200 ms later; returns what was
    /// written at which millisecond.
    async fn written(batch: bool) -> Vec<(u64, String)> {
        let (outbox, rx) = Outbox::new(1, 16, 16);
        if batch {
            outbox.batch_writes();
        }
        let (_abort, abort_rx) = oneshot::channel();
        let writes = std::rc::Rc::default();
        let recorder = Recorder {
            start: tokio::time::Instant::now(),
            writes: std::rc::Rc::clone(&writes),
        };
        let script = async {
            let ms = |n| tokio::time::sleep(Duration::from_millis(n));
            for text in ["a", "b", "c"] {
                outbox.send_text(text).unwrap();
                ms(30).await;
            }
            ms(170).await;
            outbox.send_text("d").unwrap();
            ms(200).await;
            let normal = CloseReason::from(actix_ws::CloseCode::Normal);
            outbox.send(Outbound::Close(normal)).unwrap();
        };
        tokio::join!(run_writer(recorder, rx, abort_rx, outbox.pacing()), script);
        writes.take()
    }

    #[tokio::test(start_paused = true)]
    async fn a_batching_writer_writes_what_came_within_its_window_together() {
        let at = |ms: u64, what: &str| (ms, what.to_owned());
        assert_eq!(
            written(true).await,
            [
                at(100, "a"),
                at(100, "b"),
                at(100, "c"),
                at(360, "d"),
                at(460, "close")
            ],
            "gathered for 100 ms after the first frame; a close goes at once"
        );
        assert_eq!(
            written(false).await,
            [
                at(0, "a"),
                at(30, "b"),
                at(60, "c"),
                at(260, "d"),
                at(460, "close")
            ],
            "a viewer's writer writes each frame as it comes"
        );
    }
}
