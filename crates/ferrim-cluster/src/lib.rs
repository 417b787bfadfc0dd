//! Ferrim nodes as one deployment.
//!
//! Every node keeps its live connections in its own [`SessionRegistry`]. What the rules are
//! decided on is shared:
//!
//! - **The device list** is the `cluster_sessions` table in PostgreSQL, one row per online
//!   device (`node_id`, `session_id` say where it is connected). A login is admitted in one
//!   transaction holding an advisory lock keyed by the user, so two logins on different
//!   nodes racing for the last slot leave exactly the cap.
//! - **Kicks** of a device on another node mark its row (`kick_code`) and are published to
//!   that node's subject `ferrim.v1.<cluster>.node.<id>` on NATS; the node closes the connection and
//!   deletes the row. If the NATS message is lost, the node finds the mark at its next
//!   heartbeat ([`heartbeat`]) and kicks then: the table is authoritative, NATS is speed.
//! - **New-message hints** go to `ferrim.v1.<cluster>.notify`, which every node subscribes to; a node
//!   wakes its own connections of that user. A missed hint only delays delivery until the
//!   device's next pull or heartbeat (the store is the truth).
//! - **Liveness**: each node holds a lease row in `cluster_nodes`, renewed every
//!   `lease / 3`. Every node sweeps, at the same period, the sessions of nodes whose lease
//!   expired, so a crashed node's devices leave the shared view within `lease + lease / 3`
//!   (20 s with the default 15 s lease). A node that cannot renew its own lease closes its
//!   connections (their clients reconnect, through the load balancer, to a live node).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use ferrim_core::app::KickPolicy;
use ferrim_core::error::CoreError;
use ferrim_core::messaging::DeliveryBus;
use ferrim_core::presence::{AdmitError, Presence};
use ferrim_core::sessions::{
    Admission, DeviceInfo, KickReason, Platform, SessionHandle, SessionRegistry, TooManyDevices,
};
use ferrim_core::store::StoreError;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::Row;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The lease a node holds unless configured otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);
/// Hints and kicks waiting to be handed to the NATS client beyond this are dropped (they
/// are hints; the table and the store recover what they carried).
const PUBLISH_QUEUE: usize = 16_384;
/// Row deletions of ended connections waiting beyond this are left to the heartbeat.
const DELETE_QUEUE: usize = 16_384;
/// Database connections per node for the shared session view.
const POOL_SIZE: u32 = 8;

/// The NATS subjects of one cluster. They carry the cluster's ID (made once, in the
/// database), so deployments sharing a NATS server never hear each other.
#[derive(Clone, Debug)]
struct Subjects {
    prefix: String,
}

impl Subjects {
    fn new(cluster_id: Uuid) -> Self {
        Self {
            prefix: format!("ferrim.v1.{}", cluster_id.simple()),
        }
    }
    /// Every node listens here for new-message hints.
    fn notify(&self) -> String {
        format!("{}.notify", self.prefix)
    }
    /// One node's kicks.
    fn node(&self, node_id: u16) -> String {
        format!("{}.node.{node_id}", self.prefix)
    }
}

/// How a node joins the cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// The PostgreSQL database every node shares.
    pub database_url: String,
    /// The NATS server (or cluster seed) every node connects to.
    pub nats_url: String,
    /// This node's ID, unique among live nodes (also in its message IDs), 0–1023.
    pub node_id: u16,
    /// How long a node's sessions outlive its last heartbeat.
    pub lease: Duration,
}

/// Joining or running the cluster failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("NATS: {0}")]
    Nats(String),
    #[error("node_id {0} is held by another live node (each node needs its own cluster.node_id)")]
    NodeIdInUse(u16),
    #[error("node_id {0} is out of range (0-1023)")]
    NodeIdRange(u16),
}

/// What travels on a node's subject.
#[derive(Debug, Serialize, Deserialize)]
struct KickNotice {
    app: Uuid,
    user: Uuid,
    session: u64,
    code: i16,
    ext: Option<String>,
}

