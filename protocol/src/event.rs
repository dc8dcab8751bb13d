//! Event names, who may send each one and how the relay routes it.
//!
//! This table is the one place that decides where a message goes. The relay reads it instead of
//! matching on message types, so a new command needs a row here and no relay change.

use serde::{Deserialize, Serialize};

/// Which side of a pair a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientMode {
    /// The agent on the user's computer; one per client id.
    Desktop,
    /// A browser page watching and controlling the desktop; several per client id.
    Web,
    /// A signed-in page's fleet grid: one connection watching every desktop its credentials may
    /// see, each frame tagged with the desktop's id. Sends nothing after `authentication`.
    Fleet,
}

impl ClientMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientMode::Desktop => "desktop",
            ClientMode::Web => "web",
            ClientMode::Fleet => "fleet",
        }
    }
}

/// What a person or credential may do with the desktops it may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Watches: sees desktops, sends nothing to them.
    Viewer,
    /// Also acts: commands (beep, …), sharing and adding desktops.
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for ClientMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the relay treats a validated message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Handled by the relay itself (authentication).
    Relay,
    /// Desktop → every viewer. Superseded by the next one, so it is dropped (and counted) for a
    /// viewer whose queue is full, and the last samples are kept as `history` for new viewers.
    Telemetry,
    /// Viewer → the desktop. Must arrive: if the desktop is offline or its queue is full, the
    /// sender gets an error back.
    Command,
    /// Desktop → every viewer, answering a command. Never dropped silently.
    Reply,
}

/// The `event` names of client messages this relay understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Authentication,
    Cpu,
    Beep,
    BeepResult,
    GoingAway,
    Notify,
    NotifyResult,
}

impl EventKind {
    /// The routing table: `(name, who may send it, route)` for every client event.
    const TABLE: [(EventKind, &'static str, Option<ClientMode>, Route); 7] = [
        (
            EventKind::Authentication,
            "authentication",
            None,
            Route::Relay,
        ),
        (
            EventKind::Cpu,
            "cpu",
            Some(ClientMode::Desktop),
            Route::Telemetry,
        ),
        (
            EventKind::Beep,
            "beep",
            Some(ClientMode::Web),
            Route::Command,
        ),
        (
            EventKind::BeepResult,
            "beep_result",
            Some(ClientMode::Desktop),
            Route::Reply,
        ),
        (
            EventKind::GoingAway,
            "going_away",
            Some(ClientMode::Desktop),
            Route::Relay,
        ),
        (
            EventKind::Notify,
            "notify",
            Some(ClientMode::Web),
            Route::Command,
        ),
        (
            EventKind::NotifyResult,
            "notify_result",
            Some(ClientMode::Desktop),
            Route::Reply,
        ),
    ];

    /// Looks an `event` name up; `None` means `unknown_event`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::TABLE
            .iter()
            .find(|row| row.1 == name)
            .map(|row| row.0)
    }

    fn row(self) -> &'static (EventKind, &'static str, Option<ClientMode>, Route) {
        // The table lists every variant, in declaration order.
        &Self::TABLE[self as usize]
    }

    /// The name on the wire.
    pub fn name(self) -> &'static str {
        self.row().1
    }

    /// The kind of client allowed to send it after authenticating; `None` for events only valid
    /// as the first message.
    pub fn sender(self) -> Option<ClientMode> {
        self.row().2
    }

    /// Where the relay sends it.
    pub fn route(self) -> Route {
        self.row().3
    }

    /// For a reply: the command it answers (`beep_result` answers `beep`), whose lifecycle it
    /// ends. A reply is the command's name with `_result`, so the table needs no fifth column.
    pub fn answers(self) -> Option<EventKind> {
        if self.route() != Route::Reply {
            return None;
        }
        let command = self.name().strip_suffix("_result")?;
        Self::from_name(command).filter(|k| k.route() == Route::Command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_declaration_order() {
        for (i, row) in EventKind::TABLE.iter().enumerate() {
            assert_eq!(row.0 as usize, i);
            assert_eq!(EventKind::from_name(row.1), Some(row.0));
        }
    }

    #[test]
    fn commands_flow_from_web_and_telemetry_from_desktop() {
        assert_eq!(EventKind::Beep.sender(), Some(ClientMode::Web));
        assert_eq!(EventKind::Beep.route(), Route::Command);
        assert_eq!(EventKind::Cpu.sender(), Some(ClientMode::Desktop));
        assert_eq!(EventKind::Cpu.route(), Route::Telemetry);
        assert_eq!(EventKind::BeepResult.route(), Route::Reply);
        assert_eq!(EventKind::from_name("reboot"), None);
    }

    #[test]
    fn every_reply_answers_a_command() {
        for row in EventKind::TABLE {
            if row.3 == Route::Reply {
                assert!(row.0.answers().is_some(), "{} answers nothing", row.1);
            }
        }
        assert_eq!(EventKind::NotifyResult.answers(), Some(EventKind::Notify));
        assert_eq!(EventKind::BeepResult.answers(), Some(EventKind::Beep));
        assert_eq!(EventKind::Beep.answers(), None);
    }
}
