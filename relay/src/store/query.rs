//! Reading the store: a desktop's cpu history over a time range at a step (raw samples, or
//! one-minute aggregates merged into coarser buckets), and its audit log. Runs on a reader
//! connection, in one read transaction, so it sees one consistent snapshot while the writer goes
//! on.
//!
//! Answers are exact and include the minute still open: the written minutes come from `raw` /
//! `minutes`, the open ones from the writer's memory ([`open`](super::open)), copied under the
//! same read lock that the snapshot is taken in. The writer commits a minute and drops it from
//! memory under the write lock, so every sample is seen exactly once. Offline periods simply
//! have no points.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::Value;

use super::open::{self, Aggregate, OpenMinutes};
use super::packed::{self, Packed};
use super::schema::StoreError;

/// One minute, in milliseconds: the aggregates' resolution.
pub const MINUTE_MS: u64 = 60_000;
/// Most points `step` may be left to the relay for.
pub const AUTO_POINTS: u64 = 2_000;
/// Most points one request may ask for.
pub const MAX_POINTS: u64 = 100_000;
/// Most audit records one answer holds.
pub const AUDIT_PAGE: usize = 1_000;

/// The resolution of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Every sample as it arrived (min = mean = max).
    Raw,
    /// Buckets of this many milliseconds, a whole number of minutes.
    Buckets(u64),
}

impl Step {
    /// The step a request's `step` asks for: `raw`, or milliseconds (below a minute means raw;
    /// otherwise rounded up to whole minutes). `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        if text == "raw" {
            return Some(Step::Raw);
        }
        let ms: u64 = text.parse().ok()?;
        Some(if ms < MINUTE_MS {
            Step::Raw
        } else {
            Step::Buckets(ms.div_ceil(MINUTE_MS).checked_mul(MINUTE_MS)?)
        })
    }

    /// The step the relay picks for `[from, to)` when the caller does not: raw samples for a
    /// range of at most ~2,000 seconds still within the raw retention (samples come about once a
    /// second), else the fewest whole minutes that keep it to at most ~2,000 points.
    pub fn choose(from: u64, to: u64, raw_kept_from: u64) -> Self {
        let span = to.saturating_sub(from);
        if span <= AUTO_POINTS * 1000 && from >= raw_kept_from {
            Step::Raw
        } else {
            let minutes = span.div_ceil(MINUTE_MS).div_ceil(AUTO_POINTS).max(1);
            Step::Buckets(minutes * MINUTE_MS)
        }
    }

    /// How many points `[from, to)` may have at this step, at most (raw: one a second).
    pub fn points(self, from: u64, to: u64) -> u64 {
        let span = to.saturating_sub(from);
        match self {
            Step::Raw => span / 1000,
            Step::Buckets(ms) => span.div_ceil(ms),
        }
    }
}

impl Serialize for Step {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Step::Raw => s.serialize_str("raw"),
            Step::Buckets(ms) => s.serialize_u64(*ms),
        }
    }
}

/// `[ts, min, mean, max]`: ts is the sample's time, or the bucket's start.
pub type Point = (u64, f64, f64, f64);

/// A range of a desktop's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct History {
    pub step: Step,
    pub points: Vec<Point>,
    /// Mean memory in use (bytes) of each point, `null` where the agent did not report it.
    pub memory_used: Vec<Option<f64>>,
}

fn aggregate_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, Aggregate)> {
    Ok((
        row.get(0)?,
        Aggregate {
            n: row.get::<_, i64>(1)? as u64,
            low: row.get(2)?,
            high: row.get(3)?,
            total: row.get(4)?,
            memory_n: row.get::<_, i64>(5)? as u64,
            memory_total: row.get(6)?,
        },
    ))
}

/// The desktop's number, if the store has ever written a minute of it.
fn desktop_key(conn: &Connection, id: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT key FROM desktops WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()
}

/// Unpacks `data` of `minute`, keeping the samples in `[from, to)`; a corrupt row is logged and
/// left out rather than failing the whole answer.
pub fn unpack_into(out: &mut Vec<Packed>, minute: u64, data: &[u8], from: u64, to: u64) {
    let result = packed::for_each(minute, data, |s| {
        if (from..to).contains(&s.ts) {
            out.push(s);
        }
    });
    if let Err(e) = result {
        log::warn!("store: the raw samples of minute {minute} are unreadable, left out: {e}");
    }
}

/// Turns buckets into the answer's points.
pub fn answer(out: &mut History, buckets: BTreeMap<u64, Aggregate>) {
    for (at, b) in buckets {
        if b.n == 0 {
            continue;
        }
        out.points.push((at, b.low, b.total / b.n as f64, b.high));
        out.memory_used
            .push((b.memory_n > 0).then(|| b.memory_total / b.memory_n as f64));
    }
}

/// Raw samples as the answer's points, in time order.
pub fn answer_raw(out: &mut History, mut samples: Vec<Packed>) {
    samples.sort_by_key(|s| s.ts);
    for s in samples {
        out.points.push((s.ts, s.value, s.value, s.value));
        out.memory_used.push(s.memory_used.map(|m| m as f64));
    }
}

