//! What the JetStream store keeps, as messages: the subjects per desktop and the JSON of a raw
//! sample and of a minute's aggregate. Small and explicit, so `nats stream view` shows records
//! people can read.

use deskbridge_protocol::ClientId;
use serde::{Deserialize, Serialize};

/// The streams, one per kind of record, each with its own retention (`max_age`).
pub const SAMPLES: &str = "DESKBRIDGE_SAMPLES";
pub const MINUTES: &str = "DESKBRIDGE_MINUTES";
pub const AUDIT: &str = "DESKBRIDGE_AUDIT";

const PREFIX: &str = "deskbridge.store.v1";

/// `.` in an id becomes `~` (outside the id alphabet), so every id is one subject token, as
/// the cluster's own subjects do.
fn token(id: &str) -> String {
    id.replace('.', "~")
}

/// The subjects a stream holds (`deskbridge.store.v1.samples.>`).
pub fn stream_subjects(kind: &str) -> String {
    format!("{PREFIX}.{kind}.>")
}

/// One desktop's subject in a stream: `deskbridge.store.v1.<kind>.<id>`; the audit records of
/// no desktop (a refused fleet connection) go to `…audit._`.
pub fn subject(kind: &str, id: Option<&ClientId>) -> String {
    match id {
        Some(id) => format!("{PREFIX}.{kind}.{}", token(id.as_str())),
        None => format!("{PREFIX}.{kind}._"),
    }
}

/// A raw sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawSample {
    pub ts: u64,
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_used: Option<u64>,
}

/// The aggregate of one desktop's samples in one minute (or part of one: a reader merges the
/// records of the same minute, which two nodes may both write when the desktop moves).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Minute {
    pub minute: u64,
    pub n: u64,
    pub low: f64,
    pub high: f64,
    pub total: f64,
    pub memory_n: u64,
    pub memory_total: f64,
}

impl Minute {
    /// The aggregate of one sample.
    pub fn of(minute: u64, value: f64, memory_used: Option<u64>) -> Self {
        Self {
            minute,
            n: 1,
            low: value,
            high: value,
            total: value,
            memory_n: u64::from(memory_used.is_some()),
            memory_total: memory_used.map_or(0.0, |m| m as f64),
        }
    }

    pub fn merge(&mut self, other: &Minute) {
        self.n += other.n;
        self.low = self.low.min(other.low);
        self.high = self.high.max(other.high);
        self.total += other.total;
        self.memory_n += other.memory_n;
        self.memory_total += other.memory_total;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_is_one_token_and_minutes_merge() {
        let id = ClientId::new("a.b").unwrap();
        assert_eq!(
            subject("samples", Some(&id)),
            "deskbridge.store.v1.samples.a~b"
        );
        assert_eq!(subject("audit", None), "deskbridge.store.v1.audit._");
        let mut m = Minute::of(0, 10.0, Some(4));
        m.merge(&Minute::of(0, 30.0, None));
        assert_eq!((m.n, m.low, m.high, m.total), (2, 10.0, 30.0, 40.0));
        assert_eq!((m.memory_n, m.memory_total), (1, 4.0));
    }
}
