//! A bound on WebSocket frames enforced from their headers, beneath the codec.
//!
//! actix-http's frame parser compares a frame's declared length with its limit only once the whole
//! payload is buffered, and actix-ws's `MessageStream` keeps reading into its own buffer
//! meanwhile: a client that declares a 1 GiB frame and streams bytes would be buffered byte by
//! byte. [`FrameGuard`] sits between the HTTP connection's payload and `actix_ws`: it follows the
//! frame boundaries of the raw byte stream (reading only headers, skipping payloads by count) and
//! ends the stream with a [`FrameRefused`] error the moment a header declares a frame — or a
//! fragmented message — larger than the limit, or sets a reserved bit. The session maps that error
//! to its close code (1009 or 1002).
//!
//! It also passes at most one chunk of the connection per poll, so the message stream decodes what
//! it has before reading more: a connection never holds more than about one maximum message plus
//! one read buffer, however fast its client writes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::error::PayloadError;
use actix_ws::ProtocolError;
use bytes::Bytes;
use futures_util::Stream;

/// Why the guard ended a connection's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameRefused {
    /// A frame header declared a payload over the limit.
    #[error("a frame declared {declared} bytes, more than the {limit} allowed")]
    FrameTooLarge { declared: u64, limit: usize },
    /// The frames of one fragmented message add up to more than the limit.
    #[error("a fragmented message reached {declared} bytes, more than the {limit} allowed")]
    MessageTooLarge { declared: u64, limit: usize },
    /// RSV1–3 set without a negotiated extension (the relay negotiates none).
    #[error("a frame has reserved bits set, and no extension was negotiated")]
    ReservedBits,
}

impl FrameRefused {
    /// The guard's verdict inside an error from actix-ws's stream, if that is what ended it.
    ///
    /// actix-ws wraps payload errors as `ProtocolError::Io(io::Error::other(PayloadError))`, and
    /// the guard puts itself inside `PayloadError::Io`: unwrap both layers.
    pub fn of(error: &ProtocolError) -> Option<FrameRefused> {
        let ProtocolError::Io(outer) = error else {
            return None;
        };
        match outer.get_ref()?.downcast_ref::<PayloadError>()? {
            PayloadError::Io(inner) => inner.get_ref()?.downcast_ref::<FrameRefused>().copied(),
            _ => None,
        }
    }

    /// Whether this is a size violation (close 1009) rather than a protocol violation (1002).
    pub fn is_size(&self) -> bool {
        !matches!(self, FrameRefused::ReservedBits)
    }
}

/// Where the guard is in the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Collecting a frame header; `have` bytes of it are in `header`.
    Header { have: usize },
    /// Inside a payload: this many bytes until the next header.
    Payload { left: u64 },
}

/// The longest frame header: 2 bytes, 8 of extended length, 4 of mask.
const MAX_HEADER: usize = 14;

/// Follows frame boundaries and refuses frames by their headers. Plain state machine, no I/O.
#[derive(Debug)]
pub struct FrameBounds {
    limit: usize,
    position: Position,
    header: [u8; MAX_HEADER],
    /// Bytes so far of the fragmented data message in progress, if one is.
    fragmented: Option<u64>,
}

