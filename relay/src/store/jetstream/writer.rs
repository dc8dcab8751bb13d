//! The JetStream store's writing task. Samples are batched (`batch_interval`) and each batch
//! becomes **one journal message per minute it touches** on this node's journal subject
//! (`DESKBRIDGE_JOURNAL`, packed: [`packed::pack_batch`]); once JetStream acknowledged it, its
//! samples count as written and join the open minutes in memory ([`open`]). When a minute has
//! ended (plus [`GRACE_MS`]), each desktop's samples of it are published as one packed raw
//! message and one aggregate message, and once JetStream acknowledged them all, the minute's
//! journal subject is purged. So JetStream sees about one message a second from the journal and
//! two per desktop per minute, not one per sample.
//! A minute's messages are published with at most [`FOLD_IN_FLIGHT`] acknowledgements awaited
//! at once ([`super::inflight`]), so a journal message published meanwhile is acknowledged behind
//! a few hundred of them, well within [`ACK_WAIT`], not behind the whole minute.
//!
//! On start (once the streams exist) the node reads its own journal back into memory: a killed
//! node loses at most the batch JetStream had not acknowledged. A minute written but not purged
//! before a kill is written again after the restart, with the same [`Origin`]; readers keep one.
//! Audit records are published one by one, as before; acknowledgements are awaited
//! concurrently. Until the streams exist (NATS unreachable, JetStream off) records are dropped
//! and counted as `write_failed`.
//!
//! The same task answers the other nodes' requests for a desktop's open minutes
//! (`deskbridge.store.v2.open`, core NATS), so every node's answer includes them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::IntoFuture;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use deskbridge_protocol::ClientId;
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::inflight::{InFlight, FOLD_IN_FLIGHT};
use super::wire::{self, Minute, MinuteRecord, OpenRequest, Origin, RawMinute};
use crate::store::config::StoreConfig;
use crate::store::metrics::{DropReason, Kind, StoreMetrics};
use crate::store::open::{self, OpenMinutes, GRACE_MS};
use crate::store::packed::{self, Packed};
use crate::store::presence::jetstream as presence;
use crate::store::query::AuditEntry;
use crate::store::record::{now_ms, AuditRecord, Item, Sample};

/// Most samples in one batch.
const MAX_BATCH: usize = 16_384;
/// Most audit acknowledgements awaited at once; beyond it the task waits for some first.
const MAX_IN_FLIGHT: usize = 4_096;
/// How long one acknowledgement (a journal message, a minute's messages) may take.
const ACK_WAIT: Duration = Duration::from_secs(5);
/// How long a minute's messages (two per desktop) may take to be published and acknowledged.
const FOLD_WAIT: Duration = Duration::from_secs(30);
/// How long closing waits for the last acknowledgements.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// An audit record's or presence change's acknowledgement: what it counts as, and JetStream's
/// refusal if it refused.
type Ack = Pin<Box<dyn std::future::Future<Output = (Kind, Result<(), String>)> + Send>>;

struct Writer {
    js: jetstream::Context,
    node: String,
    config: StoreConfig,
    metrics: Arc<StoreMetrics>,
    ready: bool,
    open: Arc<OpenMinutes>,
    batch: Vec<Sample>,
    acks: FuturesUnordered<Ack>,
    /// Minutes being written by a task of their own.
    folding: Arc<std::sync::Mutex<HashSet<u64>>>,
}

