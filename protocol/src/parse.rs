//! Turning one untrusted text frame into one validated client message.
//!
//! This is the only code that reads client input, so it is the fuzz target and the place every
//! rejection gets its error code. It reads the `event` name first, so an unknown event is reported
//! as `unknown_event` rather than as a shape error, then parses the payload for that event alone.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::messages::{Notify, NotifyResult};
use crate::{Authentication, Beep, BeepResult, Cpu, ErrorCode, EventKind, GoingAway};

/// A validated message from a client, tagged by `event` on the wire.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ClientMessage {
    Authentication(Authentication),
    Cpu(Cpu),
    Beep(Beep),
    BeepResult(BeepResult),
    GoingAway(GoingAway),
    Notify(Notify),
    NotifyResult(NotifyResult),
}

/// What every command carries, whatever its payload: the sender's id for it and how long it may
/// wait for an offline desktop. The relay's lifecycle needs only this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandRequest<'a> {
    pub id: Option<&'a str>,
    pub wait_ms: Option<u64>,
}

impl ClientMessage {
    /// For a command (`Route::Command`): its id and wait.
    pub fn command(&self) -> Option<CommandRequest<'_>> {
        let (id, wait_ms) = match self {
            ClientMessage::Beep(b) => (&b.id, b.wait_ms),
            ClientMessage::Notify(n) => (&n.id, n.wait_ms),
            _ => return None,
        };
        Some(CommandRequest {
            id: id.as_deref(),
            wait_ms,
        })
    }

    /// For a reply (`Route::Reply`): the desktop's result.
    pub fn reply(&self) -> Option<&BeepResult> {
        match self {
            ClientMessage::BeepResult(r) | ClientMessage::NotifyResult(r) => Some(r),
            _ => None,
        }
    }

    pub fn kind(&self) -> EventKind {
        match self {
            ClientMessage::Authentication(_) => EventKind::Authentication,
            ClientMessage::Cpu(_) => EventKind::Cpu,
            ClientMessage::Beep(_) => EventKind::Beep,
            ClientMessage::BeepResult(_) => EventKind::BeepResult,
            ClientMessage::GoingAway(_) => EventKind::GoingAway,
            ClientMessage::Notify(_) => EventKind::Notify,
            ClientMessage::NotifyResult(_) => EventKind::NotifyResult,
        }
    }

    /// The JSON text of this message, as a client sends it.
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail: no maps with non-string keys, no
        // fallible custom serializers.
        serde_json::to_string(self).expect("client messages always serialize")
    }
}

/// Why a frame was refused: the code and words of the `error` event the sender gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Rejection {
    pub code: ErrorCode,
    pub message: String,
}

impl Rejection {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadMessage, message)
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    event: Option<Cow<'a, str>>,
}

/// Parses and validates one text frame from a client.
pub fn parse_client_message(text: &str) -> Result<ClientMessage, Rejection> {
    let envelope: Envelope<'_> = serde_json::from_str(text).map_err(|e| {
        Rejection::bad(format!(
            "expected a JSON object with an \"event\" field: {}",
            bound_quotes(&e.to_string())
        ))
    })?;
    let name = envelope
        .event
        .ok_or_else(|| Rejection::bad("the message has no \"event\" field"))?;
    let kind = EventKind::from_name(&name).ok_or_else(|| {
        let shown = truncate(&name, MAX_QUOTE);
        Rejection::new(ErrorCode::UnknownEvent, format!("unknown event {shown:?}"))
    })?;
    let message = match kind {
        EventKind::Authentication => {
            let m: Authentication = payload(kind, text)?;
            m.validate().map_err(|e| invalid(kind, e))?;
            ClientMessage::Authentication(m)
        }
        EventKind::Cpu => {
            let m: Cpu = payload(kind, text)?;
            m.validate().map_err(|e| invalid(kind, e))?;
            ClientMessage::Cpu(m)
        }
        EventKind::Beep => {
            let m: Beep = payload(kind, text)?;
            m.validate().map_err(|e| invalid(kind, e))?;
            ClientMessage::Beep(m)
        }
        EventKind::BeepResult => {
            let m: BeepResult = payload(kind, text)?;
            m.validate().map_err(|e| invalid(kind, e))?;
            ClientMessage::BeepResult(m)
        }
        EventKind::GoingAway => {
            let m: GoingAway = payload(kind, text)?;
            m.validate().map_err(|e| invalid(kind, e))?;
            ClientMessage::GoingAway(m)
        }
        EventKind::Notify => {
            let m: Notify = payload(kind, text)?;
            m.validate().map_err(|e| invalid(kind, e))?;
            ClientMessage::Notify(m)
        }
        EventKind::NotifyResult => {
            let m: NotifyResult = payload(kind, text)?;
            m.validate().map_err(|e| invalid(kind, e))?;
            ClientMessage::NotifyResult(m)
        }
    };
    Ok(message)
}

