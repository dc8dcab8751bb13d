//! logind's `PrepareForSleep` and `PrepareForShutdown` signals, with a delay inhibitor lock; and,
//! when the agent is stopped, whether the user's session is closing (a logout).
//!
//! logind announces a sleep or shutdown, waits until every delay lock is released (at most its
//! `InhibitDelayMaxSec`, 5 s by default), then goes ahead. The agent holds one such lock while it is
//! awake; on the announcement it tells the relay why it is going, waits for the connection to
//! close, and only then releases the lock. After waking (`PrepareForSleep(false)`) it takes a new
//! lock and reconnects at once.
//!
//! The system bus is found the standard way (`DBUS_SYSTEM_BUS_ADDRESS`, else
//! `/run/dbus/system_bus_socket`); without one (a container, a minimal system) the agent logs it
//! once and carries on.

use actix::Addr;
use deskbridge_protocol::OfflineReason;
use futures_util::StreamExt as _;
use zbus::zvariant::{OwnedFd, OwnedObjectPath};

use crate::agent::{Agent, GoingAway, Woke};

#[zbus::proxy(
    interface = "org.freedesktop.login1.Manager",
    default_service = "org.freedesktop.login1",
    default_path = "/org/freedesktop/login1"
)]
trait Manager {
    fn inhibit(&self, what: &str, who: &str, why: &str, mode: &str) -> zbus::Result<OwnedFd>;

    #[zbus(name = "GetSessionByPID")]
    fn get_session_by_pid(&self, pid: u32) -> zbus::Result<OwnedObjectPath>;

    fn get_user(&self, uid: u32) -> zbus::Result<OwnedObjectPath>;

    #[zbus(signal)]
    fn prepare_for_sleep(&self, start: bool) -> zbus::Result<()>;

    #[zbus(signal)]
    fn prepare_for_shutdown(&self, start: bool) -> zbus::Result<()>;
}

#[zbus::proxy(
    interface = "org.freedesktop.login1.Session",
    default_service = "org.freedesktop.login1"
)]
trait Session {
    /// `online`, `active` or `closing`.
    #[zbus(property)]
    fn state(&self) -> zbus::Result<String>;
}

#[zbus::proxy(
    interface = "org.freedesktop.login1.User",
    default_service = "org.freedesktop.login1"
)]
trait User {
    /// `offline`, `lingering`, `online`, `active` or `closing`.
    #[zbus(property)]
    fn state(&self) -> zbus::Result<String>;
}

/// Whether the user is logging out: the login session this agent runs in is `closing` or, for an
/// agent run by the user's service manager (outside any session), the user is. Any error (no
/// logind, no session) means no.
pub async fn session_closing() -> bool {
    closing().await.unwrap_or_else(|e| {
        log::debug!("cannot ask logind whether the session is ending: {e}");
        false
    })
}

async fn closing() -> zbus::Result<bool> {
    let bus = zbus::Connection::system().await?;
    let manager = ManagerProxy::new(&bus).await?;
    if let Ok(path) = manager.get_session_by_pid(std::process::id()).await {
        let session = SessionProxy::builder(&bus)
            .path(path)?
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?;
        return Ok(session.state().await? == "closing");
    }
    use std::os::unix::fs::MetadataExt as _;
    let uid = std::fs::metadata("/proc/self")
        .map_err(|e| zbus::Error::Failure(e.to_string()))?
        .uid();
    let user = UserProxy::builder(&bus)
        .path(manager.get_user(uid).await?)?
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await?;
    Ok(user.state().await? == "closing")
}

/// Listens until the bus goes away; logs and returns when there is none.
pub async fn listen(agent: Addr<Agent>) {
    if let Err(e) = run(agent).await {
        log::info!(
            "not watching for sleep and shutdown (no logind on the system D-Bus: {e}); viewers will see this desktop as lost while it sleeps"
        );
    }
}

async fn run(agent: Addr<Agent>) -> zbus::Result<()> {
    let bus = zbus::Connection::system().await?;
    let manager = ManagerProxy::new(&bus).await?;
    // Subscribe before taking the lock, so no announcement can fall between the two.
    let mut sleeps = manager.receive_prepare_for_sleep().await?;
    let mut shutdowns = manager.receive_prepare_for_shutdown().await?;
    let mut lock = take_lock(&manager).await;
    log::info!("watching logind for sleep and shutdown");
    loop {
        let (reason, start) = tokio::select! {
            Some(signal) = sleeps.next() => (OfflineReason::Sleep, signal.args()?.start),
            Some(signal) = shutdowns.next() => (OfflineReason::Shutdown, signal.args()?.start),
            else => return Ok(()),
        };
        if start {
            log::info!(
                "the machine is about to {}: telling the relay",
                verb(reason)
            );
            // Resolves once the connection is closed (or its grace ran out).
            let _ = agent.send(GoingAway(reason)).await;
            drop(lock.take());
        } else if reason == OfflineReason::Sleep {
            log::info!("the machine woke up: reconnecting now");
            agent.do_send(Woke);
            lock = take_lock(&manager).await;
        }
    }
}

/// A delay lock on sleep and shutdown, released by dropping it.
async fn take_lock(manager: &ManagerProxy<'_>) -> Option<OwnedFd> {
    match manager
        .inhibit(
            "sleep:shutdown",
            "deskbridge-agent",
            "Tell the relay this desktop is going to sleep or shutting down",
            "delay",
        )
        .await
    {
        Ok(fd) => Some(fd),
        Err(e) => {
            log::warn!("cannot take a delay lock from logind ({e}); the relay may not hear of a sleep in time");
            None
        }
    }
}

fn verb(reason: OfflineReason) -> &'static str {
    match reason {
        OfflineReason::Shutdown => "shut down",
        _ => "sleep",
    }
}
