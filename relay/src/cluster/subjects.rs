//! The NATS subjects of one client id. Traffic for an id travels only on that id's subjects, and a
//! node subscribes to them only while it has sessions of the id, so NATS delivers each message to
//! the few nodes that need it and to no one else.
//!
//! ```text
//! deskbridge.v1.<id>.web.<event>    desktop → viewers: telemetry (cpu) and replies (beep_result);
//!                                   subscribed by nodes with viewers of the id
//! deskbridge.v1.<id>.desk.<event>   viewer → desktop: commands (beep), as request/reply;
//!                                   subscribed by the node with the desktop
//! deskbridge.v1.<id>.web.command    a command's owning node → the others: its `command` events
//! deskbridge.v1.<id>.desk.history   request/reply: the desktop's node answers with `history`
//! deskbridge.v1.<id>.state          what each node holds of the id (presence, newest desktop)
//! ```
//!
//! The event's name is the last token, so the receiving node reads the route from the protocol's
//! routing table and the payload stays the client's original bytes. `history` can never clash
//! with a command: it is a server event name, and client and server events share one namespace.

use async_nats::Subject;
use deskbridge_protocol::ClientId;

/// The first tokens of every subject the relay uses; `deskbridge.>` is what NATS permissions
/// should grant the relays.
pub const PREFIX: &str = "deskbridge.v1";

/// The last token of the history request subject.
pub const HISTORY: &str = "history";

/// The last token of `web.command`: the owning node's `command` events for the viewers on
/// other nodes (a server event name, so it cannot clash with a client event either).
pub const COMMAND: &str = "command";

/// The subjects of one client id.
#[derive(Debug, Clone)]
pub struct Subjects {
    /// `deskbridge.v1.<encoded id>.`
    base: String,
}

impl Subjects {
    pub fn new(client_id: &ClientId) -> Self {
        Self {
            base: format!("{PREFIX}.{}.", encode_id(client_id.as_str())),
        }
    }

    fn subject(&self, rest: &str) -> Subject {
        Subject::from(format!("{}{rest}", self.base))
    }

    /// Where the desktop's node sends `event` for the viewers on other nodes.
    pub fn web(&self, event: &str) -> Subject {
        self.subject(&format!("web.{event}"))
    }

    /// Everything for viewers of this id.
    pub fn web_all(&self) -> Subject {
        self.subject("web.*")
    }

    /// Where a viewer's node sends `event` (a command) for the desktop.
    pub fn desk(&self, event: &str) -> Subject {
        self.subject(&format!("desk.{event}"))
    }

    /// Everything for the desktop of this id: commands and history requests.
    pub fn desk_all(&self) -> Subject {
        self.subject("desk.*")
    }

    /// Nodes' announcements of what they hold of this id.
    pub fn state(&self) -> Subject {
        self.subject("state")
    }
}

/// Client ids may contain `.`, NATS's token separator; `~` is outside the id alphabet, so
/// replacing one with the other keeps every id one token and distinct ids distinct.
pub fn encode_id(id: &str) -> String {
    id.replace('.', "~")
}

/// The last token of a subject: the event name on `web.*` and `desk.*` subjects.
pub fn last_token(subject: &str) -> &str {
    subject.rsplit('.').next().unwrap_or(subject)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_with_dots_stay_one_token_and_distinct() {
        let dotted = Subjects::new(&ClientId::new("alice.laptop").unwrap());
        let tilde_free = Subjects::new(&ClientId::new("alice-laptop").unwrap());
        assert_eq!(
            dotted.web("cpu").as_str(),
            "deskbridge.v1.alice~laptop.web.cpu"
        );
        assert_eq!(
            dotted.web_all().as_str(),
            "deskbridge.v1.alice~laptop.web.*"
        );
        assert_ne!(dotted.state(), tilde_free.state());
        assert_eq!(
            dotted.state().as_str().split('.').count(),
            tilde_free.state().as_str().split('.').count()
        );
        assert_eq!(
            Subjects::new(&ClientId::new("a..b.").unwrap())
                .desk(HISTORY)
                .as_str(),
            "deskbridge.v1.a~~b~.desk.history"
        );
    }

    #[test]
    fn the_event_is_the_last_token() {
        let s = Subjects::new(&ClientId::new("x.y").unwrap());
        assert_eq!(last_token(s.desk("beep").as_str()), "beep");
        assert_eq!(last_token(s.web("beep_result").as_str()), "beep_result");
        assert_eq!(last_token("plain"), "plain");
    }
}
