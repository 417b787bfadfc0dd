//! Joining a cluster at start-up: a node is clustered when `storage` is a PostgreSQL URL
//! and `cluster.nats_url` is set (`docs/cluster.md`).

use std::sync::Arc;

use ferrim_core::messaging::DeliveryBus;
use ferrim_core::presence::Presence;
use ferrim_core::sessions::SessionRegistry;

use crate::config::{Settings, Storage};

#[cfg(feature = "postgres")]
pub use ferrim_cluster::Cluster;

/// In a cluster, app settings changed through one node apply on the others within this.
pub const APP_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// Stands in for the cluster in a build without PostgreSQL (never constructed).
#[cfg(not(feature = "postgres"))]
pub enum Cluster {}

#[cfg(not(feature = "postgres"))]
impl Cluster {
    pub async fn shutdown(&self) {
        match *self {}
    }
}

/// The cluster as the deployment-wide online view.
pub fn presence(cluster: &Arc<Cluster>) -> Arc<dyn Presence> {
    #[cfg(feature = "postgres")]
    return cluster.clone();
    #[cfg(not(feature = "postgres"))]
    match **cluster {}
}

/// The cluster as the delivery bus.
pub fn bus(cluster: &Arc<Cluster>) -> Arc<dyn DeliveryBus> {
    #[cfg(feature = "postgres")]
    return cluster.clone();
    #[cfg(not(feature = "postgres"))]
    match **cluster {}
}

/// Joins the cluster the settings describe, if any. `sessions` is this node's registry.
pub async fn join(
    settings: &Settings,
    sessions: Arc<SessionRegistry>,
) -> anyhow::Result<Option<Arc<Cluster>>> {
    let Some(nats_url) = settings.cluster.nats_url.clone().filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let Storage::Postgres(database_url) = settings.storage()? else {
        anyhow::bail!(
            "cluster.nats_url is set but storage is the embedded store: the nodes of a cluster \
             share one PostgreSQL database (storage = \"postgres://...\")"
        );
    };
    start(settings, database_url, nats_url, sessions)
        .await
        .map(Some)
}

#[cfg(feature = "postgres")]
async fn start(
    settings: &Settings,
    database_url: String,
    nats_url: String,
    sessions: Arc<SessionRegistry>,
) -> anyhow::Result<Arc<Cluster>> {
    use anyhow::Context;
    let config = ferrim_cluster::ClusterConfig {
        database_url,
        nats_url: nats_url.clone(),
        node_id: settings.cluster.node_id,
        lease: std::time::Duration::from_secs(settings.cluster.lease_secs),
    };
    Cluster::start(config, sessions)
        .await
        .with_context(|| format!("cannot join the cluster (NATS {nats_url})"))
}

#[cfg(not(feature = "postgres"))]
async fn start(
    _settings: &Settings,
    _database_url: String,
    _nats_url: String,
    _sessions: Arc<SessionRegistry>,
) -> anyhow::Result<Arc<Cluster>> {
    Err(crate::startup::postgres_not_built())
}
