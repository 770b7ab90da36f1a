//! Connections: one driver session per connection config, shared by the stores that use it
//! (`Connector`), opened on first use, with TLS when asked.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::Weak;

use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::policies::retry::FallthroughRetryPolicy;
use tokio::sync::OnceCell;

use super::errors::connect_error;
use super::errors::connect_timeout;
use super::CassandraConfig;
use super::ConnectionKey;
use crate::error::Error;
use crate::error::Result;
use crate::log::Level as LogLevel;

use super::CassandraStore;

/// An OpenSSL context that verifies the nodes' certificates against the configured CA file
/// (or the system's CAs).
pub(super) fn tls_context(conn: &ConnectionKey) -> Result<openssl::ssl::SslContext> {
    use openssl::ssl::{SslContextBuilder, SslMethod, SslVerifyMode};
    let bad =
        |e: openssl::error::ErrorStack| Error::InvalidArgument(format!("TLS setup failed: {e}"));
    let mut ctx = SslContextBuilder::new(SslMethod::tls()).map_err(bad)?;
    match &conn.tls_ca_file {
        Some(ca) => ctx.set_ca_file(ca).map_err(|e| {
            Error::InvalidArgument(format!(
                "tls_ca_file {ca:?} holds no usable CA certificate: {e}"
            ))
        })?,
        None => ctx.set_default_verify_paths().map_err(bad)?,
    }
    ctx.set_verify(SslVerifyMode::PEER);
    Ok(ctx.build())
}

pub(super) type SessionSlot = Arc<OnceCell<Arc<Session>>>;

/// Hands out stores, sharing one driver session among all stores with the same connection
/// settings and one store among all adapters with the same config. It holds neither: a store
/// lives as long as someone holds it, and its session as long as some store using it lives,
/// so a session nobody can use any more is closed. Belongs to one process: the extension
/// makes a new one after a fork.
#[derive(Default)]
pub struct Connector {
    sessions: Mutex<HashMap<ConnectionKey, Weak<OnceCell<Arc<Session>>>>>,
    stores: Mutex<HashMap<CassandraConfig, Weak<CassandraStore>>>,
}

impl Connector {
    pub fn new() -> Self {
        Self::default()
    }

    /// The store for this config. Cheap: nothing connects until the first request.
    pub fn store(&self, config: &CassandraConfig) -> Arc<CassandraStore> {
        let mut stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = stores.get(config).and_then(Weak::upgrade) {
            return s;
        }
        stores.retain(|_, s| s.strong_count() > 0);
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, s| s.strong_count() > 0);
        let key = config.connection.clone();
        let slot = match sessions.get(&key).and_then(Weak::upgrade) {
            Some(slot) => slot,
            None => {
                let slot = SessionSlot::default();
                sessions.insert(key, Arc::downgrade(&slot));
                slot
            }
        };
        let store = Arc::new(CassandraStore::new(config.clone(), slot));
        stores.insert(config.clone(), Arc::downgrade(&store));
        store
    }

    /// How many driver sessions this process holds open.
    pub fn open_sessions(&self) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter_map(Weak::upgrade)
            .filter(|s| s.initialized())
            .count()
    }
}

impl CassandraStore {
    pub(super) async fn session(&self) -> Result<&Arc<Session>> {
        // A failed connect is not remembered: the next call tries again, so the store
        // recovers by itself once a node answers.
        self.session
            .get_or_try_init(|| async {
                let conn = &self.config.connection;
                let mut profile = ExecutionProfile::builder()
                    .consistency(self.config.consistency.0)
                    .request_timeout(Some(self.config.request_timeout))
                    .retry_policy(Arc::new(FallthroughRetryPolicy));
                if let Some(dc) = &conn.local_datacenter {
                    profile = profile.load_balancing_policy(
                        DefaultPolicy::builder()
                            .prefer_datacenter(dc.clone())
                            .permit_dc_failover(conn.datacenter_failover)
                            .build(),
                    );
                }
                let mut builder = SessionBuilder::new()
                    .known_nodes(conn.contact_points())
                    .connection_timeout(conn.connect_timeout)
                    // The keyspaces' replication (minimal metadata, no columns or types): without
                    // it the driver cannot tell a partition's replicas, and token-aware routing
                    // falls back to any node, a second hop for most requests on a cluster.
                    .fetch_schema_metadata(true)
                    .fetch_full_schema_metadata(false)
                    .default_execution_profile_handle(profile.build().into_handle());
                if let (Some(u), Some(p)) = (&conn.username, &conn.password) {
                    builder = builder.user(u, p);
                }
                if conn.tls {
                    builder = builder.tls_context(Some(tls_context(conn)?));
                }
                // Building also fetches cluster metadata; bound the whole of it.
                let limit = conn.connect_timeout * 2;
                let opened = match tokio::time::timeout(limit, builder.build()).await {
                    Ok(Ok(s)) => Ok(Arc::new(s)),
                    Ok(Err(e)) => Err(connect_error(&e, &self.hosts)),
                    Err(_) => Err(connect_timeout(&self.hosts, limit.as_secs_f64())),
                };
                // A failure is logged by the call that tried (with its attempt number).
                if let Ok(s) = &opened {
                    self.log(LogLevel::Info, || {
                        let nodes = s.get_cluster_state().get_nodes_info().len();
                        format!("session opened to {} ({nodes} nodes known)", self.hosts)
                    });
                }
                opened
            })
            .await
    }
}
