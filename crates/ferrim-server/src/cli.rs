//! The `ferrim` command line: `serve`, and offline admin commands on the store.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{LogFormat, Settings};
use crate::startup::Application;
use crate::telemetry;

#[derive(Parser, Debug)]
#[command(
    name = "ferrim",
    version,
    about = "A self-hosted Easemob-compatible IM server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (REST, msync WebSocket at /ws, console at /console).
    Serve(ServeArgs),
    /// Manage apps in the store (offline).
    #[command(subcommand)]
    App(AppCommand),
    /// Manage users in the store (offline).
    #[command(subcommand)]
    User(UserCommand),
    /// Issue tokens from the store (offline).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Apply pending PostgreSQL migrations (SQLite migrates itself when opened).
    Migrate(MigrateArgs),
    /// Copy an embedded store into an empty PostgreSQL database (stop the server first).
    Copy(CopyArgs),
    /// Write a consistent copy of the embedded store to a new file (the server may keep
    /// running).
    Backup(BackupArgs),
}

#[derive(Args, Debug)]
struct BackupArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The file to write; it must not exist yet.
    out: PathBuf,
}

#[derive(Args, Debug)]
struct MigrateArgs {
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Args, Debug)]
struct CopyArgs {
    /// The embedded store to copy: sqlite:DIR (or just DIR), its data directory.
    #[arg(long)]
    from: String,
    /// The PostgreSQL database to copy into (must hold no apps, users or messages).
    #[arg(long, hide_env_values = true)]
    to: String,
}

/// Options shared by every command that opens the store.
#[derive(Args, Debug, Clone)]
struct StoreArgs {
    /// Settings file (TOML).
    #[arg(long, env = "FERRIM_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory of the embedded store.
    #[arg(long, env = "FERRIM_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Store: sqlite (default) or a postgres:// URL.
    #[arg(long, env = "FERRIM_STORAGE", hide_env_values = true)]
    storage: Option<String>,
}

#[derive(Args, Debug)]
struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Address to listen on.
    #[arg(long, env = "FERRIM_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// The app to ensure at start-up, ORG#APP.
    #[arg(long, env = "FERRIM_APP_KEY")]
    app_key: Option<String>,
    /// Client ID for that app when it is first created.
    #[arg(long, env = "FERRIM_CLIENT_ID", hide_env_values = true)]
    client_id: Option<String>,
    /// Client secret for that app when it is first created.
    #[arg(long, env = "FERRIM_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// Argon2id cost: default, test, or MEMORY_KIB:ITERATIONS.
    #[arg(long, env = "FERRIM_PASSWORD_HASH_COST")]
    password_hash_cost: Option<String>,
    /// Log filter, e.g. info or ferrim_server=debug.
    #[arg(long, env = "FERRIM_LOG")]
    log: Option<String>,
    /// Log format.
    #[arg(long, env = "FERRIM_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// Allowed browser origins, comma-separated; * for any.
    #[arg(long, env = "FERRIM_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Option<Vec<String>>,
    /// Base URL clients use to reach this server.
    #[arg(long, env = "FERRIM_PUBLIC_URL")]
    public_url: Option<String>,
    /// Close msync sockets silent for this many seconds.
    #[arg(long, env = "FERRIM_WS_IDLE_TIMEOUT_SECS")]
    ws_idle_timeout_secs: Option<u64>,
    /// This node's ID in a cluster, 0-1023 (unique among live nodes).
    #[arg(long, env = "FERRIM_NODE_ID")]
    node_id: Option<u16>,
    /// NATS server of a cluster, e.g. nats://127.0.0.1:4222 (with a postgres:// storage).
    #[arg(long, env = "FERRIM_NATS_URL")]
    nats_url: Option<String>,
    /// Seconds a node's sessions outlive its last heartbeat.
    #[arg(long, env = "FERRIM_CLUSTER_LEASE_SECS")]
    cluster_lease_secs: Option<u64>,
}

