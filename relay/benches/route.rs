//! Micro-benchmark of routing one `cpu` frame as a desktop's session does it: append it to the
//! id's `History`, then [`fan_out`] the same reference-counted bytes into each viewer's `Outbox`
//! (the relay's own function, so this measures the code that runs); and of building the
//! `history` message a joining viewer gets.
//!
//! The writer tasks' side (taking the frame off each queue) is included, so the queues stay
//! empty and every iteration does the same work. Socket writes are not: they are the kernel's,
//! and the load generator measures them end to end.

use std::hint::black_box;

use bytestring::ByteString;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use deskbridge_protocol::{ClientId, EventKind};
use deskbridge_relay::bench_support::{fan_out, History, Metrics, Outbound, Outbox};
use tokio::sync::mpsc;

const CPU_8_CORES: &str = r#"{"event":"cpu","value":23.5,"cores":[12.0,35.1,7.5,64.2,3.3,18.9,41.0,9.8],"memory":{"used":4294967296,"total":17179869184},"ts":1764093600000}"#;

fn viewers(n: usize) -> (Vec<Outbox>, Vec<mpsc::Receiver<Outbound>>) {
    (0..n).map(|i| Outbox::new(i as u64, 64, 64)).unzip()
}

fn route(c: &mut Criterion) {
    let metrics = Metrics::new();
    let mut group = c.benchmark_group("route_telemetry");
    for n in [1usize, 10, 32] {
        let history = History::new(60);
        let (outboxes, mut queues) = viewers(n);
        let frame = ByteString::from_static(CPU_8_CORES);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                history.push(frame.clone());
                let delivered = fan_out(&outboxes, EventKind::Cpu, &frame, &metrics);
                for queue in &mut queues {
                    black_box(queue.try_recv().ok());
                }
                delivered
            })
        });
    }
    group.finish();

    let history = History::new(60);
    for _ in 0..60 {
        history.push(ByteString::from_static(CPU_8_CORES));
    }
    let id = ClientId::new("alice-laptop").expect("valid id");
    c.bench_function("history_message_60_samples", |b| {
        b.iter(|| history.to_message(black_box(&id)))
    });
}

criterion_group!(benches, route);
criterion_main!(benches);
