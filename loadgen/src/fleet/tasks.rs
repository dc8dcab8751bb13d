//! The life of one simulated connection once it has been welcomed: a desktop sends `cpu` at its
//! rate and reads beeps; a viewer reads `cpu` and sends beeps; the slow viewer stops reading.
//!
//! One task per connection drives both directions with `select!`, so nothing is shared between
//! the reading and the writing side and no frame waits on a lock. A desktop pings the relay as
//! the agent does, so heartbeats cost the relay what a real fleet's do: following `audience`, it
//! pings only when it has heard nothing for 10 s, or for two thirds of the timeout `audience`
//! states (the relay pings it at half of that); with `--ignore-audience`, as the agent did before
//! audiences, every 10 s.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::watch;
use tokio::time::{interval_at, Instant, Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use super::tally::{add, Tally, Window};
use crate::client::Ws;
use crate::clock::{instant_at, now_ns, ns_of};
use crate::frames::{self, CpuFrames, Incoming};

/// What one read from the socket means to a connection task.
enum Read<T> {
    Text(T),
    /// A ping, pong or binary frame: nothing to count.
    Other,
    /// Closed or broken: the task ends (and counts it).
    Ended,
}

fn read<E>(message: Option<Result<Message, E>>) -> Read<tokio_tungstenite::tungstenite::Utf8Bytes> {
    match message {
        Some(Ok(Message::Text(text))) => Read::Text(text),
        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => Read::Ended,
        Some(Ok(_)) => Read::Other,
    }
}

/// How often a desktop pings the relay, as the agent does by default (`--ping-interval`).
pub const AGENT_PING: Duration = Duration::from_secs(10);

/// After how long without a word from the relay a desktop that follows `audience` pings, as the
/// agent does: two thirds of the timeout the relay states (0: none stated), never sooner than
/// [`AGENT_PING`].
fn ping_period(timeout_ms: u64) -> Duration {
    AGENT_PING.max(Duration::from_millis(timeout_ms) * 2 / 3)
}

/// Codes a viewer gets back instead of a delivered beep.
const BEEP_REFUSALS: [&str; 3] = ["rate_limited", "peer_busy", "peer_offline"];

/// What every connection task shares.
#[derive(Clone)]
pub struct Shared {
    pub tally: Arc<Tally>,
    pub go: watch::Receiver<Option<Window>>,
    pub stop: watch::Receiver<bool>,
}

/// A desktop: `pair` is its global index among `pairs`.
pub struct Desktop {
    pub pair: usize,
    pub pairs: usize,
    /// Viewers that must be present before the desktop counts as ready.
    pub viewers: u64,
    /// Viewers whose deliveries are counted (all but a slow one).
    pub receivers: u64,
    pub rate: f64,
    /// Report at the interval the relay's `audience` asks for instead of at `rate`.
    pub follow_audience: bool,
    pub frames: CpuFrames,
}

/// A viewer: `slot` is its global index among `slots` viewers.
pub struct Viewer {
    pub slot: usize,
    pub slots: usize,
    pub beep_rate: f64,
    /// Stops reading at the window's split.
    pub slow: bool,
}

/// A ticker whose first tick is `phase` (0..1) of a period after `go`; none for a zero rate.
fn ticker(go: u64, rate: f64, phase: f64) -> Option<Interval> {
    if rate <= 0.0 {
        return None;
    }
    let period = Duration::from_secs_f64(1.0 / rate);
    let first = instant_at(go) + period.mul_f64(phase);
    let mut t = interval_at(Instant::from_std(first), period);
    // Keep the offered rate: if the generator falls behind, it catches up (and the lag shows
    // in `send_lag`), rather than silently sending less.
    t.set_missed_tick_behavior(MissedTickBehavior::Burst);
    Some(t)
}

async fn tick(t: &mut Option<Interval>) -> Instant {
    match t {
        Some(t) => t.tick().await,
        None => std::future::pending().await,
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn started(go: &mut watch::Receiver<Option<Window>>) -> Window {
    let window = match go.wait_for(Option::is_some).await {
        Ok(w) => *w,
        Err(_) => None,
    };
    match window {
        Some(w) => w,
        // The shard is gone before go; the stop branch ends the task.
        None => std::future::pending().await,
    }
}

pub async fn run_desktop(mut ws: Ws, d: Desktop, mut sh: Shared) {
    let tally = sh.tally.clone();
    let mut window: Option<Window> = None;
    let mut sender: Option<Interval> = None;
    let mut ready = false;
    let mut rate = d.rate;
    let phase = d.pair as f64 / d.pairs.max(1) as f64;
    // The fleet as it was: pings every 10 s from the start, spread over the period like the
    // reports. Following `audience`: a ping only after `ping_every` without a word.
    let mut pinger = if d.follow_audience {
        None
    } else {
        ticker(now_ns(), 1.0 / AGENT_PING.as_secs_f64(), phase)
    };
    let mut ping_every = AGENT_PING;
    let mut heard = Instant::now();
    let quiet = tokio::time::sleep_until(heard + ping_every);
    tokio::pin!(quiet);
    loop {
        tokio::select! {
            biased;
            _ = stopped(&mut sh.stop) => break,
            _ = tick(&mut pinger) => {
                if ws.send(Message::Ping(Default::default())).await.is_err() {
                    add(&tally.closed_early, 1);
                    return;
                }
            }
            _ = &mut quiet, if d.follow_audience => {
                let now = Instant::now();
                if now >= heard + ping_every {
                    if ws.send(Message::Ping(Default::default())).await.is_err() {
                        add(&tally.closed_early, 1);
                        return;
                    }
                    quiet.as_mut().reset(now + ping_every);
                } else {
                    quiet.as_mut().reset(heard + ping_every);
                }
            }
            w = started(&mut sh.go), if window.is_none() => {
                window = Some(w);
                sender = ticker(w.go, rate, phase);
            }
            at = tick(&mut sender) => {
                let w = window.expect("ticks only after go");
                let t = now_ns();
                if t >= w.end {
                    sender = None;
                    continue;
                }
                tally.send_lag.record(d.pair, t.saturating_sub(ns_of(at.into_std())));
                if ws.send(Message::text(d.frames.at(t))).await.is_err() {
                    add(&tally.closed_early, 1);
                    return;
                }
                if w.counts(t) {
                    add(&tally.cpu_sent, 1);
                    add(&tally.cpu_expected, d.receivers);
                }
            }
            message = ws.next() => {
                heard = Instant::now();
                let text = match read(message) {
                    Read::Text(text) => text,
                    Read::Ended => {
                        add(&tally.closed_early, 1);
                        return;
                    }
                    Read::Other => continue,
                };
                match frames::classify(&text) {
                    Incoming::Beep(stamp) => {
                        let now = now_ns();
                        if window.is_some_and(|w| w.counts(stamp)) {
                            add(&tally.beep_delivered, 1);
                            tally.beep.record(d.pair, now.saturating_sub(stamp));
                        }
                    }
                    Incoming::Presence if !ready && frames::presence_viewers(&text) == Some(d.viewers) => {
                        ready = true;
                        tally.ready_desktops.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Incoming::Error => tally.error(frames::error_code(&text)),
                    Incoming::Audience { interval_ms, timeout_ms } if d.follow_audience && interval_ms > 0 => {
                        let asked = 1000.0 / interval_ms as f64;
                        if asked != rate {
                            rate = asked;
                            if window.is_some() {
                                sender = ticker(now_ns(), rate, phase);
                            }
                        }
                        let period = ping_period(timeout_ms);
                        if period != ping_every {
                            ping_every = period;
                            quiet.as_mut().reset(heard + ping_every);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
}

pub async fn run_viewer(mut ws: Ws, v: Viewer, mut sh: Shared) {
    let tally = sh.tally.clone();
    let mut window: Option<Window> = None;
    let mut beeper: Option<Interval> = None;
    let mut beeps = 0u64;
    // Once stalled, the slow viewer never reads again but keeps pinging, so the relay sees a live
    // client that does not drain its socket: the worst case for the relay's memory.
    let mut stalled = false;
    let mut pinger: Option<Interval> = None;
    let mut stall_at: Option<Instant> = None;
    loop {
        tokio::select! {
            biased;
            _ = stopped(&mut sh.stop) => break,
            w = started(&mut sh.go), if window.is_none() => {
                window = Some(w);
                beeper = ticker(w.go, v.beep_rate, v.slot as f64 / v.slots.max(1) as f64);
                if v.slow {
                    stall_at = w.split.map(|s| Instant::from_std(instant_at(s)));
                }
            }
            _ = async { tokio::time::sleep_until(stall_at.expect("guarded")).await }, if stall_at.is_some() && !stalled => {
                stalled = true;
                pinger = ticker(now_ns(), 0.2, 1.0);
            }
            _ = tick(&mut pinger) => {
                if ws.send(Message::Ping(Default::default())).await.is_err() {
                    add(&tally.closed_early, 1);
                    return;
                }
            }
            _ = tick(&mut beeper) => {
                let w = window.expect("ticks only after go");
                let t = now_ns();
                if t >= w.end {
                    beeper = None;
                    continue;
                }
                beeps += 1;
                let id = (v.slot as u64) << 32 | beeps;
                if ws.send(Message::text(frames::beep(id, t))).await.is_err() {
                    add(&tally.closed_early, 1);
                    return;
                }
                if w.counts(t) {
                    add(&tally.beep_sent, 1);
                }
            }
            message = ws.next(), if !stalled => {
                let text = match read(message) {
                    Read::Text(text) => text,
                    Read::Ended => {
                        add(&tally.closed_early, 1);
                        return;
                    }
                    Read::Other => continue,
                };
                match frames::classify(&text) {
                    Incoming::Cpu(stamp) => {
                        let now = now_ns();
                        let Some(w) = window.filter(|w| w.counts(stamp)) else { continue };
                        if v.slow {
                            add(&tally.slow_received, 1);
                        } else {
                            add(&tally.cpu_delivered, 1);
                            let latency = now.saturating_sub(stamp);
                            if w.after_split(stamp) {
                                tally.cpu_after_split.record(v.slot, latency);
                            } else {
                                tally.cpu.record(v.slot, latency);
                            }
                        }
                    }
                    Incoming::Error => {
                        let code = frames::error_code(&text);
                        if window.is_some_and(|w| now_ns() >= w.start) && BEEP_REFUSALS.contains(&code.as_str()) {
                            add(&tally.beep_refused, 1);
                        }
                        tally.error(code);
                    }
                    _ => {}
                }
            }
        }
    }
    if !stalled {
        let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desktops_ping_like_the_agent() {
        assert_eq!(ping_period(0), AGENT_PING, "no timeout stated");
        assert_eq!(ping_period(30_000), Duration::from_secs(20));
        assert_eq!(ping_period(120_000), Duration::from_secs(80));
    }
}
