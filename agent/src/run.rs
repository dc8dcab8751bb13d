//! `deskbridge-agent run`: builds the HTTP client, starts the [`Agent`] actor and stops it cleanly
//! on Ctrl-C or SIGTERM (what `systemctl stop` and logout send), so the relay sees a proper close
//! and marks the desktop offline at once instead of after a timeout.
//!
//! Proxies: awc has no support for HTTP(S) proxies or `HTTPS_PROXY` / `NO_PROXY`, so the agent
//! always connects directly to the relay. A network that only allows traffic through a proxy needs
//! the relay reachable directly (or a transparent proxy).

use actix::Actor;
use awc::http::header;

use crate::agent::{Agent, Shutdown};
use crate::audio::Audio;
use crate::power;
use crate::sampler::Sampler;
use crate::settings::Settings;
use crate::tls;

/// Runs until a stop signal arrives.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    log::info!(
        "deskbridge-agent {} starting (config {}): relay {}, id {}, {} token, reporting at most every {} (as often as the relay asks)",
        env!("CARGO_PKG_VERSION"),
        settings.config_path.display(),
        settings.relays,
        settings.id,
        if settings.token.is_some() {
            "with a"
        } else {
            "no"
        },
        humantime::format_duration(settings.interval),
    );
    let client = client(&settings)?;
    let sampler = Sampler::new()?;
    let audio = Audio::spawn()?;
    let agent = Agent::new(settings, client, sampler, audio).start();
    let power = power::watch(agent.clone());
    stop_signal().await?;
    // A stop is the user quitting the agent, unless their session is ending around it.
    let reason = power::stop_reason().await;
    agent.send(Shutdown(reason)).await?;
    power.stop().await;
    Ok(())
}

/// The awc client, with TLS set up only when the relay is `wss://`.
fn client(settings: &Settings) -> anyhow::Result<awc::Client> {
    let timeout = settings.timing.connect_timeout;
    let mut connector = awc::Connector::new()
        .timeout(timeout)
        .handshake_timeout(timeout);
    if settings.relays.any_tls() {
        connector = connector.rustls_0_23(tls::client_config(settings.ca_file.as_deref())?);
    }
    Ok(awc::Client::builder()
        .connector(connector)
        .timeout(timeout)
        .add_default_header((
            header::USER_AGENT,
            concat!("deskbridge-agent/", env!("CARGO_PKG_VERSION")),
        ))
        .finish())
}

#[cfg(unix)]
async fn stop_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
        _ = hangup.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
async fn stop_signal() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}
