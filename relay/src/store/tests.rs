//! Unit tests of the store: aggregation (folded and not yet folded alike), batching through the
//! real thread and queue, and retention with an explicit clock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use deskbridge_protocol::{ClientId, ClientMessage, ClientMode, Cpu, Memory};
use prometheus_client::registry::Registry;
use serde_json::json;

use super::config::StoreConfig;
use super::metrics::{Kind, StoreMetrics};
use super::query::{self, Step};
use super::record::{AuditKind, AuditRecord, Sample};
use super::schema;
use super::writer::Writer;
use super::Store;

const T0: u64 = 1_700_000_000_000 / 3_600_000 * 3_600_000; // an hour boundary: buckets align to it

fn sample(id: &str, ts: u64, value: f64, memory: Option<u64>) -> Sample {
    Sample {
        id: ClientId::new(id).unwrap(),
        ts,
        value,
        memory_used: memory,
    }
}

fn writer(dir: &tempfile::TempDir, config: StoreConfig) -> (Writer, Arc<StoreMetrics>) {
    let conn = schema::open(&config.database()).unwrap();
    let _ = dir;
    let metrics = Arc::new(StoreMetrics::register(&mut Registry::default()));
    (Writer::new(conn, config, metrics.clone()), metrics)
}

fn metrics_for_test() -> Arc<StoreMetrics> {
    Arc::new(StoreMetrics::register(&mut Registry::default()))
}

fn reader(config: &StoreConfig) -> rusqlite::Connection {
    schema::connect(&config.database()).unwrap()
}

#[test]
fn minute_aggregates_are_exact_before_during_and_after_the_rollup() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::new(dir.path());
    let (mut w, metrics) = writer(&dir, config.clone());
    // Minute 0: 10, 20, 60 (memory on two of them); minute 1: 5. Another desktop's samples must
    // not leak in.
    let mut batch = vec![
        sample("a", T0 + 1000, 10.0, Some(100)),
        sample("a", T0 + 2000, 20.0, None),
        sample("b", T0 + 2500, 99.0, None),
    ];
    w.flush(&mut batch, &mut Vec::new());
    assert!(batch.is_empty());
    w.rollup().unwrap(); // minute 0 folded halfway through
    let mut batch = vec![
        sample("a", T0 + 59_000, 60.0, Some(300)),
        sample("a", T0 + 61_000, 5.0, None),
    ];
    w.flush(&mut batch, &mut Vec::new());
    assert_eq!(metrics.written(Kind::Sample).get(), 5);
    assert_eq!(metrics.batches().get(), 2);

    let mut conn = reader(&config);
    let expected = vec![(T0, 10.0, 30.0, 60.0), (T0 + 60_000, 5.0, 5.0, 5.0)];
    let minutes = |conn: &mut rusqlite::Connection| {
        query::history(conn, "a", T0, T0 + 120_000, Step::Buckets(60_000)).unwrap()
    };
    let before = minutes(&mut conn);
    assert_eq!(before.points, expected, "half folded, half on the fly");
    assert_eq!(before.memory_used, vec![Some(200.0), None]);
    w.rollup().unwrap();
    assert_eq!(minutes(&mut conn).points, expected, "all folded");
    w.rollup().unwrap();
    assert_eq!(
        minutes(&mut conn).points,
        expected,
        "a second rollup adds nothing"
    );

    let two = query::history(&mut conn, "a", T0, T0 + 120_000, Step::Buckets(120_000)).unwrap();
    assert_eq!(two.points, vec![(T0, 5.0, 23.75, 60.0)]);
    let raw = query::history(&mut conn, "a", T0, T0 + 60_000, Step::Raw).unwrap();
    assert_eq!(
        raw.points,
        vec![
            (T0 + 1000, 10.0, 10.0, 10.0),
            (T0 + 2000, 20.0, 20.0, 20.0),
            (T0 + 59_000, 60.0, 60.0, 60.0)
        ]
    );
    let unknown = query::history(&mut conn, "nobody", T0, T0 + 60_000, Step::Raw).unwrap();
    assert!(unknown.points.is_empty());
}

