//! Reading the JetStream store: a desktop's history and audit log through ordered consumers
//! filtered on its subject, starting at the time the range begins (JetStream's own timestamps,
//! which trail a record's `ts` by the skew the relay accepts at most).
//!
//! Minute steps come from the `minutes` stream for minutes up to two minutes ago (whose
//! aggregates the desktop's node has published) and from raw samples after that, so the answer
//! includes the current minute whichever node holds the desktop.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use deskbridge_protocol::ClientId;
use futures_util::StreamExt;

use super::wire::{self, Minute, RawSample};
use super::writer::MINUTE_GRACE_MS;
use crate::store::query::{AuditEntry, History, Step, AUDIT_PAGE, MINUTE_MS};
use crate::store::record::{now_ms, FUTURE_SKEW_MS, PAST_SKEW_MS};
use crate::store::schema::StoreError;

/// Longest a query may take before it is given up.
const QUERY_WAIT: Duration = Duration::from_secs(10);

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::JetStream(e.to_string())
}

/// Reads `stream`'s messages on `subject` stored from `start_ms` on, handing each payload and
/// its stored time (Unix ms) to `keep` until it returns `false` or the stream has no more.
pub(crate) async fn read(
    js: &jetstream::Context,
    stream: &str,
    subject: String,
    start_ms: u64,
    mut keep: impl FnMut(&[u8], u64) -> bool,
) -> Result<(), StoreError> {
    let work = async {
        let stream = js.get_stream(stream).await.map_err(failed)?;
        let start_time = async_nats::datetime::DateTime::from_unix_timestamp_nanos(
            i128::from(start_ms) * 1_000_000,
        )
        .map_err(failed)?;
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: subject,
                deliver_policy: consumer::DeliverPolicy::ByStartTime { start_time },
                ..Default::default()
            })
            .await
            .map_err(failed)?;
        if consumer.cached_info().num_pending == 0 {
            return Ok(());
        }
        let mut messages = consumer.messages().await.map_err(failed)?;
        while let Some(message) = messages.next().await {
            let message = message.map_err(failed)?;
            let info = message.info().map_err(failed)?;
            let stored = (info.published.unix_timestamp_nanos() / 1_000_000).max(0) as u64;
            let last = info.pending == 0;
            if !keep(&message.payload, stored) || last {
                break;
            }
        }
        Ok(())
    };
    tokio::time::timeout(QUERY_WAIT, work)
        .await
        .map_err(|_| StoreError::JetStream(format!("no answer within {QUERY_WAIT:?}")))?
}

/// The raw samples of `id` with `ts` in `[from, to)`, in time order.
async fn samples(
    js: &jetstream::Context,
    id: &ClientId,
    from: u64,
    to: u64,
) -> Result<Vec<RawSample>, StoreError> {
    let mut out = Vec::new();
    // A sample is stored at most PAST_SKEW after its ts, and at most FUTURE_SKEW before.
    let start = from.saturating_sub(FUTURE_SKEW_MS);
    let stop = to.saturating_add(PAST_SKEW_MS);
    let subject = wire::subject("samples", Some(id));
    read(js, wire::SAMPLES, subject, start, |payload, stored| {
        if let Ok(s) = serde_json::from_slice::<RawSample>(payload) {
            if (from..to).contains(&s.ts) {
                out.push(s);
            }
        }
        stored <= stop
    })
    .await?;
    out.sort_by_key(|s| s.ts);
    Ok(out)
}

/// The history of `id` in `[from, to)` at `step`.
pub async fn history(
    js: &jetstream::Context,
    id: &ClientId,
    from: u64,
    to: u64,
    step: Step,
) -> Result<History, StoreError> {
    let mut out = History {
        step,
        points: Vec::new(),
        memory_used: Vec::new(),
    };
    let ms = match step {
        Step::Raw => {
            for s in samples(js, id, from, to).await? {
                out.points.push((s.ts, s.value, s.value, s.value));
                out.memory_used.push(s.memory_used.map(|m| m as f64));
            }
            return Ok(out);
        }
        Step::Buckets(ms) => ms,
    };
    let first = from / ms * ms;
    // Minutes before this have been published by the desktop's node; after it, raw samples.
    let boundary =
        (now_ms().saturating_sub(MINUTE_MS + MINUTE_GRACE_MS + 30_000)) / MINUTE_MS * MINUTE_MS;
    let mut buckets: BTreeMap<u64, Minute> = BTreeMap::new();
    let mut add = |m: Minute| {
        let at = m.minute / ms * ms;
        buckets
            .entry(at)
            .and_modify(|b| b.merge(&m))
            .or_insert(Minute { minute: at, ..m });
    };
    let folded_to = to.min(boundary);
    if first < folded_to {
        let subject = wire::subject("minutes", Some(id));
        // Published after its minute ended: from `first` on; late ones up to minutes after.
        let stop = folded_to.saturating_add(PAST_SKEW_MS + 2 * MINUTE_MS);
        read(js, wire::MINUTES, subject, first, |payload, stored| {
            if let Ok(m) = serde_json::from_slice::<Minute>(payload) {
                if (first..folded_to).contains(&m.minute) {
                    add(m);
                }
            }
            stored <= stop
        })
        .await?;
    }
    if to > boundary {
        for s in samples(js, id, first.max(boundary), to).await? {
            add(Minute::of(
                s.ts / MINUTE_MS * MINUTE_MS,
                s.value,
                s.memory_used,
            ));
        }
    }
    for (at, b) in buckets {
        out.points.push((at, b.low, b.total / b.n as f64, b.high));
        out.memory_used
            .push((b.memory_n > 0).then(|| b.memory_total / b.memory_n as f64));
    }
    Ok(out)
}

/// The audit records of `desktop` from `since`, oldest first, at most [`AUDIT_PAGE`], and
/// whether there are more.
pub async fn audit(
    js: &jetstream::Context,
    desktop: &ClientId,
    since: u64,
) -> Result<(Vec<AuditEntry>, bool), StoreError> {
    let mut out = Vec::new();
    let subject = wire::subject("audit", Some(desktop));
    read(js, wire::AUDIT, subject, since, |payload, _| {
        if let Ok(entry) = serde_json::from_slice::<AuditEntry>(payload) {
            if entry.ts >= since {
                out.push(entry);
            }
        }
        out.len() <= AUDIT_PAGE
    })
    .await?;
    out.sort_by_key(|e| e.ts);
    let more = out.len() > AUDIT_PAGE;
    out.truncate(AUDIT_PAGE);
    Ok((out, more))
}
