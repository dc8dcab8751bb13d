//! Starting and stopping a relay: the HTTP server, the matchmaker, and the orderly shutdown that
//! sends every session a 1001 close before the process exits.
//!
//! The server takes an already bound `TcpListener`, so tests run it on port 0 and a supervisor can
//! hand over a socket.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use actix::Actor;
use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpServer};
use deskbridge_protocol::ClientMode;
use tokio::sync::{oneshot, watch};

use crate::auth::Authenticator;
use crate::cluster::metrics::ClusterMetrics;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::limits::connections::ConnectionLimiter;
use crate::limits::signin::SignInLimiter;
use crate::matchmaker::messages::LeaveCluster;
use crate::matchmaker::{Matchmaker, SaveKnown};
use crate::metrics::Metrics;
use crate::state::RelayState;
use crate::store::metrics::StoreMetrics;
use crate::store::Store;

/// A relay whose server is running inside the current actix system.
pub struct RunningRelay {
    server: Server,
    handle: ServerHandle,
    state: web::Data<RelayState>,
    shutdown: watch::Sender<bool>,
    cluster: Option<Arc<Cluster>>,
}

impl RunningRelay {
    /// Starts the matchmaker and the HTTP server on `listener` (and, in cluster mode, the NATS
    /// connection, without waiting for NATS to be reachable). Must be called inside an actix
    /// system (`#[actix_web::main]` or `System::new().block_on`).
    pub async fn start(listener: TcpListener, config: Config) -> io::Result<Self> {
        let auth = Authenticator::new(
            config.keys.clone(),
            config.clock_skew,
            config.allow_anonymous,
            config.revoked_file.clone(),
            config.users_file.clone(),
        )
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        if let Some(dir) = &config.data_dir {
            auth.use_data_dir(dir)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        }
        let auth = Arc::new(auth);
        let mut metrics = Metrics::new();
        // Registered beside the relay's own, but held by the state (for `/healthz`), so the
        // relay's metrics know nothing of the cluster layer above them.
        let cluster_metrics = config
            .cluster
            .as_ref()
            .map(|c| Arc::new(ClusterMetrics::register(metrics.registry_mut(), &c.node_id)));
        let store_metrics = config
            .store
            .as_ref()
            .map(|_| Arc::new(StoreMetrics::register(metrics.registry_mut())));
        // One relay keeps its store in SQLite; a cluster's is JetStream (below).
        let mut store = match (&config.store, &store_metrics, &config.cluster) {
            (Some(store), Some(m), None) => {
                Store::open(store, m.clone()).map_err(|e| io::Error::other(e.to_string()))?
            }
            _ => Store::disabled(),
        };
        let metrics = Arc::new(metrics);
        let mut matchmaker = Matchmaker::new(&config, metrics.clone());
        let mut cluster = None;
        if let (Some(cluster_config), Some(cluster_metrics)) =
            (&config.cluster, cluster_metrics.clone())
        {
            let node = Cluster::connect(
                cluster_config,
                config.heartbeat_interval,
                config.max_message_size,
                cluster_metrics,
                metrics.clone(),
            )
            .await
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
            matchmaker = matchmaker.with_cluster(&config, node.clone());
            if let (Some(store_config), Some(m)) = (&config.store, &store_metrics) {
                store = Store::open_jetstream_node(
                    node.client.clone(),
                    &cluster_config.node_id,
                    store_config,
                    m.clone(),
                );
            }
            cluster = Some(node);
        }
        let matchmaker = matchmaker.with_store(store.clone()).start();
        let (shutdown, shutdown_rx) = watch::channel(false);
        if let Some(node) = &cluster {
            actix_web::rt::spawn(crate::cluster::auth_sync::run(
                node.clone(),
                auth.clone(),
                shutdown_rx.clone(),
            ));
        }
        let connections =
            ConnectionLimiter::new(config.max_connections, config.max_connections_per_address);
        let tls = config.tls.clone();
        let signin = Arc::new(SignInLimiter::new());
        let state = web::Data::new(RelayState {
            config,
            metrics,
            cluster_metrics,
            matchmaker,
            shutdown: shutdown_rx,
            started: Instant::now(),
            auth: auth.clone(),
            connections,
            signin: signin.clone(),
            store,
        });
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .configure(crate::http::routes)
        })
        // Shutdown is ours: sessions get their close frames before the server stops.
        .disable_signals()
        // Relayed frames are small and each is latency-bound: never hold one back until the
        // previous one is acknowledged (Nagle), which costs milliseconds under load.
        .tcp_nodelay(true)
        .shutdown_timeout(5);
        let server = match tls {
            Some(tls) => server.listen_rustls_0_23(listener, (*tls).clone())?,
            None => server.listen(listener)?,
        }
        .run();
        actix_web::rt::spawn(poll_revocations(auth, signin));
        let handle = server.handle();
        Ok(Self {
            server,
            handle,
            state,
            shutdown,
            cluster,
        })
    }

    /// The authenticator, to reload the revocation list (on SIGHUP).
    pub fn authenticator(&self) -> Arc<Authenticator> {
        self.state.auth.clone()
    }

    /// Runs until `stop` completes, then shuts down gracefully.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> io::Result<()> {
        let RunningRelay {
            server,
            handle,
            state,
            shutdown,
            cluster,
        } = self;
        let server = actix_web::rt::spawn(server);
        stop.await;
        graceful_shutdown(&handle, &state, &shutdown).await;
        // What it knew of every desktop, for the next start (with `--data-dir`).
        let _ = state.matchmaker.send(SaveKnown).await;
        // The store's last batch, after the sessions that fed it have gone and before the NATS
        // connection a cluster's store (JetStream) writes through is closed.
        state.store.close().await;
        if let Some(cluster) = cluster {
            let _ = state.matchmaker.send(LeaveCluster).await;
            cluster.close().await;
        }
        server
            .await
            .map_err(|e| io::Error::other(format!("server task failed: {e}")))?
    }
}

