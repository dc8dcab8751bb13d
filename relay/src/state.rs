//! What every request handler and session shares: settings, metrics, the matchmaker's address and
//! the shutdown signal.

use std::sync::Arc;

use actix::Addr;
use tokio::sync::watch;

use crate::auth::Authenticator;
use crate::cluster::metrics::ClusterMetrics;
use crate::config::Config;
use crate::limits::connections::ConnectionLimiter;
use crate::limits::signin::SignInLimiter;
use crate::matchmaker::Matchmaker;
use crate::metrics::Metrics;
use crate::store::Store;

pub struct RelayState {
    pub config: Config,
    pub metrics: Arc<Metrics>,
    /// Cluster mode only: the node's cluster metrics, for `/healthz`.
    pub cluster_metrics: Option<Arc<ClusterMetrics>>,
    pub matchmaker: Addr<Matchmaker>,
    /// Becomes `true` when the relay starts shutting down.
    pub shutdown: watch::Receiver<bool>,
    pub started: std::time::Instant,
    pub auth: Arc<Authenticator>,
    pub connections: Arc<ConnectionLimiter>,
    /// Sign-in attempts per address and per user name.
    pub signin: Arc<SignInLimiter>,
    /// History and the audit log on disk; [`Store::disabled`] without `--data-dir`.
    pub store: Store,
}

impl RelayState {
    pub fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}
