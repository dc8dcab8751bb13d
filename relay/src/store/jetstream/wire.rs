//! What the JetStream store keeps, as messages: the subjects per desktop, a desktop's packed raw
//! minute ([`RawMinute`], the shared codec of [`packed`] behind a small header), the JSON of a
//! minute's aggregate, and the open-minutes request between nodes. Aggregates and audit records
//! stay JSON, so `nats stream view` shows records people can read.

use deskbridge_protocol::ClientId;
use serde::{Deserialize, Serialize};

use crate::store::open::Aggregate;
use crate::store::packed::{self, PackError, MINUTE_MS};

/// The streams, one per kind of record, each with its own retention (`max_age`). (Schema 1's
/// `DESKBRIDGE_SAMPLES`, a message per sample, is no longer written or read.)
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

/// The aggregate of one desktop's samples in one minute (or part of one: a reader merges the
/// records of the same minute, which two nodes may both write when the desktop moves).
/// On the wire its fields sit beside `minute`, as they did when this type spelt them out.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Minute {
    pub minute: u64,
    #[serde(flatten)]
    pub agg: Aggregate,
}

/// Raw samples, packed: one message per desktop per minute (`deskbridge.store.v2.raw.<id>`).
pub const RAW: &str = "DESKBRIDGE_RAW";
/// Each node's crash journal: one message per batch and minute
/// (`deskbridge.store.v2.journal.<node>.<minute / 60,000>`), purged once the minute is written.
pub const JOURNAL: &str = "DESKBRIDGE_JOURNAL";
/// Core NATS (no stream): a node asks every node for a desktop's open minutes here.
pub const OPEN: &str = "deskbridge.store.v2.open";

const PREFIX_V2: &str = "deskbridge.store.v2";

/// The subjects a v2 stream holds (`deskbridge.store.v2.raw.>`).
pub fn stream_subjects_v2(kind: &str) -> String {
    format!("{PREFIX_V2}.{kind}.>")
}

/// A desktop's packed raw minutes.
pub fn raw_subject(id: &ClientId) -> String {
    format!("{PREFIX_V2}.raw.{}", token(id.as_str()))
}

/// Node `node`'s journal of `minute`.
pub fn journal_subject(node: &str, minute: u64) -> String {
    format!("{PREFIX_V2}.journal.{}.{}", token(node), minute / MINUTE_MS)
}

/// All of node `node`'s journal.
/// The node and minute (Unix ms) of a journal subject, `None` for any other subject.
pub fn parse_journal_subject(subject: &str) -> Option<(String, u64)> {
    let rest = subject.strip_prefix(PREFIX_V2)?.strip_prefix(".journal.")?;
    let (node, minute) = rest.rsplit_once('.')?;
    let minute = minute.parse::<u64>().ok()?.checked_mul(MINUTE_MS)?;
    Some((node.replace('~', "."), minute))
}

/// The header a node's answer on [`OPEN`] names it by, so a reader knows who did not answer.
pub const NODE_HEADER: &str = "Deskbridge-Node";

pub fn journal_all(node: &str) -> String {
    format!("{PREFIX_V2}.journal.{}.>", token(node))
}

/// Which node wrote a minute record, from which journal messages (`first..=last`): two records
/// with the same node, minute and `first` are the same samples written twice (a retry, or a
/// node that was killed before it purged its journal); readers keep the one reaching furthest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    pub node: String,
    pub first: u64,
    pub last: u64,
}

/// A desktop's raw samples of one minute as a message: `varint(minute / 60,000) varint(first)
/// varint(last) str(node)` then the packed samples.
#[derive(Debug, Clone, PartialEq)]
pub struct RawMinute {
    pub minute: u64,
    pub origin: Origin,
    pub packed: Vec<u8>,
}

