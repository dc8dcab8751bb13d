//! `deskbridge-relay`: parses the command line, sets up logging, and runs the relay until SIGINT
//! or SIGTERM — or runs one of the key and token tools. Everything else lives in the library.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use deskbridge_auth::{token, KeySet, Patterns, Role};
use deskbridge_protocol::{ClientId, ClientMode};
use deskbridge_relay::cli::{Cli, Command, KeygenArgs, ModeArg, ServeArgs, TokenArgs};
use deskbridge_relay::Authenticator;
use deskbridge_relay::{tls, RunningRelay};

fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match Cli::parse().command {
        Command::Serve(args) => serve(*args),
        Command::Keygen(args) => keygen(args),
        Command::Token(args) => mint_token(args),
        Command::User(args) => deskbridge_relay::cli::user::run(args),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = args.to_config().map_err(anyhow::Error::msg)?;
    if let Some(path) = &args.secret_file {
        config.keys = Some(KeySet::load(path)?);
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config.tls = Some(tls::server_config(cert, key)?);
    }
    if config.allow_anonymous {
        log::warn!(
            "--allow-anonymous: clients without a token are accepted; anyone who guesses an id can watch and beep that desktop"
        );
    }
    let listener = listen(args.listen).with_context(|| {
        format!(
            "cannot listen on {}: is another relay running there? choose another with --listen",
            args.listen
        )
    })?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let addr = listener.local_addr()?;
    actix_web::rt::System::new().block_on(async move {
        let relay = RunningRelay::start(listener, config).await?;
        log::info!("deskbridge relay listening on {scheme}://{addr}");
        actix_web::rt::spawn(reload_on_sighup(relay.authenticator()));
        relay.run_until(shutdown_signal()).await
    })?;
    Ok(())
}

/// Pending connections the kernel holds for the relay before it accepts them. After a restart
/// every agent dials at once; with the standard library's 128, thousands of handshakes overflow
/// the queue and each waits out a 1 s SYN retransmission (docs/performance.md, storm). The kernel
/// caps this at `net.core.somaxconn`.
const LISTEN_BACKLOG: i32 = 4096;

/// Binds like `TcpListener::bind` (SO_REUSEADDR, close-on-exec) but with [`LISTEN_BACKLOG`].
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

fn keygen(args: KeygenArgs) -> anyhow::Result<()> {
    let key = KeySet::generate(&args.path, args.force)?;
    eprintln!(
        "wrote key {} to {} (mode 0600); serve with --secret-file {}",
        key.kid,
        args.path.display(),
        args.path.display()
    );
    Ok(())
}

fn mint_token(args: TokenArgs) -> anyhow::Result<()> {
    let keys = KeySet::load(&args.secret_file)?;
    let (mode, default_ttl) = match args.mode {
        ModeArg::Desktop => (ClientMode::Desktop, Duration::from_secs(365 * 86_400)),
        ModeArg::Web => (ClientMode::Web, Duration::from_secs(12 * 3600)),
    };
    let ttl = args.ttl.unwrap_or(default_ttl);
    let token = match (&args.id, &args.desktops) {
        (Some(id), _) => {
            let id = ClientId::new(id).with_context(|| format!("--id {id:?}"))?;
            token::mint(&keys, &id, mode, ttl)
        }
        (None, Some(desktops)) => {
            if mode != ClientMode::Web {
                anyhow::bail!(
                    "--desktops is for web tokens (--mode web); a desktop token names its one --id"
                );
            }
            let patterns =
                Patterns::parse(desktops).with_context(|| format!("--desktops {desktops:?}"))?;
            // Viewer unless asked: a token for scripts and kiosks should watch, not act.
            let role = args.role.map_or(Role::Viewer, Role::from);
            token::mint_fleet(&keys, &patterns, role, ttl)
        }
        // clap requires one of them.
        (None, None) => anyhow::bail!("give --id ID or (with --mode web) --desktops PATTERNS"),
    };
    // The token is the command's output, for `$(deskbridge-relay token …)`; nothing else goes to
    // stdout.
    println!("{token}");
    Ok(())
}

/// Re-reads the revocation list and the users file on every SIGHUP.
async fn reload_on_sighup(auth: std::sync::Arc<Authenticator>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            log::warn!("cannot watch SIGHUP; the revocation list and users file are still re-read when they change");
            return;
        };
        while hup.recv().await.is_some() {
            match auth.revocations.reload() {
                Ok(n) => log::info!("SIGHUP: revocation list reloaded, {n} revoked tokens"),
                Err(e) => log::warn!("SIGHUP: cannot reload the revocation list: {e}"),
            }
            match auth.users.reload() {
                Ok(n) if auth.users.enabled() => {
                    log::info!("SIGHUP: users file reloaded, {n} users")
                }
                Ok(_) => {}
                Err(e) => {
                    log::warn!("SIGHUP: cannot reload the users file (keeping the old one): {e}")
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = auth;
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
