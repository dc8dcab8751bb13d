//! Reading the JetStream store: a desktop's history and audit log through ordered consumers
//! filtered on its subject, starting at the time the range begins (JetStream's own timestamps:
//! a minute's records are published after it ends, so they are stored later than it starts).
//!
//! Written minutes come from `DESKBRIDGE_RAW` (packed samples) or `DESKBRIDGE_MINUTES`
//! (aggregates); the minutes still open in some node's memory come from asking every node
//! (`deskbridge.store.v2.open`, core NATS request, answers gathered until every node with a
//! journal in the range answered, or 50 ms pass without one), so the answer includes the current minute whichever node holds the desktop. Records
//! of the same samples written twice (same node, minute and first journal message) count once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use deskbridge_protocol::ClientId;
use futures_util::StreamExt;

use super::wire::{self, MinuteRecord, OpenRequest, Origin, RawMinute};
use crate::store::open::{Aggregate, GRACE_MS};
use crate::store::packed::{self, MINUTE_MS};
use crate::store::query::{self, AuditEntry, History, Step, AUDIT_PAGE};
use crate::store::record::{now_ms, PAST_SKEW_MS};
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

/// How long a node waits for the other nodes' open minutes: the first answer (its own comes
/// within a millisecond), then a quiet gap after the last one.
const OPEN_FIRST_WAIT: Duration = Duration::from_millis(500);
const OPEN_QUIET: Duration = Duration::from_millis(50);

/// What a reader gathered for one minute, keyed so the same samples written twice count once.
#[derive(Default)]
struct Gathered {
    /// (minute, node, first journal message) → (last journal message, record).
    keyed: HashMap<(u64, String, u64), (u64, Part)>,
    /// Records without an origin (schema 1 aggregates): never duplicates of each other.
    plain: Vec<(u64, Part)>,
}

enum Part {
    Raw(Vec<u8>),
    Aggregate(Aggregate),
}

impl Gathered {
    fn add(&mut self, minute: u64, origin: Option<Origin>, part: Part) {
        match origin {
            None => self.plain.push((minute, part)),
            Some(o) => {
                let key = (minute, o.node, o.first);
                match self.keyed.get(&key) {
                    Some((last, _)) if *last >= o.last => {}
                    _ => {
                        self.keyed.insert(key, (o.last, part));
                    }
                }
            }
        }
    }

    fn parts(self) -> impl Iterator<Item = (u64, Part)> {
        self.keyed
            .into_iter()
            .map(|((minute, ..), (_, part))| (minute, part))
            .chain(self.plain)
    }
}

/// Asks every node (this one too) for `id`'s open minutes in `[from, to)`; also says which
/// nodes answered (the others' journals are read instead: `silent`). Stops as soon as every node
/// in `expected` (those with a journal in the range) answered: only they can hold open minutes of
/// it, and waiting out the quiet gap cost every recent range 50 ms.
async fn open_minutes(
    client: &async_nats::Client,
    id: &ClientId,
    from: u64,
    to: u64,
    expected: &HashSet<String>,
) -> Result<(Vec<RawMinute>, HashSet<String>), StoreError> {
    let ask = OpenRequest {
        id: id.as_str().to_owned(),
        from,
        to,
    };
    let payload = serde_json::to_vec(&ask).map_err(failed)?;
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await.map_err(failed)?;
    client
        .publish_with_reply(wire::OPEN, inbox, payload.into())
        .await
        .map_err(failed)?;
    let mut out = Vec::new();
    let mut wait = OPEN_FIRST_WAIT;
    let mut answered = HashSet::new();
    while let Ok(Some(reply)) = tokio::time::timeout(wait, replies.next()).await {
        if let Some(node) = reply
            .headers
            .as_ref()
            .and_then(|h| h.get(wire::NODE_HEADER))
        {
            answered.insert(node.as_str().to_owned());
        }
        match RawMinute::decode_many(&reply.payload) {
            Ok(records) => out.extend(records),
            Err(e) => log::warn!("store: a node's open minutes were unreadable, left out: {e}"),
        }
        if expected.is_subset(&answered) {
            break;
        }
        wait = OPEN_QUIET;
    }
    let _ = replies.unsubscribe().await;
    Ok((out, answered))
}

/// The history of `id` in `[from, to)` at `step`.
pub async fn history(
    js: &jetstream::Context,
    client: &async_nats::Client,
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
    let first = match step {
        Step::Raw => packed::minute_of(from),
        Step::Buckets(ms) => from / ms * ms,
    };
    let mut gathered = Gathered::default();
    // Open minutes reach back at most PAST_SKEW (late samples) plus a minute and its grace. The
    // journal is listed before the written minutes are read: a minute written meanwhile is then
    // either in what is read or still in its node's memory, whose answer is awaited.
    let recent = to.saturating_add(PAST_SKEW_MS + 2 * MINUTE_MS + GRACE_MS) > now_ms();
    let listed = if recent {
        Some(super::silent::list(js, first, to).await?)
    } else {
        None
    };
    // A minute is published GRACE after it ends; late samples make more records of it, up to
    // PAST_SKEW later.
    let stop = to.saturating_add(MINUTE_MS + GRACE_MS + PAST_SKEW_MS + 30_000);
    match step {
        Step::Raw => {
            read(
                js,
                wire::RAW,
                wire::raw_subject(id),
                first,
                |payload, stored| {
                    if let Ok(r) = RawMinute::decode(payload) {
                        if (first..to).contains(&r.minute) {
                            gathered.add(r.minute, Some(r.origin), Part::Raw(r.packed));
                        }
                    }
                    stored <= stop
                },
            )
            .await?;
        }
        Step::Buckets(_) => {
            let subject = wire::subject("minutes", Some(id));
            read(js, wire::MINUTES, subject, first, |payload, stored| {
                if let Ok(m) = serde_json::from_slice::<MinuteRecord>(payload) {
                    if (first..to).contains(&m.minute.minute) {
                        gathered.add(m.minute.minute, m.origin, Part::Aggregate(m.minute.agg));
                    }
                }
                stored <= stop
            })
            .await?;
        }
    }
    if let Some(listed) = listed {
        let expected: HashSet<String> = listed.iter().map(|(_, node, _)| node.clone()).collect();
        let (mut open, answered) = if expected.is_empty() {
            // No journal in the range: no node holds an open minute of it.
            (Vec::new(), HashSet::new())
        } else {
            open_minutes(client, id, first, to, &expected).await?
        };
        open.extend(super::silent::open_minutes(js, id, listed, &answered).await?);
        for r in open {
            if r.minute >= first {
                let part = match step {
                    Step::Raw => Part::Raw(r.packed),
                    Step::Buckets(_) => match Aggregate::of_packed(r.minute, &r.packed) {
                        Ok(agg) => Part::Aggregate(agg),
                        Err(_) => continue,
                    },
                };
                gathered.add(r.minute, Some(r.origin), part);
            }
        }
    }
    match step {
        Step::Raw => {
            let mut samples = Vec::new();
            for (minute, part) in gathered.parts() {
                if let Part::Raw(bytes) = part {
                    query::unpack_into(&mut samples, minute, &bytes, from, to);
                }
            }
            query::answer_raw(&mut out, samples);
        }
        Step::Buckets(ms) => {
            let mut buckets: BTreeMap<u64, Aggregate> = BTreeMap::new();
            for (minute, part) in gathered.parts() {
                if let Part::Aggregate(agg) = part {
                    buckets
                        .entry(minute / ms * ms)
                        .or_insert(Aggregate::EMPTY)
                        .merge(&agg);
                }
            }
            query::answer(&mut out, buckets);
        }
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