/// The history of `id` in `[from, to)` (Unix ms) at `step`; raw samples older than
/// `raw_kept_from` are past their retention (their rows go a minute at a time) and left out.
pub fn history(
    conn: &mut Connection,
    open: &OpenMinutes,
    id: &str,
    from: u64,
    to: u64,
    step: Step,
    raw_kept_from: u64,
) -> Result<History, StoreError> {
    let tx = conn.transaction()?;
    let mut out = History {
        step,
        points: Vec::new(),
        memory_used: Vec::new(),
    };
    // The snapshot (taken by the first read) and the copy of the open minutes, under one lock.
    let (key, pending) = {
        let minutes = open.read();
        let key = desktop_key(&tx, id)?;
        (key, open::of(&minutes, id, from, to))
    };
    match step {
        Step::Raw => {
            let from = from.max(raw_kept_from);
            let mut samples = Vec::new();
            if let Some(key) = key {
                let mut stmt = tx.prepare_cached(
                    "SELECT minute, data FROM raw WHERE key = ?1 AND minute >= ?2 AND minute < ?3",
                )?;
                let rows = stmt.query_map(
                    params![key, packed::minute_of(from) as i64, to as i64],
                    // `||` in SQL makes text of blobs: take the bytes of either.
                    |r| Ok((r.get::<_, i64>(0)?, r.get_ref(1)?.as_bytes()?.to_vec())),
                )?;
                for row in rows {
                    let (minute, data) = row?;
                    unpack_into(&mut samples, minute.max(0) as u64, &data, from, to);
                }
            }
            for (minute, p) in &pending {
                unpack_into(&mut samples, *minute, &p.packed, from, to);
            }
            answer_raw(&mut out, samples);
        }
        Step::Buckets(ms) => {
            let first = from / ms * ms;
            let mut buckets: BTreeMap<u64, Aggregate> = BTreeMap::new();
            let mut add = |minute: u64, b: &Aggregate| {
                buckets
                    .entry(minute / ms * ms)
                    .or_insert(Aggregate::EMPTY)
                    .merge(b);
            };
            if let Some(key) = key {
                let mut folded = tx.prepare_cached(
                    "SELECT minute, n, low, high, total, memory_n, memory_total FROM minutes
                     WHERE key = ?1 AND minute >= ?2 AND minute < ?3",
                )?;
                for row in folded.query_map(params![key, first as i64, to as i64], aggregate_row)? {
                    let (minute, b) = row?;
                    add(minute.max(0) as u64, &b);
                }
            }
            for (minute, p) in &pending {
                if *minute >= first {
                    add(*minute, &p.agg);
                }
            }
            answer(&mut out, buckets);
        }
    }
    Ok(out)
}

/// One audit record as `/api/audit` shows it (and as the JetStream store keeps it).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct AuditEntry {
    pub ts: u64,
    pub kind: String,
    pub by: String,
    pub from: Option<String>,
    pub desktop: Option<String>,
    pub detail: Value,
}

/// The audit records of `desktop` from `since` (Unix ms) on, oldest first, at most
/// [`AUDIT_PAGE`]; `true` when there are more (ask again from the last one's `ts`).
pub fn audit(
    conn: &mut Connection,
    desktop: &str,
    since: u64,
) -> Result<(Vec<AuditEntry>, bool), StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT ts, kind, actor, address, desktop, detail FROM audit
         WHERE desktop = ?1 AND ts >= ?2 ORDER BY ts, seq LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![desktop, since as i64, AUDIT_PAGE as i64 + 1], |r| {
        let detail: String = r.get(5)?;
        Ok(AuditEntry {
            ts: r.get::<_, i64>(0)? as u64,
            kind: r.get(1)?,
            by: r.get(2)?,
            from: r.get(3)?,
            desktop: r.get(4)?,
            detail: serde_json::from_str(&detail).unwrap_or(Value::String(detail)),
        })
    })?;
    let mut entries = rows.collect::<Result<Vec<_>, _>>()?;
    let more = entries.len() > AUDIT_PAGE;
    entries.truncate(AUDIT_PAGE);
    Ok((entries, more))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_parses_raw_milliseconds_and_rounds_up_to_minutes() {
        assert_eq!(Step::parse("raw"), Some(Step::Raw));
        assert_eq!(Step::parse("1000"), Some(Step::Raw));
        assert_eq!(Step::parse("59999"), Some(Step::Raw));
        assert_eq!(Step::parse("60000"), Some(Step::Buckets(60_000)));
        assert_eq!(Step::parse("90000"), Some(Step::Buckets(120_000)));
        assert_eq!(Step::parse("minute"), None);
        assert_eq!(Step::parse("-5"), None);
        assert_eq!(Step::parse(&u64::MAX.to_string()), None);
    }

    #[test]
    fn the_chosen_step_keeps_to_two_thousand_points() {
        let now = 100 * 86_400_000;
        let kept = now - 86_400_000;
        assert_eq!(Step::choose(now - 60_000, now, kept), Step::Raw);
        assert_eq!(
            Step::choose(now - 3_600_000, now, kept),
            Step::Buckets(60_000)
        );
        assert_eq!(
            Step::choose(now - 86_400_000, now, kept),
            Step::Buckets(60_000)
        );
        let month = Step::choose(now - 30 * 86_400_000, now, kept);
        assert_eq!(month, Step::Buckets(22 * 60_000));
        assert!(month.points(now - 30 * 86_400_000, now) <= AUTO_POINTS);
        // A short range older than the raw retention: only aggregates are left.
        assert_eq!(
            Step::choose(kept - 120_000, kept - 60_000, kept),
            Step::Buckets(60_000)
        );
    }
}