#[derive(Subcommand, Debug)]
enum AppCommand {
    /// Create an app and print its credentials.
    Create {
        /// ORG#APP
        app_key: String,
        #[arg(long)]
        client_id: Option<String>,
        #[arg(long)]
        client_secret: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List apps with their client IDs.
    List {
        /// Also print client secrets.
        #[arg(long)]
        show_secrets: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Register a user.
    Create {
        /// User ID.
        username: String,
        /// Password (prompt-free; read from FERRIM_USER_PASSWORD if omitted).
        #[arg(long, env = "FERRIM_USER_PASSWORD", hide_env_values = true)]
        password: String,
        /// The app, ORG#APP (default: FERRIM_APP_KEY or demo#demo).
        #[arg(long, env = "FERRIM_APP_KEY")]
        app: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Issue a user token (as grant_type=inherit would).
    User {
        /// User ID.
        username: String,
        /// Lifetime in seconds (default: the app's setting; 0 = never expires).
        #[arg(long)]
        ttl: Option<u64>,
        /// The app, ORG#APP (default: FERRIM_APP_KEY or demo#demo).
        #[arg(long, env = "FERRIM_APP_KEY")]
        app: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Issue an app token (as grant_type=client_credentials would).
    App {
        /// Lifetime in seconds (default: the app's setting; 0 = never expires).
        #[arg(long)]
        ttl: Option<u64>,
        /// The app, ORG#APP (default: FERRIM_APP_KEY or demo#demo).
        #[arg(long, env = "FERRIM_APP_KEY")]
        app: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_settings(store: &StoreArgs) -> anyhow::Result<Settings> {
    let mut settings = match &store.config {
        Some(path) => Settings::from_file(path)?,
        None => Settings::default(),
    };
    if let Some(dir) = &store.data_dir {
        settings.data_dir = dir.clone();
    }
    if let Some(storage) = &store.storage {
        settings.storage = storage.clone();
    }
    Ok(settings)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::App(cmd) => admin::app(cmd).await,
        Command::User(cmd) => admin::user(cmd).await,
        Command::Token(cmd) => admin::token(cmd).await,
        Command::Migrate(args) => migrate(args).await,
        Command::Copy(args) => copy(args).await,
        Command::Backup(args) => backup(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut settings = load_settings(&args.store)?;
    macro_rules! apply {
        ($($field:ident),*) => { $( if let Some(v) = args.$field { settings.$field = v; } )* };
    }
    apply!(
        listen,
        app_key,
        password_hash_cost,
        log,
        log_format,
        cors_origins
    );
    if args.client_id.is_some() {
        settings.client_id = args.client_id;
    }
    if args.client_secret.is_some() {
        settings.client_secret = args.client_secret;
    }
    if args.public_url.is_some() {
        settings.public_url = args.public_url;
    }
    if let Some(secs) = args.ws_idle_timeout_secs {
        settings.ws.idle_timeout_secs = secs;
    }
    if let Some(id) = args.node_id {
        settings.cluster.node_id = id;
    }
    if args.nats_url.is_some() {
        settings.cluster.nats_url = args.nats_url;
    }
    if let Some(secs) = args.cluster_lease_secs {
        settings.cluster.lease_secs = secs;
    }
    telemetry::init(&settings.log, settings.log_format);
    let app = Application::build(settings).await?;
    println!("ferrim {} is ready", env!("CARGO_PKG_VERSION"));
    println!("  appKey:        {}", app.app().key);
    println!("  client ID:     {}", app.app().client_id);
    if app.app_created() {
        // Printed once, when generated; it is never logged.
        println!("  client secret: {}", app.app().client_secret);
    }
    println!("  REST API:      {}", app.rest_url());
    println!("  WebSocket:     {}", app.ws_url());
    println!("  console:       {}/console", app.rest_url());
    tracing::info!(addr = %app.addr(), "listening");
    app.run_until_stopped(shutdown_signal()).await
}

async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let settings = load_settings(&args.store)?;
    match settings.storage()? {
        crate::config::Storage::Sqlite => {
            println!(
                "storage is sqlite: its migrations run whenever the store is opened \
                 (ferrim serve and the admin commands); nothing to do"
            );
            Ok(())
        }
        crate::config::Storage::Postgres(url) => migrate_postgres(&url).await,
    }
}

#[cfg(feature = "postgres")]
async fn migrate_postgres(url: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    let store = crate::startup::connect_postgres(url).await?;
    let (known, before) = store.migration_status().await?;
    store
        .migrate()
        .await
        .map_err(|e| anyhow::anyhow!("{:#}", anyhow::Error::new(e)))
        .context("migration failed")?;
    let newly: Vec<String> = known
        .iter()
        .filter(|v| !before.contains(v))
        .map(|v| format!("{v:04}"))
        .collect();
    if newly.is_empty() {
        println!(
            "PostgreSQL at {} is up to date ({} migrations)",
            crate::startup::redact(url),
            known.len()
        );
    } else {
        println!(
            "applied migrations {} to PostgreSQL at {}",
            newly.join(", "),
            crate::startup::redact(url)
        );
    }
    store.close().await;
    Ok(())
}

#[cfg(not(feature = "postgres"))]
async fn migrate_postgres(_url: &str) -> anyhow::Result<()> {
    Err(crate::startup::postgres_not_built())
}

async fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let settings = load_settings(&args.store)?;
    if settings.storage()? != crate::config::Storage::Sqlite {
        anyhow::bail!(
            "ferrim backup copies the embedded store; back up PostgreSQL with its own tools \
             (pg_dump, base backups)"
        );
    }
    let db = settings.data_dir.join(ferrim_store_sqlite::DB_FILE);
    anyhow::ensure!(
        db.is_file(),
        "no embedded store at {} (set --data-dir or FERRIM_DATA_DIR)",
        db.display()
    );
    match ferrim_store_sqlite::backup(&settings.data_dir, &args.out).await {
        Ok(()) => {
            println!(
                "backed up {} to {}",
                settings
                    .data_dir
                    .join(ferrim_store_sqlite::DB_FILE)
                    .display(),
                args.out.display()
            );
            Ok(())
        }
        Err(ferrim_core::store::StoreError::Conflict) => {
            anyhow::bail!("{} already exists; choose a new file", args.out.display())
        }
        Err(e) => Err(anyhow::Error::new(e).context("backup failed")),
    }
}

#[cfg(feature = "postgres")]
async fn copy(args: CopyArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    let dir = PathBuf::from(args.from.strip_prefix("sqlite:").unwrap_or(&args.from));
    anyhow::ensure!(
        dir.join(ferrim_store_sqlite::DB_FILE).is_file(),
        "no embedded store in {} (expected {})",
        dir.display(),
        ferrim_store_sqlite::DB_FILE
    );
    let to = match crate::config::Storage::parse(&args.to)? {
        crate::config::Storage::Postgres(url) => url,
        crate::config::Storage::Sqlite => anyhow::bail!("--to must be a postgres:// URL"),
    };
    let source = ferrim_store_sqlite::SqliteStore::open(&dir)
        .await
        .with_context(|| format!("cannot open the store in {}", dir.display()))?;
    let target = crate::startup::connect_postgres(&to).await?;
    let result = crate::copy::sqlite_to_postgres(&source, &target, |line| println!("{line}")).await;
    source.close().await;
    target.close().await;
    let report = result?;
    println!(
        "copied {} apps, {} users, {} messages, {} device cursors and {} deleted conversations into {}",
        report.apps,
        report.users,
        report.messages,
        report.device_cursors,
        report.conversation_clears,
        crate::startup::redact(&to)
    );
    Ok(())
}

#[cfg(not(feature = "postgres"))]
async fn copy(_args: CopyArgs) -> anyhow::Result<()> {
    Err(crate::startup::postgres_not_built())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
    tracing::info!("shutting down");
}

mod admin {
    //! Offline commands: they open the store directly, so an operator never needs SQL.

    use std::sync::Arc;

    use anyhow::Context;
    use ferrim_core::accounts::{NewUserInput, RegisterOutcome};
    use ferrim_core::app::AppKey;

    use super::{load_settings, AppCommand, StoreArgs, TokenCommand, UserCommand};
    use crate::config::DEFAULT_APP_KEY;
    use crate::startup;

    async fn open(store: &StoreArgs) -> anyhow::Result<Arc<ferrim_core::accounts::Accounts>> {
        let settings = load_settings(store)?;
        let (store, _closer) = startup::open_store(&settings).await?;
        startup::accounts(&settings, store)
    }

    fn app_key(app: Option<String>) -> anyhow::Result<AppKey> {
        let text = app.unwrap_or_else(|| DEFAULT_APP_KEY.into());
        AppKey::parse(&text)
            .map_err(|_| anyhow::anyhow!("invalid app key {text:?}: expected ORG#APP"))
    }

    pub(super) async fn app(cmd: AppCommand) -> anyhow::Result<()> {
        match cmd {
            AppCommand::Create {
                app_key: key,
                client_id,
                client_secret,
                store,
            } => {
                let accounts = open(&store).await?;
                let key = app_key(Some(key))?;
                let app = accounts
                    .create_app(&key, client_id, client_secret)
                    .await
                    .with_context(|| format!("cannot create app {key}"))?;
                println!("appKey:        {}", app.key);
                println!("client ID:     {}", app.client_id);
                println!("client secret: {}", app.client_secret);
            }
            AppCommand::List {
                show_secrets,
                store,
            } => {
                let accounts = open(&store).await?;
                for app in accounts.list_apps().await? {
                    if show_secrets {
                        println!("{}\t{}\t{}", app.key, app.client_id, app.client_secret);
                    } else {
                        println!("{}\t{}", app.key, app.client_id);
                    }
                }
            }
        }
        Ok(())
    }

    pub(super) async fn user(cmd: UserCommand) -> anyhow::Result<()> {
        let UserCommand::Create {
            username,
            password,
            app,
            store,
        } = cmd;
        let accounts = open(&store).await?;
        let app = accounts.app(&app_key(app)?).await.context("unknown app")?;
        let outcome = accounts
            .register(
                &app,
                vec![NewUserInput {
                    username,
                    password: Some(password),
                    nickname: None,
                }],
            )
            .await?;
        match outcome.into_iter().next() {
            Some(RegisterOutcome::Created(user)) => {
                println!("created user {} ({})", user.username, user.id)
            }
            Some(RegisterOutcome::AlreadyExists(name)) => {
                anyhow::bail!("user {name} already exists")
            }
            None => anyhow::bail!("nothing created"),
        }
        Ok(())
    }

    pub(super) async fn token(cmd: TokenCommand) -> anyhow::Result<()> {
        match cmd {
            TokenCommand::User {
                username,
                ttl,
                app,
                store,
            } => {
                let accounts = open(&store).await?;
                let app = accounts.app(&app_key(app)?).await.context("unknown app")?;
                let (issued, _) = accounts
                    .issue_user_token(&app, &username, ttl)
                    .await
                    .with_context(|| format!("cannot issue a token for {username}"))?;
                println!("{}", issued.token);
            }
            TokenCommand::App { ttl, app, store } => {
                let accounts = open(&store).await?;
                let app = accounts.app(&app_key(app)?).await.context("unknown app")?;
                let issued =
                    accounts.issue_app_token(&app, &app.client_id, &app.client_secret, ttl)?;
                println!("{}", issued.token);
            }
        }
        Ok(())
    }
}
