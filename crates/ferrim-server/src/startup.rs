//! Building and running the server: one listener for REST, `/ws`, `/console` and `/metrics`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::routing::get;
use axum::Router;
use ferrim_core::accounts::Accounts;
use ferrim_core::app::{App, AppKey};
use ferrim_core::messaging::{LocalBus, Messaging};
use ferrim_core::password::{HashCost, PasswordHasher};
use ferrim_core::sessions::{KickReason, SessionRegistry};
use ferrim_core::store::Store;
use ferrim_store_sqlite::SqliteStore;
use tokio::net::TcpListener;

use crate::config::Settings;
use crate::state::AppState;
use crate::{gateway, rest};

/// A built server, bound and ready to run.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    app: Arc<App>,
    app_created: bool,
    store: SqliteStore,
}

/// Opens the configured store.
pub async fn open_store(settings: &Settings) -> anyhow::Result<SqliteStore> {
    SqliteStore::open(&settings.data_dir)
        .await
        .with_context(|| format!("cannot open the store in {}", settings.data_dir.display()))
}

/// The accounts service over a store, with the configured hashing cost.
pub fn accounts(settings: &Settings, store: Arc<dyn Store>) -> anyhow::Result<Arc<Accounts>> {
    let cost = HashCost::parse(&settings.password_hash_cost).with_context(|| {
        format!(
            "invalid password_hash_cost {:?} (use default, test or MEMORY_KIB:ITERATIONS)",
            settings.password_hash_cost
        )
    })?;
    Ok(Arc::new(Accounts::new(
        store,
        PasswordHasher::new(cost),
        Arc::new(SessionRegistry::new()),
    )))
}

impl Application {
    /// Opens the store, makes sure the configured app exists and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let key = AppKey::parse(&settings.app_key).map_err(|_| {
            anyhow::anyhow!("invalid app key {:?}: expected ORG#APP", settings.app_key)
        })?;
        let store = open_store(&settings).await?;
        let accounts = accounts(&settings, Arc::new(store.clone()))?;
        let (app, app_created) = accounts
            .ensure_app(
                &key,
                settings.client_id.clone(),
                settings.client_secret.clone(),
            )
            .await
            .context("cannot create the app")?;
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let addr = listener.local_addr()?;
        let public_url = settings
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"))
            .trim_end_matches('/')
            .to_owned();
        let bus = Arc::new(LocalBus::new(accounts.sessions().clone()));
        let messaging = Messaging::start(Arc::new(store.clone()), bus, 0);
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
            store,
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
        let serve = axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            // WebSocket connections are upgraded and outlive graceful HTTP shutdown; tell
            // each to close.
            sessions.kick_everyone(KickReason::Shutdown);
        });
        let result = serve.await.context("server failed");
        self.store.close().await;
        result
    }
}

async fn health() -> &'static str {
    "ok"
}
