//! The beep's samples: a sine tone with raised-cosine fades, computed up front.
//!
//! A tone that starts or stops at full amplitude clicks audibly, so both ends are shaped with a
//! half cosine over a few milliseconds. The samples are generated at the output device's own rate
//! so nothing is resampled, and followed by a short silence: when the player reports the source
//! finished, the last buffer may still be in the device, and closing the device then cuts only
//! silence, never the tail of the tone.

use std::f32::consts::PI;
use std::time::Duration;

/// What the beep sounds like.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToneSpec {
    pub frequency_hz: f32,
    pub duration: Duration,
    /// Peak level, 0–1. Well below full scale: a beep should not startle.
    pub amplitude: f32,
    /// Length of each of the fade-in and fade-out.
    pub fade: Duration,
    /// Silence appended after the tone (see the module docs).
    pub tail: Duration,
}

/// The agent's beep: 880 Hz (A5) for 200 ms.
pub const BEEP: ToneSpec = ToneSpec {
    frequency_hz: 880.0,
    duration: Duration::from_millis(200),
    amplitude: 0.3,
    fade: Duration::from_millis(10),
    tail: Duration::from_millis(100),
};

/// Mono samples of `spec` at `sample_rate` Hz: the tone, then the silent tail.
pub fn samples(spec: &ToneSpec, sample_rate: u32) -> Vec<f32> {
    let rate = sample_rate as f32;
    let tone_len = (spec.duration.as_secs_f32() * rate).round() as usize;
    let tail_len = (spec.tail.as_secs_f32() * rate).round() as usize;
    let fade_len = ((spec.fade.as_secs_f32() * rate).round() as usize).min(tone_len / 2);
    let step = 2.0 * PI * spec.frequency_hz / rate;
    let mut out = Vec::with_capacity(tone_len + tail_len);
    for i in 0..tone_len {
        let from_edge = i.min(tone_len - 1 - i);
        let gain = if from_edge < fade_len {
            // 0 at the very first/last sample, rising smoothly to 1 at the end of the fade.
            0.5 - 0.5 * (PI * from_edge as f32 / fade_len as f32).cos()
        } else {
            1.0
        };
        out.push(spec.amplitude * gain * (step * i as f32).sin());
    }
    out.resize(tone_len + tail_len, 0.0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 48_000;

    fn zero_crossings(s: &[f32]) -> usize {
        s.windows(2)
            .filter(|w| (w[0] < 0.0) != (w[1] < 0.0) && w[0] != 0.0 && w[1] != 0.0)
            .count()
    }

    #[test]
    fn length_and_tail_match_the_spec() {
        let s = samples(&BEEP, RATE);
        assert_eq!(s.len(), 9_600 + 4_800);
        assert!(s[9_600..].iter().all(|&x| x == 0.0));
    }

    #[test]
    fn frequency_is_right() {
        let s = samples(&BEEP, RATE);
        // 880 Hz crosses zero 1,760 times a second: 352 times in 200 ms.
        let crossings = zero_crossings(&s[..9_600]);
        assert!((348..=354).contains(&crossings), "{crossings}");
    }

    #[test]
    fn peak_is_the_amplitude_and_the_ends_are_silent() {
        let s = samples(&BEEP, 44_100);
        let peak = s.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!((peak - 0.3).abs() < 0.001, "{peak}");
        assert_eq!(s[0], 0.0);
        let last_tone = (0.2 * 44_100.0) as usize - 1;
        assert!(s[last_tone].abs() < 1e-3, "{}", s[last_tone]);
    }

    #[test]
    fn no_clicks_anywhere() {
        // A click is a jump larger than the sine itself can make between two samples.
        let s = samples(&BEEP, RATE);
        let max_step = 2.0 * PI * 880.0 / RATE as f32 * 0.3 * 1.05;
        for (i, w) in s.windows(2).enumerate() {
            assert!((w[1] - w[0]).abs() <= max_step, "jump at {i}");
        }
        // And the fade really shapes the start: 1 ms in, the level is still far below the peak.
        let first_ms = &s[..48];
        assert!(first_ms.iter().all(|x| x.abs() < 0.03));
    }

    #[test]
    fn tiny_rates_and_durations_do_not_panic() {
        let spec = ToneSpec {
            duration: Duration::from_millis(1),
            ..BEEP
        };
        let s = samples(&spec, 1_000);
        assert_eq!(s.len(), 1 + 100);
        assert!(samples(&spec, 1).len() <= 1);
    }
}
