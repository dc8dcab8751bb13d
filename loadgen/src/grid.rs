//! A fleet grid watching part of the load generator's desktops: one `fleet` connection, as a
//! signed-in page's grid opens, with a fleet web token whose desktop patterns cover the chosen
//! share of the run's ids. Those desktops then count as on a grid (`audience.overview`), and
//! the relay asks them for the overview interval.
//!
//! Which desktops: desktop `g` (id `lg-<run>-<g>`) is on the grid when `g % 100` is in
//! `1..=percent`, so a whole percent of any fleet of a multiple of 100, disjoint from the
//! detail-watched desktops of the audience scenario at up to 1 % (`g % 100 == 0`). The patterns
//! are globs on the id's last two digits (`lg-<run>-*07`) plus the one-digit ids (`lg-<run>-7`):
//! at most 198 entries, within a token's limit of 256.

use std::time::Duration;

use anyhow::{bail, Context as _};
use deskbridge_auth::{KeySet, Patterns, Role};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, Dial};
use crate::clock::now_ns;
use crate::frames::{self, Incoming};
use crate::latency::{Hist, Recorder};
use crate::target::Target;

/// Whether desktop `g` is on a grid covering `percent` % of the fleet.
pub fn on_grid(g: usize, percent: u32) -> bool {
    (1..=percent as usize).contains(&(g % 100))
}

/// The desktop patterns that match exactly the ids of [`on_grid`] desktops of run `run_id`.
pub fn patterns(run_id: &str, percent: u32) -> String {
    let mut list = Vec::new();
    for r in 1..=percent.min(99) {
        list.push(format!("lg-{run_id}-*{r:02}"));
        if r < 10 {
            list.push(format!("lg-{run_id}-{r}"));
        }
    }
    list.join(",")
}

/// What the grid saw.
#[derive(Debug, Default)]
pub struct GridCounts {
    /// `forward` frames (our `cpu` frames) that arrived in the window.
    pub forwards: u64,
    /// Send-to-arrival time of those, when the desktops ran in this process (one clock).
    pub latency: Hist,
    /// `presence` frames, greeting included.
    pub presence: u64,
    pub errors: u64,
}

/// What the grid's task gathered: every forward's arrival and stamp, and the other counts.
type Gathered = (Vec<(u64, u64)>, GridCounts);

/// A running grid: stop it with [`Grid::finish`].
pub struct Grid {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<Gathered>>,
}

impl Grid {
    /// Opens the fleet connection for `percent` % of run `run_id`'s desktops and reads it until
    /// [`Grid::finish`]. Needs the relay's key file: a fleet connection needs a fleet token.
    pub async fn open(
        target: &Target,
        keys: &KeySet,
        run_id: &str,
        percent: u32,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let desktops = Patterns::parse(&patterns(run_id, percent))
            .map_err(|e| anyhow::anyhow!("grid patterns: {e}"))?;
        let token = deskbridge_auth::token::mint_fleet(
            keys,
            &desktops,
            Role::Viewer,
            Duration::from_secs(3600),
        );
        let dial = Dial {
            source: target.source_ip(0, 1),
            recv_buffer: None,
        };
        let mut ws = tokio::time::timeout(timeout, client::open(target, dial))
            .await
            .context("the grid's connection timed out")??;
        let auth =
            format!(r#"{{"event":"authentication","client_mode":"fleet","token":"{token}"}}"#);
        ws.send(Message::text(auth)).await?;
        let welcome = async {
            while let Some(message) = ws.next().await {
                if let Message::Text(text) = message? {
                    match frames::classify(&text) {
                        Incoming::Welcome => return Ok(()),
                        Incoming::Error => bail!("the relay refused the grid: {text}"),
                        _ => {}
                    }
                }
            }
            bail!("the relay closed the grid's connection")
        };
        tokio::time::timeout(timeout, welcome)
            .await
            .context("no welcome for the grid")??;
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut counts = GridCounts::default();
            let mut arrivals = Vec::new();
            loop {
                tokio::select! {
                    biased;
                    _ = stopped.wait_for(|s| *s) => break,
                    message = ws.next() => {
                        let text = match message {
                            Some(Ok(Message::Text(text))) => text,
                            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                                bail!("the relay closed the grid's connection")
                            }
                            Some(Ok(_)) => continue,
                        };
                        match frames::classify(&text) {
                            Incoming::Forward(stamp) => arrivals.push((now_ns(), stamp)),
                            Incoming::Presence => counts.presence += 1,
                            Incoming::Error => counts.errors += 1,
                            _ => {}
                        }
                    }
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
            Ok((arrivals, counts))
        });
        Ok(Self { stop, task })
    }

    /// Stops the grid; counts the forwards that arrived from `start` to `end` (this process's
    /// clock, ns), and their latency if `same_clock` (the desktops ran in this process).
    pub async fn finish(
        self,
        start: u64,
        end: u64,
        same_clock: bool,
    ) -> anyhow::Result<GridCounts> {
        let _ = self.stop.send(true);
        let (arrivals, mut counts) = self.task.await.context("the grid's task failed")??;
        let latency = Recorder::default();
        for (at, stamp) in arrivals
            .into_iter()
            .filter(|(at, _)| (start..end).contains(at))
        {
            counts.forwards += 1;
            if same_clock && stamp <= at {
                latency.record(0, at - stamp);
            }
        }
        counts.latency = latency.snapshot();
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patterns_match_exactly_the_desktops_on_the_grid() {
        for percent in [1, 10, 25, 99] {
            let p = Patterns::parse(&patterns("r1a", percent)).expect("valid patterns");
            let mut on = 0;
            for g in 0..10_000 {
                let id = format!("lg-r1a-{g}");
                assert_eq!(p.matches(&id), on_grid(g, percent), "{id} at {percent} %");
                on += usize::from(on_grid(g, percent));
            }
            assert_eq!(on, percent as usize * 100, "{percent} % of 10,000");
        }
        assert!(
            !on_grid(0, 10) && !on_grid(100, 10),
            "the detail-watched desktops are not"
        );
    }
}
