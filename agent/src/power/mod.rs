//! Telling the relay before the machine sleeps or shuts down, and coming back at once after it
//! wakes.
//!
//! The agent is on the machine, so it knows what a relay can only guess: that the connection is
//! about to end because the lid closed, not because something broke. Before the machine sleeps or
//! shuts down the agent sends `going_away` with the reason and closes normally, so viewers read
//! "asleep since 22:10" instead of "connection lost"; after waking it reconnects at once, with no
//! backoff left over from before the sleep.
//!
//! Linux: logind over the system D-Bus ([`logind`]), with a delay inhibitor lock so the message
//! leaves before the machine sleeps. Elsewhere nothing is watched yet (macOS power notifications
//! and Windows `WM_POWERBROADCAST` are the next step): those desktops show `lost` while asleep, as
//! before.

#[cfg(target_os = "linux")]
mod logind;

use actix::Addr;

use crate::agent::Agent;

/// Starts watching the machine's power state for `agent`, where the platform allows it. Never
/// fails: without a way to watch, the agent works as before.
pub fn watch(agent: Addr<Agent>) {
    #[cfg(target_os = "linux")]
    actix::spawn(logind::listen(agent));
    #[cfg(not(target_os = "linux"))]
    {
        let _ = agent;
        log::debug!("sleep and shutdown are not watched on this platform");
    }
}