/// What travels on the notify subject.
#[derive(Debug, Serialize, Deserialize)]
struct Hint {
    /// The publishing node, which already woke its own connections.
    origin: u16,
    app: Uuid,
    user: Uuid,
}

/// A device to kick after the admitting transaction committed.
#[derive(Debug)]
struct Kick {
    node_id: u16,
    app: Uuid,
    user: Uuid,
    session: u64,
    reason: KickReason,
}

/// One node's membership: implements [`Presence`] and [`DeliveryBus`].
pub struct Cluster {
    node_id: u16,
    instance: Uuid,
    lease: Duration,
    subjects: Subjects,
    pool: PgPool,
    nats: async_nats::Client,
    local: Arc<SessionRegistry>,
    publish: mpsc::Sender<(String, Bytes)>,
    deletes: mpsc::Sender<u64>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    stopped: AtomicBool,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> CoreError {
    CoreError::Store(StoreError::Unavailable(Box::new(e)))
}

fn kick_code(reason: &KickReason) -> (i16, Option<String>) {
    match reason {
        KickReason::LoginAnotherDevice { ext } => (206, ext.clone()),
        KickReason::UserRemoved => (207, None),
        KickReason::PasswordChanged => (216, None),
        KickReason::KickedByOther => (217, None),
        KickReason::Replaced { ext } => (1, ext.clone()),
        KickReason::Shutdown => (2, None),
    }
}

fn kick_reason(code: i16, ext: Option<String>) -> KickReason {
    match code {
        206 => KickReason::LoginAnotherDevice { ext },
        207 => KickReason::UserRemoved,
        216 => KickReason::PasswordChanged,
        1 => KickReason::Replaced { ext },
        2 => KickReason::Shutdown,
        _ => KickReason::KickedByOther,
    }
}

/// The advisory lock key of a user: logins of one user serialize, on every node.
fn lock_key(app: Uuid, user: Uuid) -> i64 {
    let x = app.as_u128() ^ user.as_u128().rotate_left(17);
    ((x >> 64) as u64 ^ x as u64) as i64
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS cluster_nodes (
        node_id integer PRIMARY KEY,
        instance uuid NOT NULL,
        started_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS cluster_sessions (
        node_id integer NOT NULL,
        session_id bigint NOT NULL,
        app_id uuid NOT NULL,
        user_id uuid NOT NULL,
        resource text NOT NULL,
        platform text NOT NULL,
        device_uuid text NOT NULL,
        device_name text NOT NULL,
        login_ms bigint NOT NULL,
        kick_code smallint,
        kick_ext text,
        PRIMARY KEY (node_id, session_id)
    )",
    "CREATE INDEX IF NOT EXISTS cluster_sessions_user ON cluster_sessions (app_id, user_id)",
    "CREATE TABLE IF NOT EXISTS cluster_info (
        one boolean PRIMARY KEY DEFAULT true CHECK (one),
        cluster_id uuid NOT NULL
    )",
];

/// Creates the cluster tables if missing (idempotent; serialized across nodes) and returns
/// the cluster's ID.
pub async fn ensure_schema(pool: &PgPool) -> Result<Uuid, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // Concurrent CREATE ... IF NOT EXISTS can still collide in the catalog; one at a time.
    sqlx::query("SELECT pg_advisory_xact_lock(7461393061)")
        .execute(&mut *tx)
        .await?;
    for statement in SCHEMA {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    sqlx::query("INSERT INTO cluster_info (cluster_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(Uuid::new_v4())
        .execute(&mut *tx)
        .await?;
    let id = sqlx::query_scalar("SELECT cluster_id FROM cluster_info")
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(id)
}

fn device_of(row: &PgRow) -> DeviceInfo {
    let platform: String = row.get("platform");
    DeviceInfo {
        resource: row.get("resource"),
        platform: Platform::from_name(&platform).unwrap_or(Platform::Web),
        device_uuid: row.get("device_uuid"),
        device_name: row.get("device_name"),
        login_ms: row.get::<i64, _>("login_ms") as u64,
    }
}

impl Cluster {
    /// Joins the cluster: creates the tables if needed, claims the node ID's lease (waiting
    /// out a crashed predecessor's lease), clears sessions a previous run of this node left,
    /// connects to NATS and starts the heartbeat.
    pub async fn start(
        config: ClusterConfig,
        local: Arc<SessionRegistry>,
    ) -> Result<Arc<Self>, ClusterError> {
        if config.node_id > 1023 {
            return Err(ClusterError::NodeIdRange(config.node_id));
        }
        let lease = config.lease.max(Duration::from_secs(1));
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(lease / 3)
            .connect(&config.database_url)
            .await?;
        let subjects = Subjects::new(ensure_schema(&pool).await?);
        let instance = Uuid::new_v4();
        claim_node(&pool, config.node_id, instance, lease).await?;
        sqlx::query("DELETE FROM cluster_sessions WHERE node_id = $1")
            .bind(i32::from(config.node_id))
            .execute(&pool)
            .await?;

        let events_local = local.clone();
        let nats = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .event_callback(move |event| {
                let local = events_local.clone();
                async move {
                    match event {
                        // Hints may have been missed while away: every device checks once.
                        async_nats::Event::Connected => local.notify_everyone(),
                        async_nats::Event::Disconnected => {
                            tracing::warn!("NATS unreachable; delivery to other nodes waits")
                        }
                        other => tracing::debug!(event = %other, "NATS"),
                    }
                }
            })
            .connect(config.nats_url.as_str())
            .await
            .map_err(|e| ClusterError::Nats(e.to_string()))?;
        let notices = nats
            .subscribe(subjects.notify())
            .await
            .map_err(|e| ClusterError::Nats(e.to_string()))?;
        let kicks = nats
            .subscribe(subjects.node(config.node_id))
            .await
            .map_err(|e| ClusterError::Nats(e.to_string()))?;

        let (publish, publish_rx) = mpsc::channel(PUBLISH_QUEUE);
        let (deletes, deletes_rx) = mpsc::channel(DELETE_QUEUE);
        let (stop, _) = watch::channel(false);
        let cluster = Arc::new(Self {
            node_id: config.node_id,
            instance,
            lease,
            subjects,
            pool,
            nats,
            local,
            publish,
            deletes,
            stop,
            tasks: Mutex::new(Vec::new()),
            stopped: AtomicBool::new(false),
        });
        let tasks = vec![
            tokio::spawn(publisher(cluster.nats.clone(), publish_rx)),
            tokio::spawn(on_hints(cluster.clone(), notices)),
            tokio::spawn(on_kicks(cluster.clone(), kicks)),
            tokio::spawn(deleter(cluster.clone(), deletes_rx)),
            tokio::spawn(heartbeat(cluster.clone())),
        ];
        *cluster.tasks.lock().expect("task list") = tasks;
        tracing::info!(
            node_id = config.node_id,
            lease_secs = lease.as_secs(),
            "joined the cluster"
        );
        Ok(cluster)
    }

    pub fn node_id(&self) -> u16 {
        self.node_id
    }

    /// Leaves the cluster: this node's sessions and lease are deleted at once, so its users
    /// show offline and may log in elsewhere without waiting for the lease.
    pub async fn shutdown(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().expect("task list"));
        for task in tasks {
            task.abort();
        }
        let node = i32::from(self.node_id);
        let _ = sqlx::query("DELETE FROM cluster_sessions WHERE node_id = $1")
            .bind(node)
            .execute(&self.pool)
            .await;
        let _ = sqlx::query("DELETE FROM cluster_nodes WHERE node_id = $1 AND instance = $2")
            .bind(node)
            .bind(self.instance)
            .execute(&self.pool)
            .await;
        let _ = self.nats.flush().await;
        self.pool.close().await;
    }

    fn send(&self, subject: String, payload: Vec<u8>) {
        if self.publish.try_send((subject, payload.into())).is_err() {
            tracing::debug!("cluster publish queue full; a hint is dropped");
        }
    }

    /// Signals kicked devices: this node's directly, other nodes' over NATS (their rows
    /// carry the mark, so a lost message is picked up by that node's heartbeat).
    fn deliver(&self, kicks: Vec<Kick>) {
        for k in kicks {
            if k.node_id == self.node_id {
                self.local.kick_session(k.app, k.user, k.session, k.reason);
                let _ = self.deletes.try_send(k.session);
            } else {
                let (code, ext) = kick_code(&k.reason);
                let notice = KickNotice {
                    app: k.app,
                    user: k.user,
                    session: k.session,
                    code,
                    ext,
                };
                let payload = serde_json::to_vec(&notice).expect("serializable notice");
                self.send(self.subjects.node(k.node_id), payload);
            }
        }
    }

    /// Decides admission in the shared table, under the user's lock.
    #[allow(clippy::too_many_arguments)]
    async fn admit_shared(
        &self,
        app_id: Uuid,
        user_id: Uuid,
        info: &DeviceInfo,
        session_id: u64,
        cap: u32,
        policy: KickPolicy,
        login_ext: Option<String>,
    ) -> Result<(Admission, Vec<Kick>), AdmitError> {
        let db = |e: sqlx::Error| AdmitError::Unavailable(e.to_string());
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Held until commit: every login of this user, on any node, waits here.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(lock_key(app_id, user_id))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let rows = sqlx::query(
            "SELECT node_id, session_id, resource, platform, device_uuid, device_name, login_ms
             FROM cluster_sessions
             WHERE app_id = $1 AND user_id = $2 AND kick_code IS NULL",
        )
        .bind(app_id)
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let mut online: Vec<(u16, u64, DeviceInfo)> = rows
            .iter()
            .map(|r| {
                (
                    r.get::<i32, _>("node_id") as u16,
                    r.get::<i64, _>("session_id") as u64,
                    device_of(r),
                )
            })
            .collect();

        // The same rules as the single-node registry.
        let same = online.iter().position(|d| d.2.resource == info.resource);
        let on_platform = online
            .iter()
            .filter(|d| d.2.platform == info.platform)
            .count()
            - usize::from(same.is_some_and(|i| online[i].2.platform == info.platform));
        if same.is_none() && on_platform >= cap as usize && policy == KickPolicy::RefuseNewcomer {
            return Err(TooManyDevices.into());
        }
        let mut admission = Admission::default();
        let mut kicks = Vec::new();
        if let Some(i) = same {
            let (node_id, session, _) = online.remove(i);
            admission.replaced = true;
            kicks.push((
                node_id,
                session,
                KickReason::Replaced {
                    ext: login_ext.clone(),
                },
            ));
        }
        let mut excess = (on_platform + 1).saturating_sub(cap as usize);
        while excess > 0 {
            let Some(i) = online
                .iter()
                .enumerate()
                .filter(|(_, d)| d.2.platform == info.platform)
                .min_by_key(|(_, d)| (d.2.login_ms, d.0, d.1))
                .map(|(i, _)| i)
            else {
                break;
            };
            let (node_id, session, old) = online.remove(i);
            admission.kicked.push(old);
            kicks.push((
                node_id,
                session,
                KickReason::LoginAnotherDevice {
                    ext: login_ext.clone(),
                },
            ));
            excess -= 1;
        }
        for (node_id, session, reason) in &kicks {
            let (code, ext) = kick_code(reason);
            sqlx::query(
                "UPDATE cluster_sessions SET kick_code = $3, kick_ext = $4
                 WHERE node_id = $1 AND session_id = $2",
            )
            .bind(i32::from(*node_id))
            .bind(*session as i64)
            .bind(code)
            .bind(ext)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        sqlx::query(
            "INSERT INTO cluster_sessions
                (node_id, session_id, app_id, user_id, resource, platform, device_uuid,
                 device_name, login_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(i32::from(self.node_id))
        .bind(session_id as i64)
        .bind(app_id)
        .bind(user_id)
        .bind(&info.resource)
        .bind(info.platform.name())
        .bind(&info.device_uuid)
        .bind(&info.device_name)
        .bind(info.login_ms as i64)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let kicks = kicks
            .into_iter()
            .map(|(node_id, session, reason)| Kick {
                node_id,
                app: app_id,
                user: user_id,
                session,
                reason,
            })
            .collect();
        Ok((admission, kicks))
    }

    /// Marks the rows matching `filter` kicked and signals them; returns how many.
    async fn kick_where(
        &self,
        app_id: Uuid,
        user_id: Uuid,
        resource: Option<&str>,
        reason: KickReason,
    ) -> Result<usize, CoreError> {
        let (code, ext) = kick_code(&reason);
        let rows = sqlx::query(
            "UPDATE cluster_sessions SET kick_code = $3, kick_ext = $4
             WHERE app_id = $1 AND user_id = $2 AND kick_code IS NULL
               AND ($5::text IS NULL OR resource = $5)
             RETURNING node_id, session_id",
        )
        .bind(app_id)
        .bind(user_id)
        .bind(code)
        .bind(ext)
        .bind(resource)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let kicks: Vec<Kick> = rows
            .iter()
            .map(|r| Kick {
                node_id: r.get::<i32, _>("node_id") as u16,
                app: app_id,
                user: user_id,
                session: r.get::<i64, _>("session_id") as u64,
                reason: reason.clone(),
            })
            .collect();
        let n = kicks.len();
        self.deliver(kicks);
        Ok(n)
    }
}

/// Takes the node ID's lease, waiting out an expired-but-not-yet-swept predecessor; a node
/// ID renewed by a live node is refused after two lease periods.
async fn claim_node(
    pool: &PgPool,
    node_id: u16,
    instance: Uuid,
    lease: Duration,
) -> Result<(), ClusterError> {
    let deadline = Instant::now() + lease * 2 + Duration::from_secs(1);
    let mut told = false;
    loop {
        let claimed = sqlx::query(
            "INSERT INTO cluster_nodes (node_id, instance, expires_at)
             VALUES ($1, $2, now() + make_interval(secs => $3))
             ON CONFLICT (node_id) DO UPDATE
                SET instance = EXCLUDED.instance, expires_at = EXCLUDED.expires_at,
                    started_at = now()
                WHERE cluster_nodes.expires_at < now()
             RETURNING node_id",
        )
        .bind(i32::from(node_id))
        .bind(instance)
        .bind(lease.as_secs_f64())
        .fetch_optional(pool)
        .await?;
        if claimed.is_some() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(ClusterError::NodeIdInUse(node_id));
        }
        if !told {
            tracing::warn!(
                node_id,
                "node_id is held by a lease (a previous run that crashed?); waiting for it to expire"
            );
            told = true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[async_trait]
impl Presence for Cluster {
    async fn admit(
        &self,
        app_id: Uuid,
        user_id: Uuid,
        info: DeviceInfo,
        handle: SessionHandle,
        cap: u32,
        policy: KickPolicy,
        login_ext: Option<String>,
    ) -> Result<Admission, AdmitError> {
        let session_id = handle.session_id();
        // Registered here before the shared row exists: a kick can only be sent after the
        // commit below, and must find the connection.
        self.local.insert(app_id, user_id, info.clone(), handle);
        match self
            .admit_shared(app_id, user_id, &info, session_id, cap, policy, login_ext)
            .await
        {
            Ok((admission, kicks)) => {
                self.deliver(kicks);
                Ok(admission)
            }
            Err(e) => {
                self.local.remove(app_id, user_id, session_id);
                Err(e)
            }
        }
    }

    fn remove(&self, app_id: Uuid, user_id: Uuid, session_id: u64) {
        self.local.remove(app_id, user_id, session_id);
        // A full queue leaves the row to the heartbeat's reconciliation.
        let _ = self.deletes.try_send(session_id);
    }

    async fn devices(&self, app_id: Uuid, user_id: Uuid) -> Result<Vec<DeviceInfo>, CoreError> {
        let rows = sqlx::query(
            "SELECT resource, platform, device_uuid, device_name, login_ms
             FROM cluster_sessions
             WHERE app_id = $1 AND user_id = $2 AND kick_code IS NULL
             ORDER BY login_ms, node_id, session_id",
        )
        .bind(app_id)
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(rows.iter().map(device_of).collect())
    }

    async fn is_online(&self, app_id: Uuid, user_id: Uuid) -> Result<bool, CoreError> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM cluster_sessions
                            WHERE app_id = $1 AND user_id = $2 AND kick_code IS NULL)",
        )
        .bind(app_id)
        .bind(user_id)
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)
    }

    async fn kick_user(
        &self,
        app_id: Uuid,
        user_id: Uuid,
        reason: KickReason,
    ) -> Result<usize, CoreError> {
        self.kick_where(app_id, user_id, None, reason).await
    }

    async fn kick_resource(
        &self,
        app_id: Uuid,
        user_id: Uuid,
        resource: &str,
        reason: KickReason,
    ) -> Result<bool, CoreError> {
        Ok(self
            .kick_where(app_id, user_id, Some(resource), reason)
            .await?
            > 0)
    }
}

impl DeliveryBus for Cluster {
    fn new_messages(&self, app_id: Uuid, user_id: Uuid, except: Option<u64>) {
        self.local.notify_user(app_id, user_id, except);
        let hint = Hint {
            origin: self.node_id,
            app: app_id,
            user: user_id,
        };
        self.send(
            self.subjects.notify(),
            serde_json::to_vec(&hint).expect("serializable hint"),
        );
    }
}

/// Hands queued publishes to the NATS client (which buffers while reconnecting).
async fn publisher(nats: async_nats::Client, mut rx: mpsc::Receiver<(String, Bytes)>) {
    while let Some((subject, payload)) = rx.recv().await {
        if let Err(e) = nats.publish(subject, payload).await {
            tracing::debug!(error = %e, "NATS publish failed; hint dropped");
        }
    }
}

async fn on_hints(cluster: Arc<Cluster>, mut sub: async_nats::Subscriber) {
    while let Some(msg) = sub.next().await {
        match serde_json::from_slice::<Hint>(&msg.payload) {
            Ok(h) if h.origin != cluster.node_id => cluster.local.notify_user(h.app, h.user, None),
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "undecodable hint"),
        }
    }
}

async fn on_kicks(cluster: Arc<Cluster>, mut sub: async_nats::Subscriber) {
    while let Some(msg) = sub.next().await {
        match serde_json::from_slice::<KickNotice>(&msg.payload) {
            Ok(k) => {
                cluster
                    .local
                    .kick_session(k.app, k.user, k.session, kick_reason(k.code, k.ext));
                let _ = cluster.deletes.try_send(k.session);
            }
            Err(e) => tracing::debug!(error = %e, "undecodable kick"),
        }
    }
}

/// Deletes this node's rows of ended connections, in batches.
async fn deleter(cluster: Arc<Cluster>, mut rx: mpsc::Receiver<u64>) {
    let mut batch = Vec::with_capacity(256);
    while rx.recv_many(&mut batch, 256).await > 0 {
        let ids: Vec<i64> = batch.drain(..).map(|s| s as i64).collect();
        if let Err(e) =
            sqlx::query("DELETE FROM cluster_sessions WHERE node_id = $1 AND session_id = ANY($2)")
                .bind(i32::from(cluster.node_id))
                .bind(&ids)
                .execute(&cluster.pool)
                .await
        {
            tracing::warn!(error = %e, "deleting ended sessions failed; the heartbeat retries");
        }
    }
}

/// Every `lease / 3`: renew this node's lease, sweep dead nodes' sessions, and reconcile
/// this node's rows with its live connections.
async fn heartbeat(cluster: Arc<Cluster>) {
    let period = cluster.lease / 3;
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stop = cluster.stop.subscribe();
    let mut renewed = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        match beat(&cluster).await {
            Ok(true) => renewed = Instant::now(),
            Ok(false) => {
                // Swept by another node: our sessions are gone from the shared view, so
                // our connections must go too, then rejoin.
                tracing::error!("this node's lease was lost; closing its connections");
                cluster.local.kick_everyone(KickReason::Shutdown);
                if let Err(e) = claim_node(
                    &cluster.pool,
                    cluster.node_id,
                    cluster.instance,
                    cluster.lease,
                )
                .await
                {
                    tracing::error!(error = %e, "cannot rejoin the cluster");
                } else {
                    renewed = Instant::now();
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cluster heartbeat failed");
                if renewed.elapsed() > cluster.lease && cluster.local.connection_count() > 0 {
                    // Others will sweep us; do not keep devices they count as offline.
                    tracing::error!(
                        "lease expired without renewal; closing this node's connections"
                    );
                    cluster.local.kick_everyone(KickReason::Shutdown);
                }
            }
        }
    }
}

/// One heartbeat. `Ok(false)`: the lease was lost.
async fn beat(cluster: &Cluster) -> Result<bool, sqlx::Error> {
    let node = i32::from(cluster.node_id);
    let renewed = sqlx::query(
        "UPDATE cluster_nodes SET expires_at = now() + make_interval(secs => $3)
         WHERE node_id = $1 AND instance = $2",
    )
    .bind(node)
    .bind(cluster.instance)
    .bind(cluster.lease.as_secs_f64())
    .execute(&cluster.pool)
    .await?
    .rows_affected()
        > 0;
    if !renewed {
        return Ok(false);
    }
    // Sessions of nodes without a live lease (crashed, or stopped without cleaning up).
    let swept = sqlx::query(
        "DELETE FROM cluster_sessions s WHERE NOT EXISTS (
            SELECT 1 FROM cluster_nodes n WHERE n.node_id = s.node_id AND n.expires_at >= now())",
    )
    .execute(&cluster.pool)
    .await?
    .rows_affected();
    if swept > 0 {
        tracing::info!(sessions = swept, "swept the sessions of expired nodes");
    }
    sqlx::query("DELETE FROM cluster_nodes WHERE expires_at < now() - interval '1 minute'")
        .execute(&cluster.pool)
        .await?;

