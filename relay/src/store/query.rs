//! Reading the store: a desktop's cpu history over a time range at a step (raw samples, or
//! one-minute aggregates merged into coarser buckets), and its audit log. Runs on a reader
//! connection, in one read transaction, so it sees one consistent snapshot while the writer goes
//! on.
//!
//! Minute aggregates are exact and fresh: `minutes` holds what the rollup folded, and the samples
//! after the rollup's mark are folded here, on the fly, from the few minutes the `rollup` row says
//! they span. Offline periods simply have no points.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::Value;

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

/// Running aggregate of one bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    n: u64,
    low: f64,
    high: f64,
    total: f64,
    memory_n: u64,
    memory_total: f64,
}

impl Bucket {
    fn merge(&mut self, other: Bucket) {
        self.n += other.n;
        self.low = self.low.min(other.low);
        self.high = self.high.max(other.high);
        self.total += other.total;
        self.memory_n += other.memory_n;
        self.memory_total += other.memory_total;
    }
}

fn bucket_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, Bucket)> {
    Ok((
        row.get(0)?,
        Bucket {
            n: row.get::<_, i64>(1)? as u64,
            low: row.get(2)?,
            high: row.get(3)?,
            total: row.get(4)?,
            memory_n: row.get::<_, i64>(5)? as u64,
            memory_total: row.get(6)?,
        },
    ))
}

/// The desktop's number, if the store has ever seen it.
fn desktop_key(conn: &Connection, id: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT key FROM desktops WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()
}

/// The history of `id` in `[from, to)` (Unix ms) at `step`.
pub fn history(
    conn: &mut Connection,
    id: &str,
    from: u64,
    to: u64,
    step: Step,
) -> Result<History, StoreError> {
    let tx = conn.transaction()?;
    let mut out = History {
        step,
        points: Vec::new(),
        memory_used: Vec::new(),
    };
    let Some(key) = desktop_key(&tx, id)? else {
        return Ok(out);
    };
    let (from, to) = (from as i64, to as i64);
    match step {
        Step::Raw => {
            let mut stmt = tx.prepare_cached(
                "SELECT ts, value, memory_used FROM samples WHERE key = ?1 AND ts >= ?2 AND ts < ?3 ORDER BY ts",
            )?;
            let rows = stmt.query_map(params![key, from, to], |r| {
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    r.get::<_, f64>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                ))
            })?;
            for row in rows {
                let (ts, v, memory) = row?;
                out.points.push((ts, v, v, v));
                out.memory_used.push(memory.map(|m| m as f64));
            }
        }
        Step::Buckets(ms) => {
            let ms = ms as i64;
            let first = from.div_euclid(ms) * ms;
            let mut buckets: BTreeMap<i64, Bucket> = BTreeMap::new();
            let mut add = |minute: i64, b: Bucket| {
                let at = minute.div_euclid(ms) * ms;
                buckets
                    .entry(at)
                    .and_modify(|have| have.merge(b))
                    .or_insert(b);
            };
            let mut folded = tx.prepare_cached(
                "SELECT minute, n, low, high, total, memory_n, memory_total FROM minutes
                 WHERE key = ?1 AND minute >= ?2 AND minute < ?3",
            )?;
            for row in folded.query_map(params![key, first, to], bucket_row)? {
                let (minute, b) = row?;
                add(minute, b);
            }
            let (last, tail_from): (i64, Option<i64>) =
                tx.query_row("SELECT last_seq, tail_from FROM rollup", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            if let Some(tail_from) = tail_from {
                let mut tail = tx.prepare_cached(
                    "SELECT ts / 60000 * 60000, count(*), min(value), max(value), sum(value),
                            count(memory_used), coalesce(sum(memory_used), 0)
                     FROM samples WHERE key = ?1 AND ts >= ?2 AND ts < ?3 AND seq > ?4
                     GROUP BY ts / 60000",
                )?;
                let since = first.max(tail_from);
                for row in tail.query_map(params![key, since, to, last], bucket_row)? {
                    let (minute, b) = row?;
                    add(minute, b);
                }
            }
            for (at, b) in buckets {
                out.points
                    .push((at as u64, b.low, b.total / b.n as f64, b.high));
                out.memory_used
                    .push((b.memory_n > 0).then(|| b.memory_total / b.memory_n as f64));
            }
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
