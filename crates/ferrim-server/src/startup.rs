//! Building and running the server: one listener for REST, `/ws`, `/console` and `/metrics`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use ferrim_core::accounts::Accounts;
use ferrim_core::app::{App, AppKey};
use ferrim_core::messaging::{DeliveryBus, LocalBus, Messaging};
use ferrim_core::password::{HashCost, PasswordHasher};
use ferrim_core::sessions::{KickReason, SessionRegistry};
use ferrim_core::store::cached::CachedStore;
use ferrim_core::store::Store;
use ferrim_store_sqlite::SqliteStore;
use tokio::net::{TcpListener, TcpSocket};

use crate::cluster::Cluster;
use crate::config::{Settings, Storage};
use crate::state::AppState;
use crate::{gateway, rest};

/// A built server, bound and ready to run.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    app: Arc<App>,
    app_created: bool,
    closer: StoreCloser,
    cluster: Option<Arc<Cluster>>,
}

/// Closes the store a [`open_store`] opened (flushes SQLite's WAL, closes PostgreSQL
/// connections).
#[derive(Clone, Debug)]
pub enum StoreCloser {
    Sqlite(SqliteStore),
    #[cfg(feature = "postgres")]
    Postgres(ferrim_store_postgres::PostgresStore),
}

impl StoreCloser {
    pub async fn close(&self) {
        match self {
            Self::Sqlite(store) => store.close().await,
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => store.close().await,
        }
    }
}

/// Opens the configured store (`storage`: the embedded SQLite store in `data_dir`, or a
/// PostgreSQL URL), applying pending migrations.
pub async fn open_store(settings: &Settings) -> anyhow::Result<(Arc<dyn Store>, StoreCloser)> {
    match settings.storage()? {
        Storage::Sqlite => {
            let store = SqliteStore::open(&settings.data_dir)
                .await
                .with_context(|| {
                    format!("cannot open the store in {}", settings.data_dir.display())
                })?;
            Ok((Arc::new(store.clone()), StoreCloser::Sqlite(store)))
        }
        Storage::Postgres(url) => open_postgres(&url).await,
    }
}

