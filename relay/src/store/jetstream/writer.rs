//! The JetStream store's writing task: takes samples and audit records from the bounded queue and
//! publishes them (raw samples, audit records at once; each minute's aggregate once the minute is
//! well over), counting what JetStream acknowledged and what it did not. Acknowledgements are
//! awaited concurrently, so one slow ack never holds the queue. Until the streams exist (NATS
//! unreachable, JetStream off) records are dropped and counted as `write_failed`.

use std::collections::HashMap;
use std::future::IntoFuture;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use deskbridge_protocol::ClientId;
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::wire::{self, Minute, RawSample};
use crate::store::config::StoreConfig;
use crate::store::metrics::{DropReason, Kind, StoreMetrics};
use crate::store::presence::jetstream as presence;
use crate::store::query::{AuditEntry, MINUTE_MS};
use crate::store::record::{now_ms, AuditRecord, Item, Sample};

/// A minute's aggregate is published this long after the minute ended (late samples after that
/// make a second record of the same minute, which readers merge).
pub const MINUTE_GRACE_MS: u64 = 30_000;
/// Most acknowledgements awaited at once; beyond it the task waits for some first.
const MAX_IN_FLIGHT: usize = 16_384;
/// How long closing waits for the last acknowledgements.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// What an acknowledgement counts as (a sample or an audit record, or nothing: a minute's
/// aggregate, derived from samples already counted), and JetStream's refusal if it refused.
type Ack = Pin<Box<dyn std::future::Future<Output = (Option<Kind>, Result<(), String>)> + Send>>;

struct Writer {
    js: jetstream::Context,
    config: StoreConfig,
    metrics: Arc<StoreMetrics>,
    ready: bool,
    open: HashMap<(ClientId, u64), Minute>,
    acks: FuturesUnordered<Ack>,
}

/// The task: until the queue closes or is asked to close.
pub async fn run(
    js: jetstream::Context,
    config: StoreConfig,
    metrics: Arc<StoreMetrics>,
    mut rx: mpsc::Receiver<Item>,
) {
    let mut w = Writer {
        js,
        config,
        metrics,
        ready: false,
        open: HashMap::new(),
        acks: FuturesUnordered::new(),
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            item = rx.recv() => match item {
                Some(Item::Sample(sample)) => w.sample(sample).await,
                Some(Item::Audit(record)) => w.audit(record).await,
                Some(Item::Presence(change)) => {
                    let subject = presence::subject(&change.id);
                    let message = presence::Message::of(&change);
                    w.publish(Some(Kind::Presence), subject, &message).await;
                }
                Some(Item::Close(done)) => {
                    w.flush_minutes(u64::MAX).await;
                    let _ = tokio::time::timeout(CLOSE_WAIT, w.drain(0)).await;
                    let _ = done.send(());
                    return;
                }
                None => return,
            },
            Some((kind, result)) = w.acks.next(), if !w.acks.is_empty() => w.count(kind, result),
            _ = tick.tick() => {
                if !w.ready {
                    w.ready = ensure_streams(&w.js, &w.config, &w.metrics).await;
                }
                w.flush_minutes(now_ms()).await;
            }
        }
    }
}

impl Writer {
    async fn sample(&mut self, s: Sample) {
        let minute = s.ts / MINUTE_MS * MINUTE_MS;
        let one = Minute::of(minute, s.value, s.memory_used);
        self.open
            .entry((s.id.clone(), minute))
            .and_modify(|m| m.merge(&one))
            .or_insert(one);
        let raw = RawSample {
            ts: s.ts,
            value: s.value,
            memory_used: s.memory_used,
        };
        let subject = wire::subject("samples", Some(&s.id));
        self.publish(Some(Kind::Sample), subject, &raw).await;
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
        self.publish(Some(Kind::Audit), subject, &entry).await;
    }

    /// Publishes every open minute that ended `MINUTE_GRACE_MS` before `now`.
    async fn flush_minutes(&mut self, now: u64) {
        let done: Vec<(ClientId, u64)> = self
            .open
            .keys()
            .filter(|(_, minute)| now == u64::MAX || minute + MINUTE_MS + MINUTE_GRACE_MS <= now)
            .cloned()
            .collect();
        for key in done {
            if let Some(minute) = self.open.remove(&key) {
                let subject = wire::subject("minutes", Some(&key.0));
                // A minute's aggregate is not a sample: its failures are logged, not counted.
                self.publish(None, subject, &minute).await;
            }
        }
    }

    async fn publish(
        &mut self,
        kind: Option<Kind>,
        subject: String,
        record: &impl serde::Serialize,
    ) {
        if !self.ready {
            self.count(kind, Err("its streams are not set up yet".to_owned()));
            return;
        }
        let payload = match serde_json::to_vec(record) {
            Ok(p) => Bytes::from(p),
            Err(_) => return,
        };
        if self.acks.len() >= MAX_IN_FLIGHT {
            self.drain(MAX_IN_FLIGHT / 2).await;
        }
        match self.js.publish(subject, payload).await {
            Ok(ack) => {
                let ack = ack.into_future();
                self.acks.push(Box::pin(async move {
                    (kind, ack.await.map(|_| ()).map_err(|e| e.to_string()))
                }));
            }
            Err(e) => self.count(kind, Err(e.to_string())),
        }
    }

    /// Awaits acknowledgements until at most `left` are outstanding.
    async fn drain(&mut self, left: usize) {
        while self.acks.len() > left {
            match self.acks.next().await {
                Some((kind, result)) => self.count(kind, result),
                None => break,
            }
        }
    }

    /// Counts a record written or dropped; a drop is logged with JetStream's reason (out of
    /// space, no answer…), at most once a minute.
    fn count(&self, kind: Option<Kind>, result: Result<(), String>) {
        match (kind, &result) {
            (Some(kind), Ok(())) => self.metrics.written(kind).inc(),
            (Some(kind), Err(_)) => self.metrics.dropped(kind, DropReason::WriteFailed).inc(),
            (None, _) => 0,
        };
        if let Err(e) = result {
            if self.metrics.may_complain() {
                log::error!("store: JetStream did not take a record (dropped; relaying goes on; logged once a minute): {e}");
            }
        }
    }
}

/// Creates the streams, or brings their retention in line with the settings (keeping what else
/// the operator set, such as replicas). `false` until it succeeds.
async fn ensure_streams(js: &jetstream::Context, c: &StoreConfig, metrics: &StoreMetrics) -> bool {
    for (name, kind, age) in [
        (wire::SAMPLES, "samples", c.retention_raw),
        (wire::MINUTES, "minutes", c.retention_minutes),
        (wire::AUDIT, "audit", c.retention_audit),
        (presence::STREAM, presence::KIND, c.retention_minutes),
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
                    subjects: vec![wire::stream_subjects(kind)],
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
