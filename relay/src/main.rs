//! `deskbridge-relay`: parses the command line, sets up logging and runs the relay until SIGINT
//! or SIGTERM. Everything else lives in the library.

use std::net::TcpListener;

use anyhow::Context as _;
use clap::Parser;
use deskbridge_relay::cli::{Cli, Command};
use deskbridge_relay::RunningRelay;

fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let config = args.to_config().map_err(anyhow::Error::msg)?;
            let listener = TcpListener::bind(args.listen).with_context(|| {
                format!(
                    "cannot listen on {}: is another relay running there? choose another with --listen",
                    args.listen
                )
            })?;
            if config.allow_anonymous {
                log::warn!(
                    "--allow-anonymous: clients without a token are accepted; anyone who guesses an id can watch and beep that desktop"
                );
            }
            log::info!(
                "deskbridge relay listening on http://{}",
                listener.local_addr()?
            );
            actix_web::rt::System::new().block_on(async move {
                let relay = RunningRelay::start(listener, config)?;
                relay.run_until(shutdown_signal()).await
            })?;
        }
    }
    Ok(())
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM (systemd, docker stop).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                log::warn!("cannot watch SIGTERM ({e}); stopping on Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
