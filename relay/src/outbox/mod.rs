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
//! hold more frames ([`Outbox::raise_limit`]), since it carries every watched desktop's samples.
//!
//! Beside the queue live the two decisions every relaying path shares: [`fanout`] (one frame to
//! every viewer) and [`command`] (what happens to a command for a desktop).

pub mod command;
pub mod fanout;

use std::sync::atomic::{AtomicUsize, Ordering};
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
}

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

/// Drains `rx` into the socket until a `Close` frame is written, the client goes away, or `abort`
/// fires (the session ended and its grace period for flushing is over).
pub async fn run_writer(
    mut session: Session,
    mut rx: mpsc::Receiver<Outbound>,
    abort: oneshot::Receiver<()>,
) {
    let drain = async move {
        while let Some(frame) = rx.recv().await {
            let written = match frame {
                Outbound::Text(text) => session.text(text).await,
                Outbound::Ping(payload) => session.ping(payload).await,
                Outbound::Pong(payload) => session.pong(&payload).await,
                Outbound::Close(reason) => {
                    let _ = session.close(Some(reason)).await;
                    return;
                }
            };
            if written.is_err() {
                return; // the client is gone; the reading side notices too
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
}
