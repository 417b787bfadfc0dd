//! Server settings, layered: built-in defaults, then an optional TOML file, then environment
//! variables (`FERRIM_*`), then command-line flags. Every field is documented in
//! `docs/configuration.md`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The address `ferrim serve` listens on unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8470";
/// The app created on first start unless told otherwise.
pub const DEFAULT_APP_KEY: &str = "demo#demo";

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Plain,
    Json,
}

/// Everything `ferrim serve` can be configured with.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address of the one listener (REST, `/ws`, `/console`, `/metrics`).
    pub listen: SocketAddr,
    /// Directory of the embedded store.
    pub data_dir: PathBuf,
    /// Which store: `sqlite` (the embedded store in `data_dir`) or a PostgreSQL URL
    /// (`postgres://user:password@host:port/database`) shared by every node of a cluster.
    pub storage: String,
    /// The app ensured at start-up.
    pub app_key: String,
    /// Client ID for that app when it is created (generated if unset).
    pub client_id: Option<String>,
    /// Client secret for that app when it is created (generated if unset).
    pub client_secret: Option<String>,
    /// Argon2id cost: `default` (19 MiB, 2 passes), `test`, or `MEMORY_KIB:ITERATIONS`.
    pub password_hash_cost: String,
    /// Log filter in `tracing` syntax (e.g. `info`, `ferrim_server=debug`).
    pub log: String,
    pub log_format: LogFormat,
    /// Origins allowed to call the REST API from a browser; `*` allows any.
    pub cors_origins: Vec<String>,
    /// Largest REST request body, in bytes.
    pub max_body_bytes: usize,
    /// Base URL clients use to reach this server, for the printed URLs and the console;
    /// derived from `listen` when unset.
    pub public_url: Option<String>,
    pub ws: WsSettings,
    pub cluster: ClusterSettings,
}

/// Running several nodes as one deployment (see `docs/cluster.md`). A node is clustered
/// when `storage` is a PostgreSQL URL and `nats_url` is set.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    /// This node's ID, 0–1023, unique among the live nodes (also in its message IDs).
    pub node_id: u16,
    /// The NATS server the nodes route through, e.g. `nats://127.0.0.1:4222`.
    pub nats_url: Option<String>,
    /// Seconds a node's sessions outlive its last heartbeat (renewed every third of it).
    pub lease_secs: u64,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            node_id: 0,
            nats_url: None,
            lease_secs: 15,
        }
    }
}

/// The msync WebSocket gateway.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WsSettings {
    /// A socket that sends nothing for this long is closed, in seconds. The Web SDK sends a
    /// heartbeat at least every ~60 s.
    pub idle_timeout_secs: u64,
    /// Largest WebSocket frame accepted, in bytes.
    pub max_frame_bytes: usize,
    /// Largest message body (`Meta.payload`) accepted for sending, in bytes.
    pub max_message_bytes: usize,
    /// Time allowed between the upgrade and a successful PROVISION, in seconds.
    pub login_timeout_secs: u64,
    /// Most simultaneous WebSocket connections.
    pub max_connections: usize,
    /// How long after sending a one-to-one message its sender may recall it, in seconds.
    pub recall_time_limit_secs: u64,
}

impl Default for WsSettings {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 150,
            // Well above `max_message_bytes`, so that an oversized message is refused with
            // 511 "data is too large" on a live connection rather than a dropped socket.
            max_frame_bytes: 256 * 1024,
            max_message_bytes: 5 * 1024,
            login_timeout_secs: 10,
            max_connections: 100_000,
            // Easemob's default.
            recall_time_limit_secs: 120,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            data_dir: PathBuf::from("./data"),
            storage: "sqlite".into(),
            app_key: DEFAULT_APP_KEY.into(),
            client_id: None,
            client_secret: None,
            password_hash_cost: "default".into(),
            log: "info".into(),
            log_format: LogFormat::Plain,
            cors_origins: vec!["*".into()],
            max_body_bytes: 256 * 1024,
            public_url: None,
            ws: WsSettings::default(),
            cluster: ClusterSettings::default(),
        }
    }
}

/// The store a storage setting names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storage {
    /// The embedded store in the data directory.
    Sqlite,
    /// A PostgreSQL database, by URL.
    Postgres(String),
}

impl Storage {
    /// Parses `sqlite` or a `postgres://` / `postgresql://` URL.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let text = text.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("sqlite") {
            Ok(Self::Sqlite)
        } else if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Ok(Self::Postgres(text.to_owned()))
        } else {
            anyhow::bail!(
                "invalid storage {text:?}: use \"sqlite\" or a postgres://user@host:port/database URL"
            )
        }
    }
}

impl Settings {
    /// The configured store.
    pub fn storage(&self) -> anyhow::Result<Storage> {
        Storage::parse(&self.storage)
    }

    /// Reads a TOML settings file; absent keys keep their defaults.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
        toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("invalid config file {}: {e}", path.display()))
    }

    /// Settings for tests: port 0, the given data directory, cheap password hashing.
    pub fn for_tests(data_dir: &Path) -> Self {
        Self {
            listen: "127.0.0.1:0".parse().expect("valid address"),
            data_dir: data_dir.to_owned(),
            password_hash_cost: "test".into(),
            log: "warn".into(),
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_overrides_defaults_and_rejects_unknown_keys() {
        let s: Settings = toml::from_str(
            "listen = \"127.0.0.1:9000\"\napp_key = \"a#b\"\n[ws]\nidle_timeout_secs = 5\n",
        )
        .unwrap();
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.app_key, "a#b");
        assert_eq!(s.ws.idle_timeout_secs, 5);
        assert_eq!(s.ws.max_frame_bytes, WsSettings::default().max_frame_bytes);
        assert!(toml::from_str::<Settings>("nope = 1").is_err());
    }

    #[test]
    fn storage_is_sqlite_or_a_postgres_url() {
        assert_eq!(Settings::default().storage().unwrap(), Storage::Sqlite);
        let s: Settings = toml::from_str("storage = \"postgres://u@h:5432/db\"\n").unwrap();
        assert_eq!(
            s.storage().unwrap(),
            Storage::Postgres("postgres://u@h:5432/db".into())
        );
        assert!(Storage::parse("mysql://x").is_err());
    }
}
