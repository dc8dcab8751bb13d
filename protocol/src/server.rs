//! Messages the relay sends: `welcome`, `presence`, `history`, `audience`, `error`, plus the
//! forwarded client messages, all in one [`ServerMessage`] that clients decode.

use serde::{Deserialize, Serialize};

use crate::{
    Beep, BeepResult, ClientId, ClientMode, Cpu, ErrorCode, Notify, NotifyResult, OfflineReason,
    Role,
};

/// `welcome`: authentication succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The desktop of a `desktop` or `web` connection; absent for `fleet`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<ClientId>,
    pub client_mode: ClientMode,
    pub protocol: u32,
    /// `deskbridge-relay/<version>`.
    pub server: String,
    /// For `web` and `fleet`: what these credentials may do, so a page offers only that (the relay
    /// enforces it either way).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// For `web` and `fleet`: who the relay takes this connection to be — the signed-in user,
    /// `share link`, `token <first 8 of its id>` or `anonymous`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
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
    /// The id was added (from the page) and its desktop has not connected yet.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub waiting: bool,
    /// How often the relay has asked the desktop to report, in milliseconds, while it is online
    /// (see [`Audience`]), so a page marks a sample stale only once it is late for the interval
    /// actually in force. Absent while offline and from relays that do not set the interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
}

/// `audience` (relay → desktop): who is watching the desktop, across every relay of a cluster,
/// and so how often the relay wants it to report. Sent when the desktop joins and whenever any
/// of it changes. Desktops that ignore it (the 2018 prototype's) keep working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audience {
    /// Viewers with this desktop's detail view open.
    pub detail: u32,
    /// Sessions watching it only on a fleet grid.
    pub overview: u32,
    /// The reporting interval the relay wants, in milliseconds.
    pub interval_ms: u64,
    /// How long the relay waits, in milliseconds, without any frame from this desktop (a report,
    /// a ping, a pong) before it drops it as `lost`: longer while nobody watches, so an idle
    /// desktop may heartbeat less often (the agent pings every third of it). Absent from relays
    /// older than it: assume the relay's fixed 30 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
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

/// Where a command is in its life. The five words are a contract for outside clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandState {
    /// The relay accepted it (it may be waiting for the desktop to come back).
    Requested,
    /// Queued to the desktop's connection.
    Delivered,
    /// The desktop ran it (`ok: true`).
    Done,
    /// The desktop could not run it (`ok: false`), or it could not be delivered.
    Failed,
    /// It waited (or went unanswered) too long.
    Expired,
}

impl CommandState {
    pub const ALL: [CommandState; 5] = [
        CommandState::Requested,
        CommandState::Delivered,
        CommandState::Done,
        CommandState::Failed,
        CommandState::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CommandState::Requested => "requested",
            CommandState::Delivered => "delivered",
            CommandState::Done => "done",
            CommandState::Failed => "failed",
            CommandState::Expired => "expired",
        }
    }

    /// Whether nothing follows this state.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            CommandState::Done | CommandState::Failed | CommandState::Expired
        )
    }
}

impl std::fmt::Display for CommandState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `command` (relay → every viewer of the desktop): one step in the life of a command anyone
/// sent to it. `by` is who the relay took the sender to be, never what the sender claimed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandEvent {
    pub client_id: ClientId,
    /// The sender's id for the command, or one the relay gave it.
    pub id: String,
    /// The command's event name (`beep`, `notify`).
    pub name: String,
    pub by: String,
    pub state: CommandState,
    /// When it reached this state, Unix ms.
    pub at: u64,
    /// For `failed` and `expired`: why, for people to read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `forward` (relay → fleet): a message of one desktop, for a connection that watches many. The
/// relay wraps the desktop's original frame, never re-encoding it: `message` is that frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forward {
    pub client_id: ClientId,
    pub message: Box<ServerMessage>,
}

/// `unwatched` (relay → fleet): the desktop left this connection's view (the person's patterns
/// were narrowed); nothing more of it follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unwatched {
    pub client_id: ClientId,
}

/// The text that [`forward_frame`] puts before a desktop's frame: one per id, shared by every
/// frame forwarded for it.
pub fn forward_prefix(client_id: &ClientId) -> String {
    // The id alphabet needs no JSON escaping.
    format!(r#"{{"event":"forward","client_id":"{client_id}","message":"#)
}

/// A `forward` frame around `frame` (a validated JSON object, kept byte for byte), given the id's
/// [`forward_prefix`].
pub fn forward_frame(prefix: &str, frame: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + frame.len() + 1);
    out.push_str(prefix);
    out.push_str(frame);
    out.push('}');
    out
}

