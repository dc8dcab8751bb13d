//! Payloads of the messages clients send, with the range checks the relay applies to them.
//!
//! Serde checks shapes and types; `validate` checks what types cannot say (finite percentages,
//! bounded lists and strings). Unknown fields are accepted and ignored here: the relay forwards the
//! original bytes, so a newer agent's extra fields reach the page through an older relay.

use serde::{Deserialize, Serialize};

use crate::{ClientId, ClientMode};

/// Longest accepted token, in bytes. A JWT with our claims is a few hundred bytes.
pub const MAX_TOKEN_LEN: usize = 4096;
/// Most per-core values a `cpu` message may carry.
pub const MAX_CORES: usize = 1024;
/// Longest accepted command id (`beep.id`), in bytes.
pub const MAX_COMMAND_ID_LEN: usize = 128;
/// Longest accepted error text in a reply, in bytes.
pub const MAX_REPLY_ERROR_LEN: usize = 1024;
/// Longest a command may ask to wait for an offline desktop (`wait_ms`): ten minutes.
pub const MAX_WAIT_MS: u64 = 10 * 60 * 1000;
/// Longest `notify` text, in characters.
pub const MAX_NOTIFY_TEXT: usize = 200;

/// `authentication`: the first message of every connection.
///
/// `client_id` names the desktop of a `desktop` or `web` connection; a `fleet` connection watches
/// every desktop its credentials may see and names none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Authentication {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<ClientId>,
    pub client_mode: ClientMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl Authentication {
    pub fn validate(&self) -> Result<(), String> {
        match (self.client_mode, &self.client_id) {
            (ClientMode::Fleet, Some(_)) => {
                return Err(
                    "a fleet connection watches every desktop it may see: leave client_id out"
                        .to_owned(),
                )
            }
            (ClientMode::Desktop | ClientMode::Web, None) => {
                return Err(format!(
                    "missing field `client_id`: a {} connection names its desktop",
                    self.client_mode
                ))
            }
            _ => {}
        }
        match &self.token {
            Some(t) if t.len() > MAX_TOKEN_LEN => Err(format!(
                "token is {} bytes; the limit is {MAX_TOKEN_LEN}",
                t.len()
            )),
            _ => Ok(()),
        }
    }
}

/// Memory figures of a `cpu` report, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    pub used: u64,
    pub total: u64,
}

/// `cpu`: one sample of the desktop's load. Only `value` is required (the prototype sent only it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    /// Overall CPU use, percent of all cores, 0–100.
    pub value: f64,
    /// Per-core use, percent, 0–100 each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cores: Option<Vec<f32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    /// When the sample was taken, Unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<u64>,
}

fn is_percent(v: f64) -> bool {
    v.is_finite() && (0.0..=100.0).contains(&v)
}

fn check_percent(what: &str, v: f64) -> Result<(), String> {
    if is_percent(v) {
        Ok(())
    } else {
        Err(format!("{what} must be a number from 0 to 100, got {v}"))
    }
}

impl Cpu {
    pub fn validate(&self) -> Result<(), String> {
        check_percent("value", self.value)?;
        if let Some(cores) = &self.cores {
            if cores.len() > MAX_CORES {
                return Err(format!(
                    "cores has {} entries; the limit is {MAX_CORES}",
                    cores.len()
                ));
            }
            // The field name is only formatted for the error: this runs for every core of every
            // sample on the relay's hot path.
            if let Some((i, c)) = cores
                .iter()
                .enumerate()
                .find(|(_, c)| !is_percent(f64::from(**c)))
            {
                return Err(format!(
                    "cores[{i}] must be a number from 0 to 100, got {c}"
                ));
            }
        }
        if let Some(m) = &self.memory {
            if m.used > m.total {
                return Err(format!(
                    "memory.used ({}) exceeds memory.total ({})",
                    m.used, m.total
                ));
            }
        }
        Ok(())
    }
}