impl RawMinute {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.packed.len() + 32);
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        packed::put_header(
            out,
            &[self.minute / MINUTE_MS, self.origin.first, self.origin.last],
        );
        packed::put_str(out, &self.origin.node);
        out.extend_from_slice(&self.packed);
    }

    pub fn decode(mut bytes: &[u8]) -> Result<Self, PackError> {
        let [minute, first, last] = packed::get_header::<3>(&mut bytes)?;
        let node = packed::get_str(&mut bytes)?;
        let minute = minute.checked_mul(MINUTE_MS).ok_or(PackError::Overlong)?;
        packed::for_each(minute, bytes, |_| {})?;
        Ok(Self {
            minute,
            origin: Origin { node, first, last },
            packed: bytes.to_vec(),
        })
    }

    /// Several, length-prefixed: a node's answer to an open-minutes request.
    pub fn encode_many(records: &[RawMinute]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            let one = r.encode();
            packed::put_header(&mut out, &[one.len() as u64]);
            out.extend_from_slice(&one);
        }
        out
    }

    pub fn decode_many(mut bytes: &[u8]) -> Result<Vec<Self>, PackError> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let [len] = packed::get_header::<1>(&mut bytes)?;
            let len = usize::try_from(len).map_err(|_| PackError::Truncated)?;
            if bytes.len() < len {
                return Err(PackError::Truncated);
            }
            let (one, rest) = bytes.split_at(len);
            out.push(Self::decode(one)?);
            bytes = rest;
        }
        Ok(out)
    }
}

/// A minute's aggregate as a message of the minutes stream; v1 records have no origin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinuteRecord {
    #[serde(flatten)]
    pub minute: Minute,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// An open-minutes request: a desktop and a range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenRequest {
    pub id: String,
    pub from: u64,
    pub to: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_record_keeps_its_fields_side_by_side_on_the_wire() {
        let agg = Aggregate {
            n: 2,
            low: 1.0,
            high: 3.0,
            total: 4.0,
            memory_n: 1,
            memory_total: 5.0,
        };
        let record = MinuteRecord {
            minute: Minute {
                minute: 60_000,
                agg,
            },
            origin: None,
        };
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"minute":60000,"n":2,"low":1.0,"high":3.0,"total":4.0,"memory_n":1,"memory_total":5.0})
        );
        assert_eq!(
            serde_json::from_value::<MinuteRecord>(json).unwrap(),
            record
        );
    }

    #[test]
    fn every_id_is_one_token() {
        let id = ClientId::new("a.b").unwrap();
        assert_eq!(
            subject("samples", Some(&id)),
            "deskbridge.store.v1.samples.a~b"
        );
        assert_eq!(subject("audit", None), "deskbridge.store.v1.audit._");
    }

    #[test]
    fn a_journal_subject_names_its_node_and_minute() {
        let subject = journal_subject("relay.1", 7 * MINUTE_MS + 5);
        assert_eq!(
            parse_journal_subject(&subject),
            Some(("relay.1".to_owned(), 7 * MINUTE_MS))
        );
        assert_eq!(
            parse_journal_subject(&raw_subject(&ClientId::new("a").unwrap())),
            None
        );
        assert_eq!(
            parse_journal_subject("deskbridge.store.v2.journal.n.x"),
            None
        );
    }

    #[test]
    fn raw_minutes_round_trip_alone_and_in_a_node_answer_and_refuse_garbage() {
        let mut bytes = Vec::new();
        packed::push(
            &mut bytes,
            &packed::Packed {
                ts: 120_500,
                value: 3.5,
                memory_used: None,
            },
        );
        let r = RawMinute {
            minute: 120_000,
            origin: Origin {
                node: "n-1".into(),
                first: 7,
                last: 9,
            },
            packed: bytes,
        };
        assert_eq!(RawMinute::decode(&r.encode()).unwrap(), r);
        let many = RawMinute::encode_many(&[r.clone(), r.clone()]);
        assert_eq!(
            RawMinute::decode_many(&many).unwrap(),
            vec![r.clone(), r.clone()]
        );
        assert!(RawMinute::decode_many(&[]).unwrap().is_empty());
        for cut in 1..many.len() {
            let _ = RawMinute::decode_many(&many[..cut]);
        }
        assert!(RawMinute::decode(&r.encode()[..4]).is_err());
        assert_eq!(
            journal_subject("a.b", 120_000),
            "deskbridge.store.v2.journal.a~b.2"
        );
        // A schema 1 aggregate (no origin) still reads.
        let v1: MinuteRecord = serde_json::from_str(
            r#"{"minute":0,"n":1,"low":1.0,"high":1.0,"total":1.0,"memory_n":0,"memory_total":0.0}"#,
        )
        .unwrap();
        assert_eq!(v1.origin, None);
    }
}
