//! Beeps through a real relay, played for real: ALSA writes what the agent plays to a file, and
//! the test measures the tone's frequency and length in the captured samples.

use std::time::Duration;

use deskbridge_protocol::{BeepResult, DesktopState, ServerMessage};

use deskbridge_testkit::{start_relay, ws_url, Client};

use crate::harness::{capture_to_file, relay_config, AgentProcess, Home, FAST};

async fn beep(viewer: &mut Client, id: &str) -> BeepResult {
    viewer
        .send(&format!(r#"{{"event":"beep","id":"{id}"}}"#))
        .await;
    viewer
        .expect(
            &format!("beep_result {id}"),
            Duration::from_secs(15),
            |m| match m {
                ServerMessage::BeepResult(r) if r.id.as_deref() == Some(id) => Some(r.clone()),
                _ => None,
            },
        )
        .await
}

/// `(channels, rate)` from the agent's "audio output opened" log line; the format must be F32.
fn output_format(log: &str) -> (usize, f64) {
    let line = log
        .lines()
        .find(|l| l.contains("audio output opened:"))
        .unwrap_or_else(|| panic!("no 'audio output opened' line in the log:\n{log}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "opened:").unwrap();
    let channels = words[at + 1].parse().unwrap();
    let rate = words[at + 4].parse().unwrap();
    assert!(
        line.contains("F32"),
        "the capture is read as f32 samples: {line}"
    );
    (channels, rate)
}

#[actix_rt::test]
async fn a_beep_is_played_as_an_880_hz_tone_and_acknowledged() {
    let relay = start_relay(relay_config());
    let home = Home::new();
    let capture = home.path().join("played.raw");
    capture_to_file(&home, &capture);
    let mut viewer = Client::join(relay.addr(), "beep-box", "web").await;
    let agent = AgentProcess::run(&home, &ws_url(relay.addr()), "beep-box", FAST);
    viewer
        .expect_desktop(DesktopState::Online, Duration::from_secs(10))
        .await;

    let result = beep(&mut viewer, "b-1").await;
    assert!(result.ok, "{result:?}\n{}", agent.log());
    assert_eq!(result.error, None);

    let (channels, rate) = output_format(&agent.log());
    let bytes = std::fs::read(&capture).expect("ALSA wrote the capture file");
    let samples: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let left: Vec<f32> = samples.iter().step_by(channels).copied().collect();
    let first = left
        .iter()
        .position(|s| *s != 0.0)
        .expect("some sound was captured");
    let last = left.iter().rposition(|s| *s != 0.0).unwrap();
    let tone = &left[first..=last];
    let seconds = tone.len() as f64 / rate;
    assert!(
        (0.18..=0.22).contains(&seconds),
        "the tone lasts {seconds:.3} s, expected 0.2 s"
    );
    let crossings = tone
        .windows(2)
        .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
        .count();
    let hz = crossings as f64 / 2.0 / seconds;
    assert!(
        (860.0..=900.0).contains(&hz),
        "the tone is {hz:.0} Hz, expected 880 Hz"
    );
    let peak = tone.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    assert!((0.25..=0.35).contains(&peak), "peak {peak}");
    // The fade-in: the first millisecond stays far below the peak, so the start does not click.
    let ms = (rate / 1000.0) as usize;
    assert!(tone[..ms].iter().all(|s| s.abs() < 0.05), "no fade-in");
    if channels == 2 {
        let right: Vec<f32> = samples.iter().skip(1).step_by(2).copied().collect();
        assert_eq!(left, right, "the mono tone is on both channels");
    }

    // A beep without an id (the prototype's message) is played and answered too.
    viewer.send(r#"{"event":"beep"}"#).await;
    let anonymous = viewer
        .expect(
            "beep_result without id",
            Duration::from_secs(15),
            |m| match m {
                ServerMessage::BeepResult(r) if r.id.is_none() => Some(r.clone()),
                _ => None,
            },
        )
        .await;
    assert!(anonymous.ok, "{anonymous:?}");
    relay.stop();
}

#[actix_rt::test]
async fn a_beep_without_an_audio_device_is_answered_with_a_clear_error() {
    let relay = start_relay(relay_config());
    let home = Home::new();
    // The default device is a sound card that does not exist.
    std::fs::write(
        home.path().join(".asoundrc"),
        "pcm.!default { type hw; card 7; device 0 }\nctl.!default { type hw; card 7 }\n",
    )
    .unwrap();
    let mut viewer = Client::join(relay.addr(), "mute-box", "web").await;
    let agent = AgentProcess::run(&home, &ws_url(relay.addr()), "mute-box", FAST);
    viewer
        .expect_desktop(DesktopState::Online, Duration::from_secs(10))
        .await;

    let result = beep(&mut viewer, "b-9").await;
    assert!(!result.ok, "{result:?}");
    let error = result.error.expect("an error text");
    assert!(
        error.starts_with("no audio output device could be opened"),
        "{error}"
    );
    // The agent carries on: reports keep coming after the failed beep.
    viewer
        .expect("cpu after the failed beep", Duration::from_secs(5), |m| {
            matches!(m, ServerMessage::Cpu(_)).then_some(())
        })
        .await;
    assert!(agent.log().contains("beep failed"), "{}", agent.log());
    relay.stop();
}