/// Why a desktop is offline. The desktop names it in `going_away` before it disconnects; `lost`
/// is the relay's word for a connection that ended without one (a crash, a cut cable, a heartbeat
/// timeout, a relay restart), so a desktop may not send it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfflineReason {
    Sleep,
    Shutdown,
    Logout,
    Quit,
    Update,
    Lost,
}

impl OfflineReason {
    pub fn as_str(self) -> &'static str {
        match self {
            OfflineReason::Sleep => "sleep",
            OfflineReason::Shutdown => "shutdown",
            OfflineReason::Logout => "logout",
            OfflineReason::Quit => "quit",
            OfflineReason::Update => "update",
            OfflineReason::Lost => "lost",
        }
    }
}

impl std::fmt::Display for OfflineReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `going_away`: the desktop is about to disconnect on purpose, and says why (then closes with
/// 1000). Viewers see the reason in `presence` instead of "lost".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoingAway {
    pub reason: OfflineReason,
}

impl GoingAway {
    pub fn validate(&self) -> Result<(), String> {
        match self.reason {
            OfflineReason::Lost => Err("\"lost\" is the relay's word for a connection that ended without a going_away; name why you are going: sleep, shutdown, logout, quit or update".to_owned()),
            _ => Ok(()),
        }
    }
}

/// `beep`: make the desktop play a short tone. `id` lets the sender match the `beep_result` and
/// follow the command's `command` events; `wait_ms` asks the relay to keep it for a desktop that
/// is offline, for at most that long.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Beep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

impl Beep {
    pub fn validate(&self) -> Result<(), String> {
        validate_command_id(self.id.as_deref())?;
        validate_wait(self.wait_ms)
    }
}

/// `notify`: make the desktop show a desktop notification with a short text. Same `id` and
/// `wait_ms` as [`Beep`]; answered with `notify_result`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Notify {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What the notification says: 1–200 characters, no control characters (no newlines).
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

impl Notify {
    pub fn validate(&self) -> Result<(), String> {
        validate_command_id(self.id.as_deref())?;
        validate_wait(self.wait_ms)?;
        let chars = self.text.chars().count();
        if chars == 0 || chars > MAX_NOTIFY_TEXT {
            return Err(format!(
                "text must be 1-{MAX_NOTIFY_TEXT} characters, got {chars}"
            ));
        }
        if self.text.chars().any(char::is_control) {
            return Err("text must not contain control characters (newlines included)".to_owned());
        }
        Ok(())
    }
}

/// `beep_result`: the desktop's answer to a `beep`; `notify_result` (same shape) answers a
/// `notify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeepResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub ok: bool,
    /// Why the beep failed, in words for a person; present when `ok` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl BeepResult {
    pub fn validate(&self) -> Result<(), String> {
        validate_command_id(self.id.as_deref())?;
        match &self.error {
            Some(e) if e.len() > MAX_REPLY_ERROR_LEN => Err(format!(
                "error is {} bytes; the limit is {MAX_REPLY_ERROR_LEN}",
                e.len()
            )),
            _ => Ok(()),
        }
    }
}

/// `notify_result`: the desktop's answer to a `notify`, shaped like `beep_result`.
pub type NotifyResult = BeepResult;

fn validate_wait(wait_ms: Option<u64>) -> Result<(), String> {
    match wait_ms {
        Some(ms) if ms > MAX_WAIT_MS => Err(format!(
            "wait_ms must be at most {MAX_WAIT_MS} (10 minutes), got {ms}"
        )),
        _ => Ok(()),
    }
}

fn validate_command_id(id: Option<&str>) -> Result<(), String> {
    match id {
        Some(id) if id.is_empty() || id.len() > MAX_COMMAND_ID_LEN => Err(format!(
            "id must be 1-{MAX_COMMAND_ID_LEN} bytes, got {}",
            id.len()
        )),
        Some(id) if id.chars().any(char::is_control) => {
            Err("id must not contain control characters".to_owned())
        }
        _ => Ok(()),
    }
}
