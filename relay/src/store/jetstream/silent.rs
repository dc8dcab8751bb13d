//! The open minutes of a node that does not answer: read from its journal in JetStream.
//!
//! A node keeps the minute still open in memory and answers other nodes' readers for it over core
//! NATS (`wire::OPEN`). A node killed outright answers no more, but everything it had
//! acknowledged is in its journal (`…journal.<node>.<minute>`) until a node of the same id starts
//! again, replays it and writes the minute. So a reader lists the journal's subjects, and for
//! every node that did not answer and every minute of the range reads that node's journal and
//! keeps the one desktop's part — the same records (origin: node, first and last journal
//! message) the node itself would have answered with, so nothing is counted twice when the
//! minute is later written. A live node answers, so in the usual case this costs one stream
//! info call ([`list`], made before the read: it also tells the reader which nodes to wait for).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use deskbridge_protocol::ClientId;
use futures_util::{StreamExt, TryStreamExt};

use super::wire::{self, Origin, RawMinute};
use crate::store::packed::{self, MINUTE_MS};
use crate::store::schema::StoreError;

/// The most a reader spends on silent nodes' journals before answering without them.
const SILENT_WAIT: Duration = Duration::from_secs(5);

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::JetStream(e.to_string())
}

/// The journals in JetStream now: (subject, node, minute) for every minute in `[from, to)`.
/// Only a node listed here can hold open minutes of the range in memory (a sample joins them
/// once its journal message is acknowledged, and leaves them once its minute is written), so a
/// reader waits for these nodes' answers and no others.
pub type Listed = Vec<(String, String, u64)>;

pub async fn list(js: &jetstream::Context, from: u64, to: u64) -> Result<Listed, StoreError> {
    let work = async {
        let stream = js.get_stream(wire::JOURNAL).await.map_err(failed)?;
        let mut subjects = Vec::new();
        let mut listed = stream
            .info_with_subjects(wire::stream_subjects_v2("journal"))
            .await
            .map_err(failed)?;
        while let Some((subject, _count)) = listed.try_next().await.map_err(failed)? {
            if let Some((node, minute)) = wire::parse_journal_subject(&subject) {
                let first_minute = from / MINUTE_MS * MINUTE_MS;
                if (first_minute..to).contains(&minute) {
                    subjects.push((subject, node, minute));
                }
            }
        }
        Ok(subjects)
    };
    tokio::time::timeout(SILENT_WAIT, work)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::JetStream(format!(
                "the journal not listed within {SILENT_WAIT:?}"
            )))
        })
}

/// `id`'s samples in the `listed` journals of every node not in `answered`.
pub async fn open_minutes(
    js: &jetstream::Context,
    id: &ClientId,
    listed: Listed,
    answered: &HashSet<String>,
) -> Result<Vec<RawMinute>, StoreError> {
    let work = async {
        let mut stream = js.get_stream(wire::JOURNAL).await.map_err(failed)?;
        let mut out = Vec::new();
        for (subject, node, minute) in listed {
            if answered.contains(&node) {
                continue;
            }
            if let Some(record) = one_minute(&mut stream, id, subject, node, minute).await? {
                out.push(record);
            }
        }
        Ok(out)
    };
    match tokio::time::timeout(SILENT_WAIT, work).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::JetStream(format!(
            "silent nodes' journals not read within {SILENT_WAIT:?}"
        ))),
    }
}

/// `id`'s part of one node's journal of one minute, if it has one.
async fn one_minute(
    stream: &mut jetstream::stream::Stream,
    id: &ClientId,
    subject: String,
    node: String,
    minute: u64,
) -> Result<Option<RawMinute>, StoreError> {
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: subject,
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(failed)?;
    if consumer.cached_info().num_pending == 0 {
        return Ok(None);
    }
    let mut found: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let mut messages = consumer.messages().await.map_err(failed)?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(failed)?;
        let info = message.info().map_err(failed)?;
        let (seq, last) = (info.stream_sequence, info.pending == 0);
        match packed::unpack_batch(&message.payload) {
            Ok((batch_minute, entries)) if batch_minute == minute => {
                for (desktop, bytes) in entries {
                    if desktop == id.as_str() {
                        found.insert(seq, bytes);
                    }
                }
            }
            Ok(_) => {}
            Err(e) => log::warn!("store: journal message {seq} is unreadable, left out: {e}"),
        }
        if last {
            break;
        }
    }
    let (Some(&first), Some(&last)) = (found.keys().next(), found.keys().next_back()) else {
        return Ok(None);
    };
    Ok(Some(RawMinute {
        minute,
        origin: Origin { node, first, last },
        packed: found.into_values().flatten().collect(),
    }))
}