impl FrameBounds {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            position: Position::Header { have: 0 },
            header: [0; MAX_HEADER],
            fragmented: None,
        }
    }

    /// Reads `chunk` (the next bytes of the connection); an error as soon as a header breaks a
    /// bound. Payload bytes are skipped by count, never inspected.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<(), FrameRefused> {
        while !chunk.is_empty() {
            match self.position {
                Position::Payload { left } => {
                    let skip = usize::try_from(left).unwrap_or(usize::MAX).min(chunk.len());
                    chunk = &chunk[skip..];
                    self.advance_payload(left - skip as u64);
                }
                Position::Header { have } => {
                    let take = (MAX_HEADER - have).min(chunk.len());
                    self.header[have..have + take].copy_from_slice(&chunk[..take]);
                    let have = have + take;
                    match self.parse_header(have)? {
                        Some((header_len, payload)) => {
                            // Give back what belonged to the payload.
                            chunk = &chunk[take - (have - header_len)..];
                            self.advance_payload(payload);
                        }
                        None => {
                            self.position = Position::Header { have };
                            chunk = &chunk[take..];
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn advance_payload(&mut self, left: u64) {
        self.position = if left == 0 {
            Position::Header { have: 0 }
        } else {
            Position::Payload { left }
        };
    }

    /// With `have` header bytes: `None` if more are needed, else the header's length and its
    /// payload length, once the bounds are checked.
    fn parse_header(&mut self, have: usize) -> Result<Option<(usize, u64)>, FrameRefused> {
        if have < 2 {
            return Ok(None);
        }
        let (first, second) = (self.header[0], self.header[1]);
        if first & 0x70 != 0 {
            return Err(FrameRefused::ReservedBits);
        }
        let (length_bytes, short) = match second & 0x7f {
            126 => (2, None),
            127 => (8, None),
            n => (0, Some(u64::from(n))),
        };
        let mask_bytes = if second & 0x80 != 0 { 4 } else { 0 };
        let header_len = 2 + length_bytes + mask_bytes;
        if have < 2 + length_bytes {
            return Ok(None);
        }
        let declared = short.unwrap_or_else(|| {
            self.header[2..2 + length_bytes]
                .iter()
                .fold(0u64, |n, b| (n << 8) | u64::from(*b))
        });
        // Refuse on the length alone, before waiting for the mask.
        let limit = self.limit as u64;
        if declared > limit {
            return Err(FrameRefused::FrameTooLarge {
                declared,
                limit: self.limit,
            });
        }
        if have < header_len {
            return Ok(None);
        }
        let fin = first & 0x80 != 0;
        let opcode = first & 0x0f;
        let is_control = opcode & 0x08 != 0;
        if !is_control {
            // Data frames: a new message (text/binary) or a continuation of one.
            let so_far = if opcode == 0 {
                self.fragmented.unwrap_or(0)
            } else {
                0
            };
            let total = so_far + declared;
            if total > limit {
                return Err(FrameRefused::MessageTooLarge {
                    declared: total,
                    limit: self.limit,
                });
            }
            self.fragmented = (!fin).then_some(total);
        }
        Ok(Some((header_len, declared)))
    }
}

/// The connection's payload stream, bounded by [`FrameBounds`].
pub struct FrameGuard<S> {
    /// `None` once refused: dropping the connection's payload tells the HTTP dispatcher that
    /// nobody will read it, so it stops buffering the rest of the declared frame.
    inner: Option<S>,
    bounds: FrameBounds,
    /// A chunk was just passed on: yield once before reading more (see the module docs).
    passed: bool,
}

impl<S> FrameGuard<S> {
    pub fn new(inner: S, limit: usize) -> Self {
        Self {
            inner: Some(inner),
            bounds: FrameBounds::new(limit),
            passed: false,
        }
    }
}

impl<S> Stream for FrameGuard<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if this.passed {
            // Let the reader decode what it has; it is woken at once to read on.
            this.passed = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match Pin::new(inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => match this.bounds.feed(&chunk) {
                Ok(()) => {
                    this.passed = true;
                    Poll::Ready(Some(Ok(chunk)))
                }
                Err(refused) => {
                    this.inner = None;
                    let error = io::Error::new(io::ErrorKind::InvalidData, refused);
                    Poll::Ready(Some(Err(PayloadError::Io(error))))
                }
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame header: FIN, opcode, masked, with the given declared length.
    fn header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
        deskbridge_testkit::raw::frame_header((u8::from(fin) << 7) | opcode, len)
    }

    fn frame(fin: bool, opcode: u8, len: usize) -> Vec<u8> {
        let mut out = header(fin, opcode, len as u64);
        out.extend(std::iter::repeat_n(b'x', len));
        out
    }

    #[test]
    fn frames_within_the_limit_pass_in_any_split() {
        let mut stream = Vec::new();
        for (fin, op, len) in [(true, 1, 10), (true, 9, 0), (true, 2, 1000), (true, 1, 125)] {
            stream.extend(frame(fin, op, len));
        }
        stream.extend(frame(true, 1, 1024));
        for split in [1, 2, 3, 7, 13, 100, stream.len()] {
            let mut bounds = FrameBounds::new(1024);
            for piece in stream.chunks(split) {
                bounds.feed(piece).unwrap();
            }
            assert_eq!(bounds.position, Position::Header { have: 0 }, "{split}");
        }
    }

    #[test]
    fn a_huge_declared_frame_is_refused_from_its_header_alone() {
        let mut bounds = FrameBounds::new(64 * 1024);
        let head = header(true, 1, 1 << 30);
        // The 8-byte length is enough: no mask, no payload needed.
        let err = bounds.feed(&head[..10]).unwrap_err();
        assert_eq!(
            err,
            FrameRefused::FrameTooLarge {
                declared: 1 << 30,
                limit: 64 * 1024
            }
        );
        // Byte by byte, too.
        let mut bounds = FrameBounds::new(64 * 1024);
        let mut result = Ok(());
        for byte in &head {
            result = bounds.feed(std::slice::from_ref(byte));
            if result.is_err() {
                break;
            }
        }
        assert!(matches!(result, Err(FrameRefused::FrameTooLarge { .. })));
    }

    #[test]
    fn fragments_count_together_and_control_frames_between_them_do_not() {
        let mut bounds = FrameBounds::new(100);
        bounds.feed(&frame(false, 1, 60)).unwrap();
        bounds.feed(&frame(true, 9, 50)).unwrap(); // a ping in between
        let err = bounds.feed(&frame(true, 0, 41)).unwrap_err();
        assert!(matches!(
            err,
            FrameRefused::MessageTooLarge { declared: 101, .. }
        ));

        let mut bounds = FrameBounds::new(100);
        bounds.feed(&frame(false, 1, 60)).unwrap();
        bounds.feed(&frame(true, 0, 40)).unwrap();
        // A finished message resets the count.
        bounds.feed(&frame(true, 1, 100)).unwrap();
    }

    #[test]
    fn reserved_bits_are_refused() {
        for rsv in [0x40, 0x20, 0x10] {
            let mut bounds = FrameBounds::new(100);
            let mut f = frame(true, 1, 5);
            f[0] |= rsv;
            assert_eq!(bounds.feed(&f), Err(FrameRefused::ReservedBits));
        }
    }

    #[test]
    fn the_verdict_is_found_inside_actix_ws_errors() {
        let refused = FrameRefused::ReservedBits;
        let payload = PayloadError::Io(io::Error::new(io::ErrorKind::InvalidData, refused));
        let wrapped = ProtocolError::Io(io::Error::other(payload));
        assert_eq!(FrameRefused::of(&wrapped), Some(refused));
        let utf8 = ProtocolError::Io(io::Error::new(io::ErrorKind::InvalidData, "bad utf-8"));
        assert_eq!(FrameRefused::of(&utf8), None);
        assert_eq!(FrameRefused::of(&ProtocolError::Overflow), None);
    }
}