/// The task: until the queue closes or is asked to close.
pub async fn run(
    client: async_nats::Client,
    node: String,
    config: StoreConfig,
    metrics: Arc<StoreMetrics>,
    open: Arc<OpenMinutes>,
    mut rx: mpsc::Receiver<Item>,
) {
    let mut w = Writer {
        js: jetstream::new(client.clone()),
        node,
        config,
        metrics,
        ready: false,
        open,
        batch: Vec::new(),
        acks: FuturesUnordered::new(),
        folding: Arc::default(),
    };
    // Answered by a task of its own, so a busy writer never keeps a reader waiting.
    match client.subscribe(wire::OPEN).await {
        Ok(mut requests) => {
            let (client, open, node) = (client.clone(), w.open.clone(), w.node.clone());
            tokio::spawn(async move {
                while let Some(request) = requests.next().await {
                    answer(&client, &open, &node, request).await;
                }
            });
        }
        Err(e) => log::error!("store: cannot answer other nodes for open minutes: {e}"),
    }
    let mut tick = tokio::time::interval(w.config.batch_interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            Some((kind, result)) = w.acks.next(), if !w.acks.is_empty() => w.count(kind, 1, result),
            _ = tick.tick() => {
                if !w.ready {
                    w.ready = ensure_streams(&w.js, &w.config, &w.metrics).await
                        && w.replay().await;
                }
                // What came since the last tick, taken at once: waking for every sample cost
                // more than writing it.
                loop {
                    match rx.try_recv() {
                        Ok(Item::Sample(sample)) => {
                            w.batch.push(sample);
                            if w.batch.len() >= MAX_BATCH {
                                w.flush().await;
                            }
                        }
                        Ok(Item::Audit(record)) => w.audit(record).await,
                        Ok(Item::Presence(change)) => {
                            let message = presence::Message::of(&change);
                            if let Ok(payload) = serde_json::to_vec(&message) {
                                let subject = presence::subject(&change.id);
                                w.publish(Kind::Presence, subject, payload).await;
                            }
                        }
                        Ok(Item::Close(done)) => {
                            w.flush().await;
                            let _ = tokio::time::timeout(CLOSE_WAIT, w.fold(true)).await;
                            let _ = tokio::time::timeout(CLOSE_WAIT, w.drain(0)).await;
                            let _ = done.send(());
                            return;
                        }
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => return,
                    }
                }
                w.flush().await;
                w.fold(false).await;
            }
        }
    }
}

/// Answers another node (or this one) with `id`'s open minutes in the asked range.
async fn answer(
    client: &async_nats::Client,
    open: &OpenMinutes,
    node: &str,
    request: async_nats::Message,
) {
    let Some(reply) = request.reply else { return };
    let Ok(ask) = serde_json::from_slice::<OpenRequest>(&request.payload) else {
        return;
    };
    let records: Vec<RawMinute> = {
        let minutes = open.read();
        open::of(&minutes, &ask.id, ask.from, ask.to)
            .into_iter()
            .map(|(minute, p)| RawMinute {
                minute,
                origin: Origin {
                    node: node.to_owned(),
                    first: p.journal.0,
                    last: p.journal.1,
                },
                packed: p.packed,
            })
            .collect()
    };
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(wire::NODE_HEADER, node);
    let _ = client
        .publish_with_headers(
            reply,
            headers,
            Bytes::from(RawMinute::encode_many(&records)),
        )
        .await;
}

