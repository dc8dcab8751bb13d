//! Messages the relay sends: `welcome`, `presence`, `history`, `error`, plus the forwarded client
//! messages, all in one [`ServerMessage`] that clients decode.

use serde::{Deserialize, Serialize};

use crate::{Beep, BeepResult, ClientId, ClientMode, Cpu, ErrorCode, OfflineReason};

/// `welcome`: authentication succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub client_id: ClientId,
    pub client_mode: ClientMode,
    pub protocol: u32,
    /// `deskbridge-relay/<version>`.
    pub server: String,
}

/// Whether the id's desktop is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DesktopState {
    Online,
    Offline,
}

/// `presence`: the state of a pair, sent on join and on every change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    pub client_id: ClientId,
    pub desktop: DesktopState,
    /// Web viewers connected for this id.
    pub viewers: u32,
    /// When `desktop` last changed, Unix milliseconds.
    pub since: u64,
    /// Why the desktop is offline, when it is and the relay knows: what its `going_away` said, or
    /// `lost` if its connection ended without one. Absent while online, and for an id whose
    /// desktop this relay has not seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<OfflineReason>,
}

/// `history`: the last cpu samples of the id, oldest first, sent to a viewer right after `welcome`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub client_id: ClientId,
    pub samples: Vec<Cpu>,
}

/// `error`: something the relay refused, or a reason it is closing the connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEvent {
    pub code: ErrorCode,
    pub message: String,
}

/// Anything a client can receive from the relay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ServerMessage {
    Welcome(Welcome),
    Presence(Presence),
    History(History),
    Error(ErrorEvent),
    Cpu(Cpu),
    Beep(Beep),
    BeepResult(BeepResult),
}

impl ServerMessage {
    /// The JSON text of this message.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialize")
    }

    /// An `error` event.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMessage::Error(ErrorEvent {
            code,
            message: message.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_messages_have_their_documented_shape() {
        let welcome = ServerMessage::Welcome(Welcome {
            client_id: ClientId::new("a").unwrap(),
            client_mode: ClientMode::Web,
            protocol: 1,
            server: "deskbridge-relay/0.1.0".into(),
        });
        assert_eq!(
            welcome.to_json(),
            r#"{"event":"welcome","client_id":"a","client_mode":"web","protocol":1,"server":"deskbridge-relay/0.1.0"}"#
        );
        let err = ServerMessage::error(ErrorCode::PeerOffline, "no desktop");
        assert_eq!(
            err.to_json(),
            r#"{"event":"error","code":"peer_offline","message":"no desktop"}"#
        );
        let presence = ServerMessage::Presence(Presence {
            client_id: ClientId::new("a").unwrap(),
            desktop: DesktopState::Online,
            viewers: 2,
            since: 5,
            reason: None,
        });
        assert!(
            !presence.to_json().contains("reason"),
            "absent while online"
        );
        let back: ServerMessage = serde_json::from_str(&presence.to_json()).unwrap();
        assert_eq!(back, presence);
        let asleep = ServerMessage::Presence(Presence {
            client_id: ClientId::new("a").unwrap(),
            desktop: DesktopState::Offline,
            viewers: 1,
            since: 7,
            reason: Some(OfflineReason::Sleep),
        });
        assert_eq!(
            asleep.to_json(),
            r#"{"event":"presence","client_id":"a","desktop":"offline","viewers":1,"since":7,"reason":"sleep"}"#
        );
    }

    #[test]
    fn forwarded_client_messages_decode() {
        let m: ServerMessage = serde_json::from_str(r#"{"event":"beep"}"#).unwrap();
        assert_eq!(m, ServerMessage::Beep(Beep { id: None }));
        let h: ServerMessage = serde_json::from_str(
            r#"{"event":"history","client_id":"a","samples":[{"event":"cpu","value":3}]}"#,
        )
        .unwrap();
        assert!(matches!(h, ServerMessage::History(History { samples, .. }) if samples.len() == 1));
    }
}
