//! The frames the simulated clients send, and the cheap look at the frames they receive.
//!
//! Every `cpu` and `beep` carries the send time in an extra field, `lg_t` (nanoseconds on
//! [`crate::clock`]). The relay forwards unknown fields byte for byte, so the receiver finds the
//! stamp where the sender put it: at the very end. Receivers never run a JSON parser on relayed
//! frames, which keeps the generator's own cost per message low.

use std::fmt::Write as _;

/// Prefix of a forwarded `cpu` frame: the relay forwards our bytes unchanged.
const CPU_PREFIX: &str = r#"{"event":"cpu","#;
const BEEP_PREFIX: &str = r#"{"event":"beep","#;
const STAMP: &str = r#","lg_t":"#;

/// Builds the `cpu` frames of one desktop: a realistic 8-core sample, optional padding, a stamp.
#[derive(Debug, Clone)]
pub struct CpuFrames {
    head: String,
}

impl CpuFrames {
    /// `pad` extra bytes go into an unknown `lg_pad` field, to load the relay with bigger frames.
    pub fn new(pad: usize) -> Self {
        let mut head = String::from(
            r#"{"event":"cpu","value":23.5,"cores":[12.0,35.1,7.5,64.2,3.3,18.9,41.0,9.8],"memory":{"used":4294967296,"total":17179869184},"ts":1764093600000"#,
        );
        if pad > 0 {
            head.push_str(r#","lg_pad":""#);
            head.extend(std::iter::repeat_n('x', pad));
            head.push('"');
        }
        head.push_str(STAMP);
        Self { head }
    }

    /// The frame stamped with `t`.
    pub fn at(&self, t: u64) -> String {
        let mut s = String::with_capacity(self.head.len() + 21);
        s.push_str(&self.head);
        let _ = write!(s, "{t}}}");
        s
    }
}

/// A `beep` with a command id, stamped with `t`.
pub fn beep(id: u64, t: u64) -> String {
    format!(r#"{{"event":"beep","id":"lg-{id}"{STAMP}{t}}}"#)
}

/// The `authentication` message.
pub fn authentication(client_id: &str, mode: &str, token: Option<&str>) -> String {
    match token {
        Some(token) => format!(
            r#"{{"event":"authentication","client_id":"{client_id}","client_mode":"{mode}","token":"{token}"}}"#
        ),
        None => format!(
            r#"{{"event":"authentication","client_id":"{client_id}","client_mode":"{mode}"}}"#
        ),
    }
}

/// What a received frame is, as far as the load generator cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// One of our `cpu` frames, with its stamp.
    Cpu(u64),
    /// One of our `beep` frames, with its stamp.
    Beep(u64),
    Presence,
    /// `audience`: the interval it asks for and the timeout it states, in milliseconds (0 where
    /// absent).
    Audience {
        interval_ms: u64,
        timeout_ms: u64,
    },
    /// A `forward` on a fleet connection: one of our `cpu` frames, with its stamp.
    Forward(u64),
    Welcome,
    Error,
    /// `history` and anything else.
    Other,
}

/// Classifies a text frame by its first bytes (the relay writes its own messages with `event`
/// first, and forwards ours unchanged).
pub fn classify(text: &str) -> Incoming {
    if text.starts_with(CPU_PREFIX) {
        stamp(text).map_or(Incoming::Other, Incoming::Cpu)
    } else if text.starts_with(BEEP_PREFIX) {
        stamp(text).map_or(Incoming::Other, Incoming::Beep)
    } else if text.starts_with(r#"{"event":"presence""#) {
        Incoming::Presence
    } else if text.starts_with(r#"{"event":"audience""#) {
        let v: Option<serde_json::Value> = serde_json::from_str(text).ok();
        let field = |k: &str| {
            v.as_ref()
                .and_then(|v| v.get(k)?.as_u64())
                .unwrap_or_default()
        };
        Incoming::Audience {
            interval_ms: field("interval_ms"),
            timeout_ms: field("timeout_ms"),
        }
    } else if text.starts_with(r#"{"event":"forward""#) {
        // The wrapped frame is ours, byte for byte, and ends the `forward`: `…,"t":N}}`.
        text.strip_suffix('}')
            .and_then(stamp)
            .map_or(Incoming::Other, Incoming::Forward)
    } else if text.starts_with(r#"{"event":"error""#) {
        Incoming::Error
    } else if text.starts_with(r#"{"event":"welcome""#) {
        Incoming::Welcome
    } else {
        Incoming::Other
    }
}

/// The `lg_t` stamp at the end of a frame we built.
pub fn stamp(text: &str) -> Option<u64> {
    let at = text.rfind(STAMP)?;
    text[at + STAMP.len()..].strip_suffix('}')?.parse().ok()
}

/// The `viewers` count of a `presence` frame.
pub fn presence_viewers(text: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    v.get("viewers")?.as_u64()
}

/// The `code` of an `error` frame.
pub fn error_code(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("code")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unparsable".to_owned())
}

#[cfg(test)]
mod tests {
    use deskbridge_protocol::{parse_client_message, ClientMessage, EventKind};

    use super::*;

    #[test]
    fn cpu_frames_are_valid_v1_and_carry_their_stamp() {
        for pad in [0, 100] {
            let frame = CpuFrames::new(pad).at(987_654_321);
            let parsed = parse_client_message(&frame).unwrap();
            assert_eq!(parsed.kind(), EventKind::Cpu);
            assert_eq!(classify(&frame), Incoming::Cpu(987_654_321));
            assert!(frame.len() > pad);
        }
    }

    #[test]
    fn beeps_and_auth_are_valid_v1() {
        let frame = beep(7, 42);
        assert!(matches!(
            parse_client_message(&frame).unwrap(),
            ClientMessage::Beep(b) if b.id.as_deref() == Some("lg-7")
        ));
        assert_eq!(classify(&frame), Incoming::Beep(42));
        let auth = authentication("lg-1", "web", Some("a.b.c"));
        assert_eq!(
            parse_client_message(&auth).unwrap().kind(),
            EventKind::Authentication
        );
    }

    #[test]
    fn relay_messages_are_told_apart() {
        assert_eq!(
            classify(
                r#"{"event":"presence","client_id":"a","desktop":"online","viewers":2,"since":1}"#
            ),
            Incoming::Presence
        );
        assert_eq!(
            presence_viewers(r#"{"event":"presence","viewers":2}"#),
            Some(2)
        );
        assert_eq!(
            classify(r#"{"event":"audience","detail":0,"overview":0,"interval_ms":60000}"#),
            Incoming::Audience {
                interval_ms: 60_000,
                timeout_ms: 0
            }
        );
        assert_eq!(
            classify(
                r#"{"event":"audience","detail":0,"overview":0,"interval_ms":60000,"timeout_ms":120000}"#
            ),
            Incoming::Audience {
                interval_ms: 60_000,
                timeout_ms: 120_000
            }
        );
        let cpu = CpuFrames::new(0).at(42);
        let forward = format!(r#"{{"event":"forward","client_id":"lg-1-3","message":{cpu}}}"#);
        assert_eq!(classify(&forward), Incoming::Forward(42));
        let err = r#"{"event":"error","code":"peer_busy","message":"x"}"#;
        assert_eq!(classify(err), Incoming::Error);
        assert_eq!(error_code(err), "peer_busy");
        assert_eq!(
            classify(r#"{"event":"history","client_id":"a","samples":[]}"#),
            Incoming::Other
        );
        assert_eq!(classify(r#"{"event":"cpu","value":1}"#), Incoming::Other);
    }
}
