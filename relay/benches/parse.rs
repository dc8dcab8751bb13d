//! Micro-benchmark of the first step of the hot path: reading and validating one client frame with
//! `deskbridge_protocol::parse_client_message`, for the frames a relay sees most.
//!
//! Run with `cargo bench -p deskbridge-relay --bench parse`; docs/performance.md has the figures.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use deskbridge_protocol::parse_client_message;

/// What the agent sends every second on an 8-core machine.
const CPU_8_CORES: &str = r#"{"event":"cpu","value":23.5,"cores":[12.0,35.1,7.5,64.2,3.3,18.9,41.0,9.8],"memory":{"used":4294967296,"total":17179869184},"ts":1764093600000}"#;
/// The 2018 prototype's frame.
const CPU_PROTOTYPE: &str = r#"{"event": "cpu", "value": 12.5}"#;
const BEEP: &str = r#"{"event":"beep","id":"7f3c9a"}"#;
const AUTH: &str =
    r#"{"event":"authentication","client_id":"alice-laptop","client_mode":"desktop"}"#;
/// Refused: a value out of range (the error path allocates its message).
const BAD_CPU: &str = r#"{"event":"cpu","value":101}"#;

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for (name, text) in [
        ("cpu_8_cores", CPU_8_CORES),
        ("cpu_prototype", CPU_PROTOTYPE),
        ("beep", BEEP),
        ("authentication", AUTH),
        ("cpu_out_of_range", BAD_CPU),
    ] {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(name, |b| b.iter(|| parse_client_message(black_box(text))));
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
