//! Beeps: a dedicated audio thread fed through a channel that holds at most one waiting request.
//!
//! rodio's device handle is not `Send`, so it cannot live in an actor; the thread owns all audio
//! work and the actor system only ever sees [`Audio::request`] and the reply callback. The output
//! device is opened for each beep and closed right after: an open device makes the mixer run (and
//! the CPU work) for silence, and can keep other programs from using the sound card.
//!
//! Beeps do not pile up: one plays, one may wait, and any further request is answered at once with
//! `ok: false` and a "busy" error. A person pressing Beep repeatedly hears at most two beeps, and
//! every request still gets exactly one answer.

pub mod tone;

use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread;
use std::time::{Duration, Instant};

use deskbridge_protocol::messages::MAX_REPLY_ERROR_LEN;
use deskbridge_protocol::BeepResult;

/// Error text of a request refused because a beep is playing and another is waiting.
pub const BUSY: &str = "busy: a beep is already playing and another is waiting; try again shortly";

/// Called once with the result of a beep, on the audio thread.
pub type Reply = Box<dyn FnOnce(BeepResult) + Send>;

struct Job {
    id: Option<String>,
    reply: Reply,
}

/// Handle to the audio thread. Dropping it lets the thread finish its queue and exit.
pub struct Audio {
    jobs: SyncSender<Job>,
}

impl Audio {
    /// Starts the audio thread, playing beeps on the default output device.
    pub fn spawn() -> std::io::Result<Self> {
        Self::spawn_with(play_beep)
    }

    /// Starts the audio thread with `play` doing the playing; tests pass a stand-in that blocks.
    pub fn spawn_with(
        mut play: impl FnMut() -> Result<(), String> + Send + 'static,
    ) -> std::io::Result<Self> {
        // Capacity 1: the job being played has left the channel, so this is "one waiting".
        let (jobs, queue) = mpsc::sync_channel::<Job>(1);
        thread::Builder::new().name("audio".into()).spawn(move || {
            for job in queue {
                // A panic in the audio stack must neither leave this request unanswered nor
                // end the thread for every later beep.
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut play))
                    .unwrap_or_else(|_| Err("the audio output failed unexpectedly".to_owned()));
                match &outcome {
                    Ok(()) => log::info!("beep played (id {:?})", job.id),
                    Err(e) => log::warn!("beep failed (id {:?}): {e}", job.id),
                }
                (job.reply)(result(job.id, outcome));
            }
        })?;
        Ok(Self { jobs })
    }

    /// Queues a beep. When one is already waiting, `reply` is called at once with the busy error.
    pub fn request(&self, id: Option<String>, reply: Reply) {
        match self.jobs.try_send(Job { id, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(job)) => {
                log::info!("beep refused (id {:?}): {BUSY}", job.id);
                (job.reply)(result(job.id, Err(BUSY.to_owned())));
            }
            Err(TrySendError::Disconnected(job)) => {
                (job.reply)(result(
                    job.id,
                    Err("the audio thread has stopped".to_owned()),
                ));
            }
        }
    }
}

