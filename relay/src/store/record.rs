//! What goes into the store, as it travels through the store's queue: cpu samples, audit
//! records and presence changes. Built on the relay's hot path, so each is a few small fields and no I/O.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use deskbridge_protocol::{Authentication, ClientId, Cpu, OfflineReason};
use serde_json::{json, Value};

/// How far in the past an agent's own `ts` may be and still be believed; older samples (an
/// agent's clock far off) are stored at the relay's receive time instead. Bounds what the
/// store's rollup must look back over.
pub const PAST_SKEW_MS: u64 = 5 * 60 * 1000;
/// How far in the future an agent's `ts` may be.
pub const FUTURE_SKEW_MS: u64 = 60 * 1000;

/// The relay's clock, Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One cpu sample of one desktop.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub id: ClientId,
    /// Unix milliseconds: the agent's `ts`, or the relay's receive time (see [`Sample::of`]).
    pub ts: u64,
    pub value: f64,
    /// Memory in use, bytes, when the agent reported it.
    pub memory_used: Option<u64>,
}

impl Sample {
    /// The sample a validated `cpu` message of `id` makes, received at `now` (Unix ms). The
    /// agent's `ts` is kept when it is within a few minutes of `now`; without one, or with one
    /// that far off, the receive time stands in.
    pub fn of(id: &ClientId, cpu: &Cpu, now: u64) -> Self {
        let ts = cpu
            .ts
            .filter(|&ts| ts + PAST_SKEW_MS >= now && ts <= now + FUTURE_SKEW_MS)
            .unwrap_or(now);
        Self {
            id: id.clone(),
            ts,
            value: cpu.value,
            memory_used: cpu.memory.map(|m| m.used),
        }
    }
}

/// The kinds of audit record. Sign-ins and share links join them as those features land; the
/// name is what `/api/audit` shows in `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    /// An `authentication` refused: a bad, expired, revoked or missing token.
    TokenRefused,
    /// A command (beep) a viewer sent, and what became of it.
    Command,
    /// A sign-in attempt (`POST /api/login`): `ok`, `bad_credentials` or `limited`.
    SignIn,
    /// A view-only link made by an operator.
    ShareCreated,
    /// A view-only link revoked.
    ShareRevoked,
    /// A desktop added from the page (its desktop token minted).
    DesktopAdded,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::TokenRefused => "token_refused",
            AuditKind::Command => "command",
            AuditKind::SignIn => "sign_in",
            AuditKind::ShareCreated => "share_created",
            AuditKind::ShareRevoked => "share_revoked",
            AuditKind::DesktopAdded => "desktop_added",
        }
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Unix milliseconds, the relay's clock.
    pub ts: u64,
    pub kind: AuditKind,
    /// Who, as `deskbridge_auth::Access::by` names them (`token 1a2b3c4d`, a user's name,
    /// `share link`, `anonymous`); never a token or a password.
    pub by: String,
    /// The client's address, when known.
    pub from: Option<String>,
    /// The desktop concerned, when there is one.
    pub desktop: Option<String>,
    /// What happened: kind-specific fields (a command's name and outcome, a refusal's reason).
    pub detail: Value,
}

impl AuditRecord {
    /// A record made now.
    pub fn new(
        kind: AuditKind,
        by: String,
        from: Option<IpAddr>,
        desktop: Option<&ClientId>,
        detail: Value,
    ) -> Self {
        Self {
            ts: now_ms(),
            kind,
            by,
            from: from.map(|a| a.to_string()),
            desktop: desktop.map(ClientId::to_string),
            detail,
        }
    }
}

impl AuditRecord {
    /// An `authentication` refused. The token is not recorded, only the reason.
    pub fn token_refused(
        auth: &Authentication,
        from: Option<IpAddr>,
        why: &dyn std::fmt::Display,
    ) -> Self {
        let by = if auth.token.is_some() {
            "unverified token"
        } else {
            "no token"
        };
        Self::new(
            AuditKind::TokenRefused,
            by.to_owned(),
            from,
            auth.client_id.as_ref(),
            json!({ "mode": auth.client_mode.as_str(), "reason": why.to_string() }),
        )
    }

    /// A command from `by` to `desktop`, and its outcome (`delivered`, `busy`, `limited`,
    /// `offline`, `unreachable`, `not_allowed`).
    pub fn command(
        by: &str,
        from: Option<IpAddr>,
        desktop: &ClientId,
        command: &str,
        outcome: &str,
    ) -> Self {
        Self::new(
            AuditKind::Command,
            by.to_owned(),
            from,
            Some(desktop),
            json!({ "command": command, "outcome": outcome }),
        )
    }
}

/// One presence change of one desktop (`store/presence/`): it left this node, or joined it.
#[derive(Debug, Clone, PartialEq)]
pub struct PresenceChange {
    pub id: ClientId,
    /// Unix ms, the relay's clock.
    pub ts: u64,
    /// Why it went; `None`: it came back.
    pub gone: Option<OfflineReason>,
}

/// What the store's queue carries.
#[derive(Debug)]
pub enum Item {
    Sample(Sample),
    Audit(AuditRecord),
    /// A desktop left or came back (`store/presence/`).
    Presence(PresenceChange),
    /// Write what is pending and stop; answered when done.
    Close(std::sync::mpsc::Sender<()>),
}

impl AuditRecord {
    /// A sign-in attempt as `user` (the name typed, at most 64 characters; never the password)
    /// and how it ended.
    pub fn sign_in(user: &str, from: Option<IpAddr>, outcome: &str) -> Self {
        Self::new(
            AuditKind::SignIn,
            user.chars().take(64).collect(),
            from,
            None,
            json!({ "outcome": outcome }),
        )
    }

    /// A view-only link `share` (its id, never its token) made or revoked by `by`.
    pub fn share(
        kind: AuditKind,
        by: &str,
        from: Option<IpAddr>,
        desktop: &ClientId,
        share: &str,
        expires: Option<u64>,
    ) -> Self {
        let detail = match expires {
            Some(expires) => json!({ "share": share, "expires": expires }),
            None => json!({ "share": share }),
        };
        Self::new(kind, by.to_owned(), from, Some(desktop), detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deskbridge_protocol::Memory;

    fn cpu(ts: Option<u64>) -> Cpu {
        Cpu {
            value: 12.5,
            cores: None,
            memory: Some(Memory {
                used: 10,
                total: 20,
            }),
            ts,
        }
    }

    #[test]
    fn a_sample_keeps_a_believable_ts_and_takes_the_receive_time_otherwise() {
        let id = ClientId::new("a").unwrap();
        let now = 1_700_000_000_000;
        assert_eq!(Sample::of(&id, &cpu(Some(now - 2000)), now).ts, now - 2000);
        assert_eq!(Sample::of(&id, &cpu(None), now).ts, now);
        assert_eq!(Sample::of(&id, &cpu(Some(3)), now).ts, now, "far past");
        assert_eq!(
            Sample::of(&id, &cpu(Some(now + 3_600_000)), now).ts,
            now,
            "far future"
        );
        let sample = Sample::of(&id, &cpu(None), now);
        assert_eq!((sample.value, sample.memory_used), (12.5, Some(10)));
    }
}