/// Anything a client can receive from the relay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ServerMessage {
    Welcome(Welcome),
    Presence(Presence),
    History(History),
    Audience(Audience),
    Error(ErrorEvent),
    Cpu(Cpu),
    Beep(Beep),
    BeepResult(BeepResult),
    Forward(Forward),
    Unwatched(Unwatched),
    Command(CommandEvent),
    Notify(Notify),
    NotifyResult(NotifyResult),
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
            client_id: Some(ClientId::new("a").unwrap()),
            client_mode: ClientMode::Web,
            protocol: 1,
            server: "deskbridge-relay/0.1.0".into(),
            role: None,
            by: None,
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
            waiting: false,
            interval_ms: None,
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
            waiting: false,
            interval_ms: None,
        });
        assert_eq!(
            asleep.to_json(),
            r#"{"event":"presence","client_id":"a","desktop":"offline","viewers":1,"since":7,"reason":"sleep"}"#
        );
    }

    #[test]
    fn a_forward_wraps_the_original_bytes() {
        let id = ClientId::new("box-1").unwrap();
        let original = r#"{"event":"cpu","value":3.25, "extra":[1,2]}"#;
        let frame = forward_frame(&forward_prefix(&id), original);
        assert!(frame.contains(original), "kept byte for byte: {frame}");
        let ServerMessage::Forward(f) = serde_json::from_str(&frame).unwrap() else {
            panic!("not a forward: {frame}")
        };
        assert_eq!(f.client_id, id);
        assert!(matches!(*f.message, ServerMessage::Cpu(Cpu { value, .. }) if value == 3.25));
    }

    #[test]
    fn audience_and_the_interval_in_presence_have_their_documented_shape() {
        let audience = ServerMessage::Audience(Audience {
            detail: 1,
            overview: 3,
            interval_ms: 1000,
            timeout_ms: Some(30_000),
        });
        assert_eq!(
            audience.to_json(),
            r#"{"event":"audience","detail":1,"overview":3,"interval_ms":1000,"timeout_ms":30000}"#
        );
        let older: ServerMessage = serde_json::from_str(
            r#"{"event":"audience","detail":0,"overview":0,"interval_ms":60000}"#,
        )
        .unwrap();
        assert!(
            matches!(
                older,
                ServerMessage::Audience(Audience {
                    timeout_ms: None,
                    ..
                })
            ),
            "an older relay's audience still reads"
        );
        let online = ServerMessage::Presence(Presence {
            client_id: ClientId::new("a").unwrap(),
            desktop: DesktopState::Online,
            viewers: 1,
            since: 5,
            reason: None,
            waiting: false,
            interval_ms: Some(1000),
        });
        assert_eq!(
            online.to_json(),
            r#"{"event":"presence","client_id":"a","desktop":"online","viewers":1,"since":5,"interval_ms":1000}"#
        );
        // A presence from a relay that does not set it still decodes.
        let old: ServerMessage = serde_json::from_str(
            r#"{"event":"presence","client_id":"a","desktop":"online","viewers":1,"since":5}"#,
        )
        .unwrap();
        assert!(matches!(
            old,
            ServerMessage::Presence(Presence {
                interval_ms: None,
                ..
            })
        ));
    }

    #[test]
    fn forwarded_client_messages_decode() {
        let m: ServerMessage = serde_json::from_str(r#"{"event":"beep"}"#).unwrap();
        assert_eq!(m, ServerMessage::Beep(Beep::default()));
        let c = ServerMessage::Command(CommandEvent {
            client_id: ClientId::new("a").unwrap(),
            id: "7f".into(),
            name: "beep".into(),
            by: "alice".into(),
            state: CommandState::Expired,
            at: 9,
            error: Some("waited 10 s".into()),
        });
        assert_eq!(
            c.to_json(),
            r#"{"event":"command","client_id":"a","id":"7f","name":"beep","by":"alice","state":"expired","at":9,"error":"waited 10 s"}"#
        );
        let h: ServerMessage = serde_json::from_str(
            r#"{"event":"history","client_id":"a","samples":[{"event":"cpu","value":3}]}"#,
        )
        .unwrap();
        assert!(matches!(h, ServerMessage::History(History { samples, .. }) if samples.len() == 1));
    }
}