#[cfg(feature = "postgres")]
async fn open_postgres(url: &str) -> anyhow::Result<(Arc<dyn Store>, StoreCloser)> {
    let store = connect_postgres(url).await?;
    // Under sqlx's advisory lock: nodes starting together do not race.
    store
        .migrate()
        .await
        .context("cannot apply the PostgreSQL migrations")?;
    Ok((Arc::new(store.clone()), StoreCloser::Postgres(store)))
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(_url: &str) -> anyhow::Result<(Arc<dyn Store>, StoreCloser)> {
    Err(postgres_not_built())
}

/// Connects to PostgreSQL without migrating (the connection errors name the host, never
/// the password).
#[cfg(feature = "postgres")]
pub async fn connect_postgres(url: &str) -> anyhow::Result<ferrim_store_postgres::PostgresStore> {
    ferrim_store_postgres::PostgresStore::connect(url)
        .await
        .map_err(|e| anyhow::anyhow!("{:#}", anyhow::Error::new(e)))
        .with_context(|| format!("cannot connect to PostgreSQL at {}", redact(url)))
}

/// The error for a PostgreSQL URL in a build without the backend.
#[cfg(not(feature = "postgres"))]
pub fn postgres_not_built() -> anyhow::Error {
    anyhow::anyhow!(
        "storage is a PostgreSQL URL, but this ferrim was built without PostgreSQL support; \
         rebuild with the `postgres` cargo feature (on by default) or set storage = \"sqlite\""
    )
}

/// A database URL with its password hidden, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The accounts service over a store, with the configured hashing cost.
pub fn accounts(settings: &Settings, store: Arc<dyn Store>) -> anyhow::Result<Arc<Accounts>> {
    accounts_over(settings, store, Arc::new(SessionRegistry::new())).map(Arc::new)
}

/// The accounts service over a store and this node's session registry.
fn accounts_over(
    settings: &Settings,
    store: Arc<dyn Store>,
    sessions: Arc<SessionRegistry>,
) -> anyhow::Result<Accounts> {
    let cost = HashCost::parse(&settings.password_hash_cost).with_context(|| {
        format!(
            "invalid password_hash_cost {:?} (use default, test or MEMORY_KIB:ITERATIONS)",
            settings.password_hash_cost
        )
    })?;
    Ok(Accounts::new(store, PasswordHasher::new(cost), sessions))
}

impl Application {
    /// Opens the store, makes sure the configured app exists and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let key = AppKey::parse(&settings.app_key).map_err(|_| {
            anyhow::anyhow!("invalid app key {:?}: expected ORG#APP", settings.app_key)
        })?;
        let (store, closer) = open_store(&settings).await?;
        let sessions = Arc::new(SessionRegistry::new());
        // In a cluster, presence and delivery go through the shared view and NATS.
        let cluster = crate::cluster::join(&settings, sessions.clone()).await?;
        // Users are read on every login and send. Alone, this node sees every write and the
        // cache is exact; in a cluster, entries are re-read after the app-cache TTL.
        let user_cache_ttl = cluster.as_ref().map(|_| crate::cluster::APP_CACHE_TTL);
        let store: Arc<dyn Store> = Arc::new(CachedStore::new(store, user_cache_ttl));
        let mut accounts = accounts_over(&settings, store.clone(), sessions.clone())?;
        let bus: Arc<dyn DeliveryBus> = match &cluster {
            Some(cluster) => {
                accounts = accounts
                    .with_presence(crate::cluster::presence(cluster))
                    .with_app_cache_ttl(crate::cluster::APP_CACHE_TTL);
                crate::cluster::bus(cluster)
            }
            None => Arc::new(LocalBus::new(sessions, store.inbox_cursor_is_message_id())),
        };
        let accounts = Arc::new(accounts);
        let (app, app_created) = accounts
            .ensure_app(
                &key,
                settings.client_id.clone(),
                settings.client_secret.clone(),
            )
            .await
            .context("cannot create the app")?;
        let listener = bind(settings.listen)
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let addr = listener.local_addr()?;
        let public_url = settings
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"))
            .trim_end_matches('/')
            .to_owned();
        let messaging = Messaging::start(store, bus, settings.cluster.node_id);
        let state = AppState {
            accounts,
            messaging,
            settings: Arc::new(settings),
            public_url: public_url.into(),
        };
        Ok(Self {
            listener,
            addr,
            state,
            app,
            app_created,
            closer,
            cluster,
        })
    }

    /// The bound address (the real port when built with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The app ensured at start-up.
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Whether that app was created by this start (its credentials were just generated).
    pub fn app_created(&self) -> bool {
        self.app_created
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// REST base URL.
    pub fn rest_url(&self) -> String {
        self.state.public_url.to_string()
    }

    /// msync WebSocket URL.
    pub fn ws_url(&self) -> String {
        let base = &self.state.public_url;
        let ws = if let Some(rest) = base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if let Some(rest) = base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else {
            base.to_string()
        };
        format!("{ws}/ws")
    }

    /// The full router.
    pub fn router(state: AppState) -> Router {
        let settings = state.settings.clone();
        let router = Router::new()
            .route("/health", get(health))
            .merge(crate::console::router())
            .merge(gateway::router(state.clone()))
            .merge(rest::router(state))
            .fallback(rest::not_found);
        rest::middleware::apply(router, &settings)
    }

    /// Serves until `shutdown` completes, then closes every session and the store.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let sessions = self.state.accounts.sessions().clone();
        let router = Self::router(self.state);
        // Frames are small and latency-bound: without TCP_NODELAY a frame written while the
        // previous one is unacknowledged waits for the peer's delayed ACK (40 ms on Linux).
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY could not be set");
            }
        });
        let serve = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            // WebSocket connections are upgraded and outlive graceful HTTP shutdown; tell
            // each to close.
            sessions.kick_everyone(KickReason::Shutdown);
        });
        let result = serve.await.context("server failed");
        if let Some(cluster) = &self.cluster {
            // This node's devices leave the shared view now, not when its lease runs out.
            cluster.shutdown().await;
        }
        self.closer.close().await;
        result
    }
}

async fn health() -> &'static str {
    "ok"
}

/// Connections the kernel may queue before ferrim accepts them (the kernel caps it at
/// `net.core.somaxconn`). Tokio's default of 1,024 overflowed in login bursts, and each
/// dropped SYN costs the client a one-second retransmit.
const LISTEN_BACKLOG: u32 = 8192;

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As the standard library does on Unix: a restart can bind while old connections linger.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}
