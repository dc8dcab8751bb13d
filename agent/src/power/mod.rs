//! Telling the relay before the machine sleeps or shuts down, and coming back at once after it
//! wakes.
//!
//! The agent is on the machine, so it knows what a relay can only guess: that the connection is
//! about to end because the lid closed, not because something broke. Before the machine sleeps or
//! shuts down the agent sends `going_away` with the reason and closes normally, so viewers read
//! "asleep since 22:10" instead of "connection lost"; after waking it reconnects at once, with no
//! backoff left over from before the sleep.
//!
//! When the agent is stopped (SIGTERM, SIGHUP, Ctrl-C) it says `quit` — or `logout` when the
//! user's login session is ending, which is what stops an agent started at login.
//!
//! Linux: logind over the system D-Bus ([`logind`]), with a delay inhibitor lock so the message
//! leaves before the machine sleeps. macOS: IOKit's system power notifications (`macos`: sleep
//! and wake; shutdown and logout stop the agent with SIGTERM, read as `quit`). Windows: a hidden
//! window's `WM_POWERBROADCAST` and `WM_ENDSESSION` (`windows`: sleep, wake, shutdown, logout).
//! The last two run on a thread of their own and reach the agent through [`bridge`]. Elsewhere
//! nothing is watched: those desktops show `lost` while asleep.

#[cfg(any(target_os = "macos", windows, test))]
mod bridge;
#[cfg(target_os = "linux")]
mod logind;
#[cfg(target_os = "macos")]
mod macos;
#[cfg(windows)]
mod windows;

use actix::Addr;
use deskbridge_protocol::OfflineReason;

use crate::agent::Agent;

/// Watching the machine's power state; [`Watcher::stop`] ends it.
pub struct Watcher {
    #[cfg(target_os = "linux")]
    handle: tokio::task::JoinHandle<()>,
    #[cfg(any(target_os = "macos", windows))]
    thread: Option<(platform::Listener, tokio::task::JoinHandle<()>)>,
}

#[cfg(target_os = "macos")]
use macos as platform;
#[cfg(windows)]
use windows as platform;

/// Starts watching the machine's power state for `agent`, where the platform allows it. Never
/// fails: without a way to watch, the agent works as before.
pub fn watch(agent: Addr<Agent>) -> Watcher {
    #[cfg(target_os = "linux")]
    {
        Watcher {
            handle: actix::spawn(logind::listen(agent)),
        }
    }
    #[cfg(any(target_os = "macos", windows))]
    {
        let (bridge, inbox) = bridge::bridge();
        let thread = platform::listen(bridge).map(|listener| {
            let forwarding = bridge::forward(inbox, agent.clone().recipient(), agent.recipient());
            (listener, actix::spawn(forwarding))
        });
        Watcher { thread }
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
    {
        let _ = agent;
        log::debug!("sleep and shutdown are not watched on this platform");
        Watcher {}
    }
}

impl Watcher {
    /// Ends the watch while the runtime still runs: the D-Bus connection must be dropped inside
    /// it (zbus needs the runtime to close it; dropped after, it aborts the process).
    pub async fn stop(self) {
        #[cfg(target_os = "linux")]
        {
            self.handle.abort();
            let _ = self.handle.await;
        }
        #[cfg(any(target_os = "macos", windows))]
        if let Some((listener, forwarding)) = self.thread {
            listener.stop();
            forwarding.abort();
            let _ = forwarding.await;
        }
    }
}

/// Why the agent is being stopped: `logout` if the platform says the user's session is ending,
/// else `quit`. Asks for at most half a second, so a stop never hangs on a slow bus.
pub async fn stop_reason() -> OfflineReason {
    #[cfg(target_os = "linux")]
    {
        let asked = actix::clock::timeout(
            std::time::Duration::from_millis(500),
            logind::session_closing(),
        );
        if let Ok(true) = asked.await {
            return OfflineReason::Logout;
        }
    }
    OfflineReason::Quit
}