/// Re-reads the revocation list and the users file whenever they change, and forgets expired
/// share links, runtime revocations and idle sign-in limits.
async fn poll_revocations(auth: Arc<Authenticator>, signin: Arc<SignInLimiter>) {
    let mut tick = actix_web::rt::time::interval(Authenticator::REVOCATION_POLL);
    let mut ticks = 0u64;
    loop {
        tick.tick().await;
        ticks += 1;
        auth.prune_expired();
        if ticks.is_multiple_of(60) {
            signin.prune();
        }
        match auth.revocations.reload_if_changed() {
            Ok(Some(n)) => log::info!("revocation list changed: {n} revoked tokens"),
            Ok(None) => {}
            Err(e) => log::warn!("cannot re-read the revocation list (keeping the old one): {e}"),
        }
        match auth.users.reload_if_changed() {
            Ok(Some(n)) => log::info!("users file changed: {n} users"),
            Ok(None) => {}
            Err(e) => log::warn!("cannot re-read the users file (keeping the old one): {e}"),
        }
    }
}

async fn graceful_shutdown(
    handle: &ServerHandle,
    state: &RelayState,
    shutdown: &watch::Sender<bool>,
) {
    let open = open_sessions(&state.metrics);
    log::info!("shutting down: closing {open} sessions with 1001 (going away)");
    let _ = shutdown.send(true);
    // Sessions queue their close frames at once; wait until they are gone or the grace is over.
    let deadline = Instant::now() + state.config.shutdown_grace;
    while open_sessions(&state.metrics) > 0 && Instant::now() < deadline {
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    // Let the writers put the close frames on the wire.
    actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    handle.stop(true).await;
    log::info!("relay stopped");
}

fn open_sessions(metrics: &Metrics) -> i64 {
    metrics.sessions(ClientMode::Desktop).get()
        + metrics.sessions(ClientMode::Web).get()
        + metrics.sessions_unauthenticated().get()
}

/// A relay running on a thread of its own, for tests and embedding.
pub struct RelayHandle {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<io::Result<()>>>,
}

impl RelayHandle {
    /// Starts a relay on `listener` in a new thread with its own actix system.
    pub fn spawn(listener: TcpListener, config: Config) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = thread::Builder::new()
            .name(format!("relay-{addr}"))
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let relay = match RunningRelay::start(listener, config).await {
                        Ok(relay) => relay,
                        Err(e) => {
                            let _ = ready_tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                            return Err(e);
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    relay
                        .run_until(async move {
                            let _ = stop_rx.await;
                        })
                        .await
                })
            })?;
        ready_rx
            .recv()
            .map_err(|_| io::Error::other("relay thread died while starting"))??;
        Ok(Self {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Shuts the relay down gracefully and waits for it.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => log::error!("relay on {} failed: {e}", self.addr),
                Err(_) => log::error!("relay thread on {} panicked", self.addr),
            }
        }
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.stop_inner();
    }
}