#[test]
fn retention_deletes_raw_samples_then_aggregates_then_audit_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.retention_raw = Duration::from_secs(3600);
    config.retention_minutes = Duration::from_secs(3 * 3600);
    config.retention_audit = Duration::from_secs(3 * 3600);
    let (mut w, _) = writer(&dir, config.clone());
    let audit = |ts| AuditRecord {
        ts,
        kind: AuditKind::Command,
        by: "anonymous".into(),
        from: None,
        desktop: Some("a".into()),
        detail: json!({}),
    };
    let mut batch = vec![
        sample("a", T0, 1.0, None),
        sample("a", T0 + 7_200_000, 2.0, None),
    ];
    w.flush(&mut batch, &mut vec![audit(T0), audit(T0 + 7_200_000)]);
    w.rollup().unwrap();
    let mut conn = reader(&config);
    let all = T0 + 4 * 3_600_000;
    let count = |conn: &mut rusqlite::Connection, step| {
        query::history(conn, "a", T0, all, step)
            .unwrap()
            .points
            .len()
    };
    let audits = |conn: &mut rusqlite::Connection| query::audit(conn, "a", 0).unwrap().0.len();

    // Two hours after the first sample: it is past the raw retention; its minute is not.
    w.cleanup(T0 + 7_200_000).unwrap();
    assert_eq!(count(&mut conn, Step::Raw), 1);
    assert_eq!(count(&mut conn, Step::Buckets(60_000)), 2);
    assert_eq!(audits(&mut conn), 2);
    // Four hours after: the first minute and audit record have gone too.
    w.cleanup(T0 + 4 * 3_600_000).unwrap();
    assert_eq!(count(&mut conn, Step::Raw), 0);
    assert_eq!(count(&mut conn, Step::Buckets(60_000)), 1);
    assert_eq!(audits(&mut conn), 1);
}

fn cpu(value: f64) -> ClientMessage {
    ClientMessage::Cpu(Cpu {
        value,
        cores: None,
        memory: Some(Memory { used: 1, total: 2 }),
        ts: None,
    })
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "{what} within 5 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn the_thread_writes_in_batches_and_only_desktops_samples() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path().join("data"));
    config.batch_interval = Duration::from_millis(300);
    let store = Store::open(&config, metrics_for_test()).unwrap();
    let id = ClientId::new("desk").unwrap();
    for i in 0..1000 {
        store.observe(&id, ClientMode::Desktop, &cpu(f64::from(i % 100)));
    }
    store.observe(&id, ClientMode::Web, &cpu(1.0));
    let metrics = store.metrics().unwrap();
    wait_for("1000 samples written", || {
        metrics.written(Kind::Sample).get() == 1000
    });
    let batches = metrics.batches().get();
    assert!(
        (1..=3).contains(&batches),
        "{batches} batches for 1000 samples"
    );
    let now = super::record::now_ms();
    let history = store
        .history(&id, now - 60_000, now + 1000, Some(Step::Raw))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        history.points.len(),
        1000,
        "the viewer's cpu was not recorded"
    );
    store.close().await;
    // Closed: later samples are refused without blocking.
    store.observe(&id, ClientMode::Desktop, &cpu(1.0));
    assert!(!Store::disabled().is_enabled());
    let none = Store::disabled().history(&id, 0, 1, None).await.unwrap();
    assert!(none.is_none());
}

#[tokio::test]
async fn a_store_that_cannot_keep_up_drops_and_counts_instead_of_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.queue = 16;
    config.batch_interval = Duration::from_millis(10);
    let store = Store::open(&config, metrics_for_test()).unwrap();
    // Another process holds the write lock: the store's thread waits in its first batch.
    let blocker = reader(&config);
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let metrics = store.metrics().unwrap();
    let queue_full = || {
        metrics
            .dropped(Kind::Sample, super::metrics::DropReason::QueueFull)
            .get()
    };
    let id = ClientId::new("desk").unwrap();
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while queue_full() == 0 {
        assert!(Instant::now() < deadline, "the queue never filled");
        store.observe(&id, ClientMode::Desktop, &cpu(1.0));
        sent += 1;
    }
    blocker.execute_batch("COMMIT").unwrap();
    store.close().await;
    let write_failed = metrics
        .dropped(Kind::Sample, super::metrics::DropReason::WriteFailed)
        .get();
    assert_eq!(
        metrics.written(Kind::Sample).get() + queue_full() + write_failed,
        sent,
        "each sample is written or counted as dropped"
    );
}
