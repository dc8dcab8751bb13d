//! CPU and memory sampling with sysinfo, refreshing only what a `cpu` report carries.
//!
//! One [`sysinfo::System`] lives as long as the agent: CPU usage is the difference between two
//! refreshes, so a fresh `System` per sample would always read zero, and keeping it avoids
//! re-reading the machine's static facts every second. No process list is ever loaded; that is
//! by far the most expensive thing sysinfo can do and the agent has no use for it.

use deskbridge_protocol::{Cpu, Memory};
use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

/// Takes `cpu` samples; call [`Sampler::sample`] at least `MINIMUM_CPU_UPDATE_INTERVAL` apart.
pub struct Sampler {
    system: System,
}

/// sysinfo could not read the machine's figures at all.
#[derive(Debug, thiserror::Error)]
#[error("cannot read CPU and memory figures: {0}")]
pub struct SamplerError(#[from] sysinfo::Error);

impl Sampler {
    /// Loads the CPU list and takes the baseline reading the first sample is measured against.
    pub fn new() -> Result<Self, SamplerError> {
        let system = System::new_with_specifics(Self::refresh_kind())?;
        Ok(Self { system })
    }

    fn refresh_kind() -> RefreshKind {
        RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing().with_usage())
            .with_memory(MemoryRefreshKind::nothing().with_ram())
    }

    /// Refreshes CPU usage and RAM and returns them as a `cpu` message body, stamped now.
    pub fn sample(&mut self) -> Cpu {
        self.system.refresh_specifics(Self::refresh_kind());
        let total = self.system.total_memory();
        Cpu {
            value: clamp_percent(self.system.global_cpu_usage()),
            cores: Some(
                self.system
                    .cpus()
                    .iter()
                    .map(|c| clamp_percent(c.usage()) as f32)
                    .collect(),
            ),
            memory: Some(Memory {
                // `used` can briefly read above `total` on some kernels; the relay refuses that.
                used: self.system.used_memory().min(total),
                total,
            }),
            ts: Some(deskbridge_protocol::unix_millis()),
        }
    }
}

/// Percentages from the OS can be NaN (no time passed) or a hair over 100 (rounding); the protocol
/// accepts exactly 0–100, so a glitchy reading is bent into range rather than rejected downstream.
fn clamp_percent(v: f32) -> f64 {
    if v.is_finite() {
        f64::from(v).clamp(0.0, 100.0)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_valid_cpu_messages() {
        let mut s = Sampler::new().unwrap();
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        // Give the CPU something to do so that the second reading has a difference to measure.
        let spin_until = std::time::Instant::now() + std::time::Duration::from_millis(50);
        while std::time::Instant::now() < spin_until {
            std::hint::black_box(0u64);
        }
        let cpu = s.sample();
        cpu.validate().unwrap();
        let cores = cpu.cores.as_ref().unwrap();
        assert!(!cores.is_empty());
        let memory = cpu.memory.unwrap();
        assert!(memory.total > 0 && memory.used <= memory.total);
        assert!(cpu.ts.unwrap() > 1_600_000_000_000);
        // The message round-trips through the protocol's parser as a relay would read it.
        let json = deskbridge_protocol::ClientMessage::Cpu(cpu).to_json();
        deskbridge_protocol::parse_client_message(&json).unwrap();
    }

    #[test]
    fn glitchy_percentages_are_bent_into_range() {
        assert_eq!(clamp_percent(f32::NAN), 0.0);
        assert_eq!(clamp_percent(100.0001), 100.0);
        assert_eq!(clamp_percent(-0.5), 0.0);
        assert_eq!(clamp_percent(42.0), 42.0);
    }
}
