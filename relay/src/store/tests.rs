//! Unit tests of the store: aggregation (folded and not yet folded alike), batching through the
//! real thread and queue, and retention with an explicit clock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use deskbridge_protocol::{ClientId, ClientMessage, ClientMode, Cpu, Memory};
use prometheus_client::registry::Registry;
use serde_json::json;

use super::config::StoreConfig;
use super::metrics::{Kind, StoreMetrics};
use super::open::{OpenMinutes, GRACE_MS};
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
    let open = Arc::new(OpenMinutes::default());
    let w = Writer::new(conn, config, metrics.clone(), open).unwrap();
    (w, metrics)
}

fn metrics_for_test() -> Arc<StoreMetrics> {
    Arc::new(StoreMetrics::register(&mut Registry::default()))
}

fn reader(config: &StoreConfig) -> rusqlite::Connection {
    schema::connect(&config.database()).unwrap()
}

fn count(conn: &rusqlite::Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn minute_aggregates_are_exact_open_written_and_with_late_samples() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::new(dir.path());
    let (mut w, _) = writer(&dir, config.clone());
    let open = w.open_minutes();
    // Minute 0: 10, 20, 60 (memory on two of them); minute 1: 5. Another desktop's samples must
    // not leak in. Written while both minutes are open: journal rows, nothing in `raw` yet.
    let during = T0 + 62_000;
    w.write(
        &[
            sample("a", T0 + 1000, 10.0, Some(100)),
            sample("a", T0 + 2000, 20.0, None),
            sample("b", T0 + 2500, 99.0, None),
        ],
        &[],
        during,
        false,
    )
    .unwrap();
    w.write(
        &[
            sample("a", T0 + 59_000, 60.0, Some(300)),
            sample("a", T0 + 61_000, 5.0, None),
        ],
        &[],
        during,
        false,
    )
    .unwrap();
    let mut conn = reader(&config);
    assert_eq!(count(&conn, "raw"), 0);
    assert_eq!(count(&conn, "journal"), 3, "one row per batch and minute");
    let expected = vec![(T0, 10.0, 30.0, 60.0), (T0 + 60_000, 5.0, 5.0, 5.0)];
    let history = |conn: &mut rusqlite::Connection, step, from, to| {
        query::history(conn, &open, "a", from, to, step, 0).unwrap()
    };
    let minutes =
        |conn: &mut rusqlite::Connection| history(conn, Step::Buckets(60_000), T0, T0 + 120_000);
    let before = minutes(&mut conn);
    assert_eq!(before.points, expected, "open minutes, from memory");
    assert_eq!(before.memory_used, vec![Some(200.0), None]);

    // Minute 0 closes: one row per desktop in `raw` and `minutes`; its journal rows go.
    w.write(&[], &[], T0 + 60_000 + GRACE_MS, false).unwrap();
    assert_eq!(count(&conn, "raw"), 2);
    assert_eq!(count(&conn, "journal"), 1);
    assert_eq!(
        minutes(&mut conn).points,
        expected,
        "half written, half open"
    );
    // A late sample of minute 0 merges into its rows.
    w.write(
        &[sample("a", T0 + 30_000, 30.0, None)],
        &[],
        T0 + 100_000,
        false,
    )
    .unwrap();
    let late = vec![(T0, 10.0, 30.0, 60.0), (T0 + 60_000, 5.0, 5.0, 5.0)];
    assert_eq!(minutes(&mut conn).points, late, "(10+20+60+30)/4 = 30");
    assert_eq!(count(&conn, "raw"), 2, "appended to its row");

    let two = history(&mut conn, Step::Buckets(120_000), T0, T0 + 120_000);
    assert_eq!(two.points, vec![(T0, 5.0, 25.0, 60.0)]);
    let raw = history(&mut conn, Step::Raw, T0, T0 + 60_000);
    assert_eq!(
        raw.points,
        vec![
            (T0 + 1000, 10.0, 10.0, 10.0),
            (T0 + 2000, 20.0, 20.0, 20.0),
            (T0 + 30_000, 30.0, 30.0, 30.0),
            (T0 + 59_000, 60.0, 60.0, 60.0)
        ]
    );
    let recent = history(&mut conn, Step::Raw, T0 + 1500, T0 + 120_000);
    assert_eq!(
        recent.points.len(),
        4,
        "raw from rows and from memory, ranged"
    );
    let unknown =
        query::history(&mut conn, &open, "nobody", T0, T0 + 60_000, Step::Raw, 0).unwrap();
    assert!(unknown.points.is_empty());
}

#[test]
fn the_journal_is_read_back_after_a_kill_and_a_clean_stop_empties_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::new(dir.path());
    let (mut w, _) = writer(&dir, config.clone());
    let now = super::record::now_ms();
    let batch = [
        sample("a", now - 1000, 10.0, Some(5)),
        sample("a", now, 20.0, None),
    ];
    w.write(&batch, &[], now, false).unwrap();
    drop(w); // as if killed: nothing else written
    let (mut w, _) = writer(&dir, config.clone());
    let open = w.open_minutes();
    let mut conn = reader(&config);
    let raw = query::history(&mut conn, &open, "a", now - 120_000, now + 1, Step::Raw, 0).unwrap();
    assert_eq!(raw.points.len(), 2, "both samples, from the journal");
    w.fold(true);
    assert_eq!(count(&conn, "journal"), 0);
    assert!(open.read().is_empty());
    let raw = query::history(&mut conn, &open, "a", now - 120_000, now + 1, Step::Raw, 0).unwrap();
    assert_eq!(raw.points.len(), 2, "both samples, from `raw`");
    // A corrupt journal row is dropped with a log line, not a failed start.
    conn.execute("INSERT INTO journal (minute, data) VALUES (0, x'ff')", [])
        .unwrap();
    drop(w);
    let (_w, _) = writer(&dir, config.clone());
    assert_eq!(count(&conn, "journal"), 0);
}

#[test]
fn retention_deletes_raw_samples_then_aggregates_then_audit_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.retention_raw = Duration::from_secs(3600);
    config.retention_minutes = Duration::from_secs(3 * 3600);
    config.retention_audit = Duration::from_secs(3 * 3600);
    let (mut w, _) = writer(&dir, config.clone());
    let open = w.open_minutes();
    let audit = |ts| AuditRecord {
        ts,
        kind: AuditKind::Command,
        by: "anonymous".into(),
        from: None,
        desktop: Some("a".into()),
        detail: json!({}),
    };
    let batch = vec![
        sample("a", T0, 1.0, None),
        sample("a", T0 + 7_200_000, 2.0, None),
    ];
    w.write(
        &batch,
        &[audit(T0), audit(T0 + 7_200_000)],
        T0 + 7_300_000,
        true,
    )
    .unwrap();
    let mut conn = reader(&config);
    let all = T0 + 4 * 3_600_000;
    let count = |conn: &mut rusqlite::Connection, step| {
        query::history(conn, &open, "a", T0, all, step, 0)
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