    // Reconcile. The table is read before the registry: a row present at the read was
    // registered here before it was inserted, so if it is not here now it has ended.
    let rows = sqlx::query(
        "SELECT session_id, app_id, user_id, kick_code, kick_ext
         FROM cluster_sessions WHERE node_id = $1",
    )
    .bind(node)
    .fetch_all(&cluster.pool)
    .await?;
    let live = cluster.local.session_ids();
    let mut gone = Vec::new();
    for r in &rows {
        let session = r.get::<i64, _>("session_id") as u64;
        if let Some(code) = r.get::<Option<i16>, _>("kick_code") {
            // A kick whose NATS message was lost (or not yet handled).
            let reason = kick_reason(code, r.get("kick_ext"));
            cluster
                .local
                .kick_session(r.get("app_id"), r.get("user_id"), session, reason);
            gone.push(session as i64);
        } else if !live.contains(&session) {
            gone.push(session as i64);
        }
    }
    if !gone.is_empty() {
        sqlx::query("DELETE FROM cluster_sessions WHERE node_id = $1 AND session_id = ANY($2)")
            .bind(node)
            .bind(&gone)
            .execute(&cluster.pool)
            .await?;
    }
    Ok(true)
}

/// Online counts across the cluster, per node (for operators and tests).
pub async fn sessions_per_node(pool: &PgPool) -> Result<HashMap<u16, u64>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT node_id, count(*) AS n FROM cluster_sessions WHERE kick_code IS NULL
         GROUP BY node_id",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get::<i32, _>("node_id") as u16,
                r.get::<i64, _>("n") as u64,
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kick_reasons_round_trip_through_their_codes() {
        for reason in [
            KickReason::LoginAnotherDevice {
                ext: Some("x".into()),
            },
            KickReason::UserRemoved,
            KickReason::PasswordChanged,
            KickReason::KickedByOther,
            KickReason::Replaced {
                ext: Some("y".into()),
            },
            KickReason::Shutdown,
        ] {
            let (code, ext) = kick_code(&reason);
            assert_eq!(kick_reason(code, ext), reason);
        }
    }

    #[test]
    fn lock_keys_differ_per_user() {
        let app = Uuid::new_v4();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert_ne!(lock_key(app, a), lock_key(app, b));
        assert_eq!(lock_key(app, a), lock_key(app, a));
    }
}