fn payload<'a, T: Deserialize<'a>>(kind: EventKind, text: &'a str) -> Result<T, Rejection> {
    serde_json::from_str(text).map_err(|e| invalid(kind, e.to_string()))
}

fn invalid(kind: EventKind, why: String) -> Rejection {
    Rejection::bad(format!(
        "invalid {} message: {}",
        kind.name(),
        bound_quotes(&why)
    ))
}

/// How much of one client-supplied value a rejection may quote.
const MAX_QUOTE: usize = 64;
/// How long a rejection's text may be, whatever it quotes.
const MAX_REJECTION: usize = 256;

/// Shortens every quoted run (serde quotes values in `"…"` or `` `…` ``) to [`MAX_QUOTE`] bytes,
/// and the whole text to [`MAX_REJECTION`]: a rejection goes back to the client and into the log,
/// so it must not echo a 60 kB field — or a token sent in the wrong field — whole.
fn bound_quotes(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_REJECTION));
    let mut rest = text;
    while let Some(open) = rest.find(['"', '`']) {
        let quote = rest.as_bytes()[open] as char;
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        let Some(close) = rest.find(quote) else {
            break;
        };
        out.push_str(truncate(&rest[..close], MAX_QUOTE));
        if close > MAX_QUOTE {
            out.push('…');
        }
        out.push(quote);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    if out.len() > MAX_REJECTION {
        let cut = truncate(&out, MAX_REJECTION).len();
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClientId, ClientMode, Memory};

    fn code_of(text: &str) -> ErrorCode {
        parse_client_message(text).unwrap_err().code
    }

    #[test]
    fn the_prototypes_messages_are_valid() {
        let auth = parse_client_message(
            r#"{"event":"authentication","client_id":"1","client_mode":"desktop"}"#,
        )
        .unwrap();
        assert_eq!(
            auth,
            ClientMessage::Authentication(Authentication {
                client_id: Some(ClientId::new("1").unwrap()),
                client_mode: ClientMode::Desktop,
                token: None,
            })
        );
        let cpu = parse_client_message(r#"{"event": "cpu", "value": 12.5}"#).unwrap();
        assert_eq!(cpu.kind(), EventKind::Cpu);
        assert_eq!(
            parse_client_message(r#"{"event": "beep"}"#).unwrap(),
            ClientMessage::Beep(Beep::default())
        );
    }

    #[test]
    fn a_fleet_connection_names_no_desktop_and_the_others_must() {
        let fleet =
            parse_client_message(r#"{"event":"authentication","client_mode":"fleet"}"#).unwrap();
        assert_eq!(
            fleet,
            ClientMessage::Authentication(Authentication {
                client_id: None,
                client_mode: ClientMode::Fleet,
                token: None,
            })
        );
        for text in [
            r#"{"event":"authentication","client_mode":"fleet","client_id":"a"}"#,
            r#"{"event":"authentication","client_mode":"web"}"#,
            r#"{"event":"authentication","client_mode":"desktop","token":"x"}"#,
        ] {
            assert_eq!(code_of(text), ErrorCode::BadMessage, "{text}");
        }
    }

    #[test]
    fn full_messages_round_trip() {
        let messages = [
            ClientMessage::Authentication(Authentication {
                client_id: Some(ClientId::new("alice-laptop").unwrap()),
                client_mode: ClientMode::Web,
                token: Some("t.o.k".into()),
            }),
            ClientMessage::Cpu(Cpu {
                value: 23.5,
                cores: Some(vec![10.0, 37.0]),
                memory: Some(Memory {
                    used: 1 << 30,
                    total: 8 << 30,
                }),
                ts: Some(1_700_000_000_000),
            }),
            ClientMessage::Beep(Beep {
                id: Some("b-1".into()),
                wait_ms: Some(60_000),
            }),
            ClientMessage::Notify(Notify {
                id: Some("n-1".into()),
                text: "Lunch is ready".into(),
                wait_ms: None,
            }),
            ClientMessage::NotifyResult(NotifyResult {
                id: Some("n-1".into()),
                ok: false,
                error: Some("no notification service".into()),
            }),
            ClientMessage::BeepResult(BeepResult {
                id: Some("b-1".into()),
                ok: false,
                error: Some("no audio output device".into()),
            }),
        ];
        for m in messages {
            let text = m.to_json();
            assert_eq!(parse_client_message(&text).unwrap(), m, "{text}");
        }
    }

    #[test]
    fn waits_and_notify_texts_are_bounded() {
        assert!(parse_client_message(r#"{"event":"beep","wait_ms":600000}"#).is_ok());
        assert_eq!(
            code_of(r#"{"event":"beep","wait_ms":600001}"#),
            ErrorCode::BadMessage
        );
        assert_eq!(
            code_of(r#"{"event":"beep","wait_ms":-1}"#),
            ErrorCode::BadMessage
        );
        let ok =
            parse_client_message(r#"{"event":"notify","text":"Dinner ✓","wait_ms":5}"#).unwrap();
        let request = ok.command().unwrap();
        assert_eq!((request.id, request.wait_ms), (None, Some(5)));
        let long = format!(r#"{{"event":"notify","text":"{}"}}"#, "é".repeat(200));
        assert!(
            parse_client_message(&long).is_ok(),
            "200 characters, 400 bytes"
        );
        for bad in [
            r#"{"event":"notify","text":""}"#,
            r#"{"event":"notify"}"#,
            r#"{"event":"notify","text":"two\nlines"}"#,
            r#"{"event":"notify","text":"bell\u0007"}"#,
        ] {
            assert_eq!(code_of(bad), ErrorCode::BadMessage, "{bad}");
        }
        let too_long = format!(r#"{{"event":"notify","text":"{}"}}"#, "x".repeat(201));
        assert_eq!(code_of(&too_long), ErrorCode::BadMessage);
    }

    #[test]
    fn unknown_fields_are_accepted() {
        let m = parse_client_message(r#"{"event":"cpu","value":1,"gpu":{"value":3}}"#).unwrap();
        assert_eq!(m.kind(), EventKind::Cpu);
    }

    #[test]
    fn rejects_carry_the_right_code() {
        assert_eq!(code_of("not json"), ErrorCode::BadMessage);
        assert_eq!(code_of("[1,2]"), ErrorCode::BadMessage);
        assert_eq!(code_of(r#"{"value":1}"#), ErrorCode::BadMessage);
        assert_eq!(code_of(r#"{"event":7}"#), ErrorCode::BadMessage);
        assert_eq!(code_of(r#"{"event":"reboot"}"#), ErrorCode::UnknownEvent);
        assert_eq!(code_of(r#"{"event":"cpu"}"#), ErrorCode::BadMessage);
        assert_eq!(
            code_of(r#"{"event":"cpu","value":"NaN"}"#),
            ErrorCode::BadMessage
        );
        assert_eq!(
            code_of(r#"{"event":"cpu","value":101}"#),
            ErrorCode::BadMessage
        );
        assert_eq!(
            code_of(r#"{"event":"cpu","value":-1}"#),
            ErrorCode::BadMessage
        );
        assert_eq!(
            code_of(r#"{"event":"cpu","value":1e999}"#),
            ErrorCode::BadMessage
        );
        assert_eq!(
            code_of(r#"{"event":"cpu","value":1,"memory":{"used":2,"total":1}}"#),
            ErrorCode::BadMessage
        );
        assert_eq!(
            code_of(r#"{"event":"beep","id":""}"#),
            ErrorCode::BadMessage
        );
        assert_eq!(
            code_of(r#"{"event":"beep_result","id":"x"}"#),
            ErrorCode::BadMessage
        );
        assert_eq!(
            code_of(r#"{"event":"authentication","client_id":"a/b","client_mode":"web"}"#),
            ErrorCode::BadMessage
        );
        assert_eq!(
            code_of(r#"{"event":"authentication","client_id":"a","client_mode":"robot"}"#),
            ErrorCode::BadMessage
        );
    }

    #[test]
    fn hostile_sizes_are_rejected_not_crashed_on() {
        let cores = vec!["1"; MAX_CORES_PLUS_ONE].join(",");
        let text = format!(r#"{{"event":"cpu","value":1,"cores":[{cores}]}}"#);
        assert_eq!(code_of(&text), ErrorCode::BadMessage);
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let text = format!(r#"{{"event":"cpu","value":{deep}}}"#);
        assert_eq!(code_of(&text), ErrorCode::BadMessage);
        // Deep nesting in a field nobody reads is skipped without recursion, so it is harmless.
        let text = format!(r#"{{"event":"cpu","value":1,"x":{deep}}}"#);
        assert!(parse_client_message(&text).is_ok());
        let long_event = format!(r#"{{"event":"{}"}}"#, "e".repeat(10_000));
        let rejection = parse_client_message(&long_event).unwrap_err();
        assert_eq!(rejection.code, ErrorCode::UnknownEvent);
        assert!(
            rejection.message.len() < 100,
            "echoes at most 64 chars of the name"
        );
    }

    /// Found by the fuzzer: without exact float parsing, a long decimal parsed to a value that
    /// re-encoded and re-parsed to a different one.
    #[test]
    fn accepted_messages_round_trip_exactly() {
        let text = r#"{"event":"cpu","value":11.666666600000001775711704,"eys":0}"#;
        let message = parse_client_message(text).unwrap();
        assert_eq!(parse_client_message(&message.to_json()).unwrap(), message);
    }

    const MAX_CORES_PLUS_ONE: usize = crate::messages::MAX_CORES + 1;

    #[test]
    fn rejections_quote_at_most_64_bytes_of_what_the_client_sent() {
        let huge = "x".repeat(60_000);
        let token_like = format!("eyJhbGciOiJIUzI1NiJ9.{}.signature", "A".repeat(200));
        let cases = [
            format!(r#"{{"event":"authentication","client_id":"a","client_mode":"{huge}"}}"#),
            format!(
                r#"{{"event":"authentication","client_id":"{token_like}","client_mode":"web"}}"#
            ),
            format!(r#"{{"event":"cpu","value":"{huge}"}}"#),
            format!(r#"{{"event":"{huge}"}}"#),
            format!(r#"{{"event":{huge}"#),
            format!(r#"{{"event":"beep","id":"{huge}"}}"#),
        ];
        for case in cases {
            let rejection = parse_client_message(&case).unwrap_err();
            assert!(
                rejection.message.len() <= 300,
                "{} bytes: {}",
                rejection.message.len(),
                &rejection.message[..300.min(rejection.message.len())]
            );
            assert!(
                !rejection.message.contains("signature"),
                "{}",
                rejection.message
            );
            assert!(
                !rejection.message.contains(&"x".repeat(65)),
                "{}",
                rejection.message
            );
        }
    }

    #[test]
    fn quoting_is_bounded_and_keeps_short_values_and_multibyte_text_intact() {
        assert_eq!(
            bound_quotes("unknown variant `robot`, expected `desktop` or `web`"),
            "unknown variant `robot`, expected `desktop` or `web`"
        );
        let long = format!("invalid type: string \"{}\"", "é".repeat(100));
        let short = bound_quotes(&long);
        assert!(short.len() < 100, "{short}");
        assert!(short.ends_with("…\""), "{short}");
        assert!(bound_quotes(&"ü".repeat(1000)).len() <= 256 + 3);
        assert_eq!(bound_quotes("an \"unclosed quote"), "an \"unclosed quote");
    }

    #[test]
    fn going_away_names_a_reason_and_lost_is_the_relays_word() {
        for reason in ["sleep", "shutdown", "logout", "quit", "update"] {
            let text = format!(r#"{{"event":"going_away","reason":"{reason}"}}"#);
            let message = parse_client_message(&text).unwrap();
            assert_eq!(message.kind(), EventKind::GoingAway);
            assert_eq!(message.to_json(), text);
        }
        assert_eq!(
            code_of(r#"{"event":"going_away","reason":"lost"}"#),
            ErrorCode::BadMessage
        );
        assert_eq!(
            code_of(r#"{"event":"going_away","reason":"vacation"}"#),
            ErrorCode::BadMessage
        );
        assert_eq!(code_of(r#"{"event":"going_away"}"#), ErrorCode::BadMessage);
    }
}
