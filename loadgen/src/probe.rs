//! What the relay looks like from outside: its RSS and CPU time from `/proc/<pid>`, and its own
//! counters from `/metrics`.

use std::fs;
use std::io;

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcSample {
    pub rss_bytes: u64,
    /// User plus system time, seconds.
    pub cpu_seconds: f64,
    /// Times any of its threads was put on a CPU, summed from `/proc/<pid>/task/*/schedstat`:
    /// how often the process woke. A quiet relay's cost is mostly its wake-ups, and this count
    /// barely moves with the machine's other load, where the CPU time does.
    pub timeslices: u64,
}

impl ProcSample {
    pub fn rss_mib(&self) -> f64 {
        self.rss_bytes as f64 / (1024.0 * 1024.0)
    }
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/statm`.
pub fn sample(pid: u32) -> io::Result<ProcSample> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let statm = fs::read_to_string(format!("/proc/{pid}/statm"))?;
    let mut sample = parse(&stat, &statm, page_size(), clock_ticks())?;
    sample.timeslices = timeslices(pid);
    Ok(sample)
}

/// The third field of each thread's `schedstat`, summed (0 where the kernel keeps none). A
/// thread that ended in between takes its count with it, which the relay's fixed set of worker
/// threads never does in a window.
fn timeslices(pid: u32) -> u64 {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|task| fs::read_to_string(task.ok()?.path().join("schedstat")).ok())
        .filter_map(|line| line.split_whitespace().nth(2)?.parse::<u64>().ok())
        .sum()
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("unexpected {what}"))
}

fn parse(stat: &str, statm: &str, page: u64, ticks: u64) -> io::Result<ProcSample> {
    // The command name may contain spaces and parentheses; fields resume after the last ')'.
    let rest = &stat[stat.rfind(')').ok_or_else(|| bad("/proc/pid/stat"))? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    let tick = |i: usize| -> io::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| bad("/proc/pid/stat"))
    };
    let cpu_ticks = tick(11)? + tick(12)?;
    let rss_pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| bad("/proc/pid/statm"))?;
    Ok(ProcSample {
        rss_bytes: rss_pages * page,
        cpu_seconds: cpu_ticks as f64 / ticks as f64,
        timeslices: 0,
    })
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v > 0 {
        v as u64
    } else {
        4096
    }
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 {
        v as u64
    } else {
        100
    }
}

/// Fetches the relay's `/metrics` text (blocking; call from a blocking thread).
pub fn fetch_metrics(http_base: &str) -> Result<String, ureq::Error> {
    ureq::get(format!("{http_base}/metrics"))
        .call()?
        .into_body()
        .read_to_string()
}

/// The value of one series, written exactly as in the exposition (`name{label="x"}`).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// The relay's view of its sessions: desktops, viewers, unauthenticated, client ids.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Sessions {
    pub desktops: u64,
    pub viewers: u64,
    pub unauthenticated: u64,
    pub client_ids: u64,
}

impl Sessions {
    pub fn from_metrics(text: &str) -> Option<Self> {
        let get = |s: &str| metric(text, s).map(|v| v as u64);
        Some(Self {
            desktops: get(r#"deskbridge_sessions{mode="desktop"}"#)?,
            viewers: get(r#"deskbridge_sessions{mode="web"}"#)?,
            unauthenticated: get("deskbridge_sessions_unauthenticated")?,
            client_ids: get("deskbridge_client_ids")?,
        })
    }

    pub fn open(&self) -> u64 {
        self.desktops + self.viewers + self.unauthenticated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files_even_with_odd_command_names() {
        let stat = "1234 (relay (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 1000000 2560 18446744073709551615";
        let s = parse(stat, "25000 2560 300 1 0 500 0", 4096, 100).unwrap();
        assert_eq!(s.rss_bytes, 2560 * 4096);
        assert!((s.cpu_seconds - 3.0).abs() < 1e-9);
    }

    #[test]
    fn reads_this_process() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_bytes > 0);
    }

    #[test]
    fn finds_series_in_the_exposition() {
        let text = "# HELP x\ndeskbridge_sessions{mode=\"desktop\"} 3\ndeskbridge_sessions{mode=\"web\"} 4\ndeskbridge_sessions_unauthenticated 0\ndeskbridge_client_ids 3\n";
        let s = Sessions::from_metrics(text).unwrap();
        assert_eq!(
            s,
            Sessions {
                desktops: 3,
                viewers: 4,
                unauthenticated: 0,
                client_ids: 3
            }
        );
        assert_eq!(s.open(), 7);
        assert_eq!(metric(text, "deskbridge_sessions"), None);
    }
}