impl Writer {
    /// Publishes the batch as one journal message per minute; acknowledged samples join the
    /// open minutes.
    async fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let samples = std::mem::take(&mut self.batch);
        if !self.ready {
            let not_yet = Err("its streams are not set up yet".to_owned());
            self.count(Kind::Sample, samples.len() as u64, not_yet);
            return;
        }
        let mut by_minute: BTreeMap<u64, HashMap<&str, (Vec<u8>, u64)>> = BTreeMap::new();
        for s in &samples {
            let (bytes, n) = by_minute
                .entry(packed::minute_of(s.ts))
                .or_default()
                .entry(s.id.as_str())
                .or_default();
            packed::push(
                bytes,
                &Packed {
                    ts: s.ts,
                    value: s.value,
                    memory_used: s.memory_used,
                },
            );
            *n += 1;
        }
        for (minute, desktops) in by_minute {
            let n: u64 = desktops.values().map(|(_, n)| n).sum();
            let payload = packed::pack_batch(
                minute,
                desktops.iter().map(|(id, (b, _))| (*id, b.as_slice())),
            );
            let subject = wire::journal_subject(&self.node, minute);
            match publish_acked(&self.js, subject, payload).await {
                Ok(seq) => {
                    let mut minutes = self.open.write();
                    for (id, (bytes, _)) in &desktops {
                        // Packed just above: it decodes.
                        let _ = open::add(&mut minutes, id, minute, bytes, seq);
                    }
                    drop(minutes);
                    self.metrics.batches().inc();
                    self.count(Kind::Sample, n, Ok(()));
                }
                Err(e) => self.count(Kind::Sample, n, Err(e)),
            }
        }
    }

    /// Writes the minutes that have closed (with `all`, every open one, and waits): each in a
    /// task of its own, so the queue is drained meanwhile (20,000 acknowledgements take
    /// seconds); a minute already being written is not started again.
    async fn fold(&mut self, all: bool) {
        if !self.ready {
            return;
        }
        let due: Vec<u64> = {
            let minutes = self.open.read();
            if all {
                minutes.keys().copied().collect()
            } else {
                open::due(&minutes, now_ms(), GRACE_MS)
            }
        };
        let mut waiting = Vec::new();
        for minute in due {
            let busy = self
                .folding
                .lock()
                .map(|mut f| !f.insert(minute))
                .unwrap_or(true);
            if busy {
                continue;
            }
            let (js, node, open, folding, metrics) = (
                self.js.clone(),
                self.node.clone(),
                self.open.clone(),
                self.folding.clone(),
                self.metrics.clone(),
            );
            waiting.push(tokio::spawn(async move {
                fold_minute(&js, &node, &open, &metrics, minute).await;
                if let Ok(mut f) = folding.lock() {
                    f.remove(&minute);
                }
            }));
        }
        if all {
            for task in waiting {
                let _ = task.await;
            }
        }
    }

    /// Reads this node's journal back into the open minutes (after a restart).
    async fn replay(&mut self) -> bool {
        let work = async {
            let stream = self
                .js
                .get_stream(wire::JOURNAL)
                .await
                .map_err(|e| e.to_string())?;
            let consumer = stream
                .create_consumer(consumer::pull::OrderedConfig {
                    filter_subject: wire::journal_all(&self.node),
                    deliver_policy: consumer::DeliverPolicy::All,
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            let mut read = 0usize;
            if consumer.cached_info().num_pending == 0 {
                return Ok::<usize, String>(read);
            }
            let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
            while let Some(message) = messages.next().await {
                let message = message.map_err(|e| e.to_string())?;
                let info = message.info().map_err(|e| e.to_string())?;
                let (seq, last) = (info.stream_sequence, info.pending == 0);
                match packed::unpack_batch(&message.payload) {
                    Ok((minute, entries)) => {
                        let mut minutes = self.open.write();
                        for (id, bytes) in &entries {
                            let _ = open::add(&mut minutes, id, minute, bytes, seq);
                        }
                        read += 1;
                    }
                    Err(e) => {
                        log::warn!("store: journal message {seq} is unreadable, skipped: {e}")
                    }
                }
                if last {
                    break;
                }
            }
            Ok(read)
        };
        match tokio::time::timeout(Duration::from_secs(30), work).await {
            Ok(Ok(read)) => {
                if read > 0 {
                    log::info!("store: {read} journal messages of open minutes read back");
                }
                true
            }
            Ok(Err(e)) => {
                self.complain(&e);
                false
            }
            Err(_) => {
                self.complain(&"reading the journal back took over 30 s");
                false
            }
        }
    }

    async fn audit(&mut self, a: AuditRecord) {
        let desktop = a.desktop.as_deref().and_then(|d| ClientId::new(d).ok());
        let subject = wire::subject("audit", desktop.as_ref());
        let entry = AuditEntry {
            ts: a.ts,
            kind: a.kind.as_str().to_owned(),
            by: a.by,
            from: a.from,
            desktop: a.desktop,
            detail: a.detail,
        };
        if let Ok(payload) = serde_json::to_vec(&entry) {
            self.publish(Kind::Audit, subject, payload).await;
        }
    }

    /// Publishes one record counted as `kind` (an audit record, a presence change); its
    /// acknowledgement is awaited with the others, at most [`MAX_IN_FLIGHT`] at once.
    async fn publish(&mut self, kind: Kind, subject: String, payload: Vec<u8>) {
        if !self.ready {
            self.count(kind, 1, Err("its streams are not set up yet".to_owned()));
            return;
        }
        if self.acks.len() >= MAX_IN_FLIGHT {
            self.drain(MAX_IN_FLIGHT / 2).await;
        }
        match self.js.publish(subject, Bytes::from(payload)).await {
            Ok(ack) => {
                let ack = ack.into_future();
                self.acks.push(Box::pin(async move {
                    (kind, ack.await.map(|_| ()).map_err(|e| e.to_string()))
                }));
            }
            Err(e) => self.count(kind, 1, Err(e.to_string())),
        }
    }

    /// Awaits audit and presence acknowledgements until at most `left` are outstanding.
    async fn drain(&mut self, left: usize) {
        while self.acks.len() > left {
            match self.acks.next().await {
                Some((kind, result)) => self.count(kind, 1, result),
                None => break,
            }
        }
    }

    /// Counts `n` records written or dropped; a drop is logged with JetStream's reason (out of
    /// space, no answer…), at most once a minute.
    fn count(&self, kind: Kind, n: u64, result: Result<(), String>) {
        match result {
            Ok(()) => {
                self.metrics.written(kind).inc_by(n);
            }
            Err(e) => {
                self.metrics
                    .dropped(kind, DropReason::WriteFailed)
                    .inc_by(n);
                if self.metrics.may_complain() {
                    log::error!("store: JetStream did not take {n} records (dropped; relaying goes on; logged once a minute): {e}");
                }
            }
        }
    }

    fn complain(&self, e: &dyn std::fmt::Display) {
        if self.metrics.may_complain() {
            log::error!("store: JetStream (logged once a minute): {e}");
        }
    }
}

/// Writes one closed minute: a raw and an aggregate message per desktop, then the minute's
/// journal purged up to what was written, and the written samples dropped from memory. A minute
/// not fully acknowledged stays open and is tried again.
async fn fold_minute(
    js: &jetstream::Context,
    node: &str,
    open: &OpenMinutes,
    metrics: &StoreMetrics,
    minute: u64,
) {
    let entries: Vec<(String, open::Pending)> = match open.read().get(&minute) {
        Some(desktops) => desktops
            .iter()
            .map(|(id, p)| (id.clone(), p.clone()))
            .collect(),
        None => return,
    };
    // Publishing and acknowledgements together, at most FOLD_IN_FLIGHT awaited at once: the
    // next batch's journal message is acknowledged behind that many, not behind the whole minute.
    let mut last_seq = 0;
    let written = tokio::time::timeout(FOLD_WAIT, async {
        let mut acks = InFlight::new(FOLD_IN_FLIGHT);
        let mut published = true;
        for (id, p) in &entries {
            let Ok(desktop) = ClientId::new(id.as_str()) else {
                continue;
            };
            let origin = Origin {
                node: node.to_owned(),
                first: p.journal.0,
                last: p.journal.1,
            };
            last_seq = last_seq.max(p.journal.1);
            let raw = RawMinute {
                minute,
                origin: origin.clone(),
                packed: p.packed.clone(),
            };
            let record = MinuteRecord {
                minute: Minute { minute, agg: p.agg },
                origin: Some(origin),
            };
            let Ok(json) = serde_json::to_vec(&record) else {
                continue;
            };
            for (subject, payload) in [
                (wire::raw_subject(&desktop), raw.encode()),
                (wire::subject("minutes", Some(&desktop)), json),
            ] {
                acks.room().await;
                match js.publish(subject, Bytes::from(payload)).await {
                    Ok(ack) => acks.push(ack.into_future()),
                    Err(_) => published = false,
                }
            }
        }
        acks.finish().await && published
    })
    .await
    .unwrap_or(false);
    if !written {
        if metrics.may_complain() {
            log::error!("store: JetStream did not take minute {minute}'s records; kept open, trying again (logged once a minute)");
        }
        return;
    }
    let purged = match js.get_stream(wire::JOURNAL).await {
        Ok(stream) => stream
            .purge()
            .filter(wire::journal_subject(node, minute))
            .sequence(last_seq + 1)
            .await
            .is_ok(),
        Err(_) => false,
    };
    if !purged && metrics.may_complain() {
        log::warn!("store: could not purge the journal of minute {minute} (its records, read back after a restart, are written again and read once; logged once a minute)");
    }
    // Drop what was written; a desktop's late samples that came meanwhile keep it open (its next
    // record has the same origin's first message and reaches further: readers keep that one).
    let mut minutes = open.write();
    if let Some(desktops) = minutes.get_mut(&minute) {
        for (id, p) in &entries {
            if desktops
                .get(id)
                .is_some_and(|now| now.journal.1 == p.journal.1)
            {
                desktops.remove(id);
            }
        }
        if desktops.is_empty() {
            minutes.remove(&minute);
        }
    }
}

/// Publishes one message and waits for its acknowledgement: its stream sequence, or why not.
async fn publish_acked(
    js: &jetstream::Context,
    subject: String,
    payload: Vec<u8>,
) -> Result<u64, String> {
    let work = async {
        let ack = js
            .publish(subject, Bytes::from(payload))
            .await
            .map_err(|e| format!("publish failed: {e}"))?;
        ack.await
            .map(|a| a.sequence)
            .map_err(|e| format!("not acknowledged: {e}"))
    };
    tokio::time::timeout(ACK_WAIT, work)
        .await
        .unwrap_or_else(|_| Err(format!("no acknowledgement within {ACK_WAIT:?}")))
}

/// Creates the streams, or brings their retention in line with the settings (keeping what else
/// the operator set, such as replicas). `false` until it succeeds.
async fn ensure_streams(js: &jetstream::Context, c: &StoreConfig, metrics: &StoreMetrics) -> bool {
    for (name, subjects, age) in [
        (wire::RAW, wire::stream_subjects_v2("raw"), c.retention_raw),
        (
            wire::JOURNAL,
            wire::stream_subjects_v2("journal"),
            c.retention_raw,
        ),
        (
            wire::MINUTES,
            wire::stream_subjects("minutes"),
            c.retention_minutes,
        ),
        (
            wire::AUDIT,
            wire::stream_subjects("audit"),
            c.retention_audit,
        ),
        (
            presence::STREAM,
            wire::stream_subjects(presence::KIND),
            c.retention_minutes,
        ),
    ] {
        let result = match js.get_stream(name).await {
            Ok(existing) => {
                let mut config = existing.cached_info().config.clone();
                if config.max_age == age {
                    Ok(())
                } else {
                    config.max_age = age;
                    js.update_stream(config)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
            }
            Err(_) => js
                .create_stream(stream::Config {
                    name: name.to_owned(),
                    subjects: vec![subjects],
                    max_age: age,
                    storage: stream::StorageType::File,
                    ..Default::default()
                })
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        };
        if let Err(e) = result {
            if metrics.may_complain() {
                log::error!("store: cannot set up the JetStream stream {name} (is JetStream enabled: nats-server -js?); retrying (logged once a minute): {e}");
            }
            return false;
        }
    }
    log::info!("store: JetStream streams ready");
    true
}
