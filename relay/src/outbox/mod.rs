//! A session's bounded send queue and the task that drains it into the socket.
//!
//! Peers hold an [`Outbox`] and push frames straight into it, so relaying a message touches neither
//! the matchmaker nor the receiving session's actor. The queue is bounded: telemetry is dropped
//! (and counted) once it is three-quarters full, so a slow viewer cannot grow the relay's memory or
//! hold up anyone else, while replies and control frames may still use the last quarter.
//!
//! Beside the queue live the two decisions every relaying path shares: [`fanout`] (one frame to
//! every viewer) and [`command`] (what happens to a command for a desktop).

pub mod command;
pub mod fanout;

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
    /// Free slots that must remain for a telemetry frame to be queued.
    headroom: usize,
}

impl Outbox {
    /// Creates the queue for `session` with room for `capacity` frames (at least 4).
    pub fn new(session: SessionId, capacity: usize) -> (Self, mpsc::Receiver<Outbound>) {
        let capacity = capacity.max(4);
        let (tx, rx) = mpsc::channel(capacity);
        let outbox = Self {
            session,
            tx,
            headroom: capacity / 4,
        };
        (outbox, rx)
    }

    pub fn session(&self) -> SessionId {
        self.session
    }

    /// Queues superseded-by-the-next data (cpu samples): refused while the queue is above the
    /// telemetry limit.
    pub fn send_telemetry(&self, frame: ByteString) -> Result<(), SendError> {
        if self.tx.capacity() <= self.headroom {
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
        let (outbox, mut rx) = Outbox::new(1, 8);
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
}