fn result(id: Option<String>, outcome: Result<(), String>) -> BeepResult {
    BeepResult {
        id,
        ok: outcome.is_ok(),
        error: outcome.err().map(|e| truncate(e, MAX_REPLY_ERROR_LEN)),
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary; the relay refuses longer errors.
fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// Longest a device may take beyond the beep's own length before it is given up as stalled.
const STALL_GRACE: Duration = Duration::from_secs(2);

/// Opens the default output device, plays [`tone::BEEP`] and closes the device again.
fn play_beep() -> Result<(), String> {
    use rodio::{buffer::SamplesBuffer, DeviceSinkBuilder, Player};

    let open = DeviceSinkBuilder::from_default_device()
        .map(|b| b.with_error_callback(|e| log::warn!("audio output error: {e}")))
        .and_then(|b| b.open_sink_or_fallback());
    let mut device = open.map_err(|e| {
        format!(
            "no audio output device could be opened ({}); check that a sound device is \
             connected and not in exclusive use by another program",
            error_chain(&e)
        )
    })?;
    device.log_on_drop(false);
    let config = device.config();
    log::debug!(
        "audio output opened: {} channels at {} Hz, {:?} samples",
        config.channel_count(),
        config.sample_rate(),
        config.sample_format()
    );
    let rate = config.sample_rate();
    let samples = tone::samples(&tone::BEEP, rate.get());
    let player = Player::connect_new(device.mixer());
    player.append(SamplesBuffer::new(rodio::ChannelCount::MIN, rate, samples));
    let deadline = Instant::now() + tone::BEEP.duration + tone::BEEP.tail + STALL_GRACE;
    while !player.empty() {
        if Instant::now() > deadline {
            return Err(
                "the audio device stopped taking samples; it may be in use by another program"
                    .into(),
            );
        }
        thread::sleep(Duration::from_millis(10));
    }
    drop(player);
    drop(device);
    Ok(())
}

/// `error: cause: cause …` on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier, Mutex};

    fn collector() -> (Arc<Mutex<Vec<BeepResult>>>, impl Fn() -> Reply) {
        let results = Arc::new(Mutex::new(Vec::new()));
        let r = results.clone();
        (results, move || {
            let r = r.clone();
            Box::new(move |res| r.lock().unwrap().push(res)) as Reply
        })
    }

    fn wait_for(results: &Mutex<Vec<BeepResult>>, n: usize) -> Vec<BeepResult> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = results.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "only {} results", got.len());
            thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn one_plays_one_waits_the_rest_are_busy() {
        let gate = Arc::new(Barrier::new(2));
        let started = Arc::new(Barrier::new(2));
        let (g, s) = (gate.clone(), started.clone());
        let mut first = true;
        let audio = Audio::spawn_with(move || {
            if first {
                first = false;
                s.wait(); // tell the test the first beep is playing
                g.wait(); // and hold it until the test says so
            }
            Ok(())
        })
        .unwrap();
        let (results, reply) = collector();
        audio.request(Some("a".into()), reply());
        started.wait();
        audio.request(Some("b".into()), reply());
        audio.request(Some("c".into()), reply());
        audio.request(None, reply());
        // The two refused ones are answered at once, while "a" still plays.
        let refused = wait_for(&results, 2);
        assert_eq!(refused[0].id.as_deref(), Some("c"));
        assert_eq!(refused[1].id, None);
        assert!(refused
            .iter()
            .all(|r| !r.ok && r.error.as_deref() == Some(BUSY)));
        gate.wait();
        let all = wait_for(&results, 4);
        let played: Vec<_> = all[2..].iter().map(|r| (r.id.clone(), r.ok)).collect();
        assert_eq!(
            played,
            vec![(Some("a".into()), true), (Some("b".into()), true)]
        );
    }

    #[test]
    fn a_panicking_player_still_answers_and_keeps_serving() {
        let mut calls = 0;
        let audio = Audio::spawn_with(move || {
            calls += 1;
            if calls == 1 {
                panic!("device exploded");
            }
            Ok(())
        })
        .unwrap();
        let (results, reply) = collector();
        audio.request(Some("1".into()), reply());
        assert!(!wait_for(&results, 1)[0].ok);
        audio.request(Some("2".into()), reply());
        assert!(wait_for(&results, 2)[1].ok);
    }

    #[test]
    fn failures_carry_the_error_text() {
        let audio = Audio::spawn_with(|| Err("no audio output device".into())).unwrap();
        let (results, reply) = collector();
        audio.request(Some("x".into()), reply());
        let got = wait_for(&results, 1);
        assert_eq!(
            got[0],
            BeepResult {
                id: Some("x".into()),
                ok: false,
                error: Some("no audio output device".into())
            }
        );
        // The answer is a valid protocol message.
        got[0].validate().unwrap();
    }

    #[test]
    fn long_errors_are_cut_to_what_the_relay_accepts() {
        let r = result(None, Err("é".repeat(1000)));
        let e = r.error.unwrap();
        assert!(e.len() <= MAX_REPLY_ERROR_LEN && e.len() >= MAX_REPLY_ERROR_LEN - 1);
        assert!(e.chars().all(|c| c == 'é'));
    }

    #[test]
    fn error_chains_fit_on_one_line() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("inner\ndetail"));
        assert_eq!(error_chain(&e), "outer: inner detail");
    }
}
