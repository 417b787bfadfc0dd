//! The ferrim target: app token, batch registration, user tokens and settings over REST;
//! sessions with the msync client library. Given the nodes of a cluster, REST goes to the
//! first node (the state is shared) and sessions are spread round-robin over all of them.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant as StdInstant};

use anyhow::{bail, Context, Result};
use ferrim_client::{Client, Connection, Event, LoginOptions};
use serde_json::{json, Value};
use tokio::sync::OnceCell;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::target::{Incoming, RegisterOutcome, Sink};

/// Users per batch-registration request (the REST API's maximum).
pub const BATCH: usize = 60;

/// How to reach a ferrim server, or the nodes of a cluster.
#[derive(Debug, Clone)]
pub struct FerrimConfig {
    /// Base URLs, e.g. `http://127.0.0.1:8470`: one per node, at least one.
    pub base_urls: Vec<String>,
    /// `org#app`.
    pub app_key: String,
    pub client_id: String,
    pub client_secret: String,
    /// User names are `{prefix}{index}`.
    pub user_prefix: String,
    /// What `FERRIM_PASSWORD_HASH_COST` the server runs with (reported only).
    pub hash_cost: String,
}

/// A ferrim server (or cluster) under test.
pub struct FerrimTarget {
    cfg: FerrimConfig,
    /// The msync URL of each node.
    ws_urls: Vec<String>,
    /// Connections made so far: the next one goes to node `next_node % nodes`.
    next_node: AtomicUsize,
    http: reqwest::Client,
    app_token: OnceCell<String>,
    tokens: Mutex<Vec<Option<String>>>,
}

impl FerrimTarget {
    pub fn new(cfg: FerrimConfig) -> Self {
        assert!(!cfg.base_urls.is_empty(), "at least one base URL");
        let ws_urls = cfg.base_urls.iter().map(|u| ws_url(u)).collect();
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        FerrimTarget {
            cfg,
            ws_urls,
            next_node: AtomicUsize::new(0),
            http,
            app_token: OnceCell::new(),
            tokens: Mutex::new(Vec::new()),
        }
    }

    fn app_path(&self) -> String {
        let (org, app) = self
            .cfg
            .app_key
            .split_once('#')
            .unwrap_or((&self.cfg.app_key, ""));
        format!(
            "{}/{org}/{app}",
            self.cfg.base_urls[0].trim_end_matches('/')
        )
    }

    /// How many nodes sessions are spread over.
    pub fn nodes(&self) -> usize {
        self.ws_urls.len()
    }

    /// The node for the next connection and its msync URL (round-robin).
    fn next_ws_url(&self) -> (usize, &str) {
        let node = self.next_node.fetch_add(1, Ordering::Relaxed) % self.ws_urls.len();
        (node, &self.ws_urls[node])
    }

    pub fn user(&self, i: usize) -> String {
        format!("{}{i}", self.cfg.user_prefix)
    }

    /// The app token (client_credentials), fetched once.
    pub async fn app_token(&self) -> Result<String> {
        self.app_token
            .get_or_try_init(|| async {
                let v = post_json(
                    &self.http,
                    &format!("{}/token", self.app_path()),
                    None,
                    &json!({
                        "grant_type": "client_credentials",
                        "client_id": self.cfg.client_id,
                        "client_secret": self.cfg.client_secret,
                        "ttl": 0,
                    }),
                )
                .await?;
                v["access_token"]
                    .as_str()
                    .map(str::to_owned)
                    .context("no access_token in app token reply")
            })
            .await
            .cloned()
    }

    /// W0: batch registration, a few requests in flight (the server hashes passwords on
    /// its blocking pool, so concurrency lets it use both cores).
    pub async fn register(&self, first: usize, n: usize) -> Result<RegisterOutcome> {
        let token = self.app_token().await?;
        let url = format!("{}/users", self.app_path());
        let started = StdInstant::now();
        let batches: Vec<(usize, usize)> = (first..first + n)
            .step_by(BATCH)
            .map(|s| (s, BATCH.min(first + n - s)))
            .collect();
        let mut out = RegisterOutcome {
            requested: n,
            method: format!(
                "REST POST /users, batches of {BATCH}, 4 in flight, argon2 cost `{}`",
                self.cfg.hash_cost
            ),
            ..RegisterOutcome::default()
        };
        let mut set = JoinSet::new();
        let mut iter = batches.into_iter();
        loop {
            while set.len() < 4 {
                let Some((s, len)) = iter.next() else { break };
                let body: Vec<Value> = (s..s + len)
                    .map(|i| json!({"username": self.user(i), "password": password(i)}))
                    .collect();
                let (url, token) = (url.clone(), token.clone());
                let this = self.http.clone();
                set.spawn(async move { post_users(&this, &url, &token, body).await });
            }
            match set.join_next().await {
                Some(Ok(Ok((created, failed)))) => {
                    out.created += created;
                    out.already_existed += failed;
                }
                Some(Ok(Err(e))) => {
                    tracing::warn!(error = %e, "batch registration failed");
                    out.failed += BATCH;
                }
                Some(Err(e)) => bail!("registration task: {e}"),
                None => break,
            }
        }
        out.failed = out.failed.min(n);
        out.seconds = started.elapsed().as_secs_f64();
        out.users_per_sec = out.created as f64 / out.seconds.max(1e-9);
        Ok(out)
    }

    /// User tokens (grant `inherit`) for users `first..first + n`, 8 requests in flight.
    pub async fn fetch_tokens(&self, first: usize, n: usize) -> Result<()> {
        let app = self.app_token().await?;
        let url = format!("{}/token", self.app_path());
        {
            let mut t = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
            if t.len() < first + n {
                t.resize(first + n, None);
            }
        }
        let missing: Vec<usize> = {
            let t = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
            (first..first + n).filter(|&i| t[i].is_none()).collect()
        };
        let mut set = JoinSet::new();
        let mut iter = missing.into_iter();
        let this = std::sync::Arc::new((self.http.clone(), url, app));
        loop {
            while set.len() < 8 {
                let Some(i) = iter.next() else { break };
                let body = json!({"grant_type": "inherit", "username": self.user(i), "ttl": 0});
                let this = this.clone();
                set.spawn(async move {
                    let (http, url, app) = &*this;
                    let v = post_json(http, url, Some(app), &body).await?;
                    let token = v["access_token"]
                        .as_str()
                        .map(str::to_owned)
                        .context("no access_token in user token reply")?;
                    Ok::<_, anyhow::Error>((i, token))
                });
            }
            match set.join_next().await {
                Some(Ok(Ok((i, token)))) => {
                    self.tokens.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(token);
                }
                Some(Ok(Err(e))) => return Err(e.context("fetching user tokens")),
                Some(Err(e)) => bail!("token task: {e}"),
                None => break,
            }
        }
        Ok(())
    }

    /// Sets the device cap per platform and the kick-earliest policy.
    pub async fn set_device_cap(&self, cap: u32) -> Result<()> {
        let app = self.app_token().await?;
        let resp = self
            .http
            .put(format!("{}/settings", self.app_path()))
            .bearer_auth(app)
            .json(&json!({"device_cap_per_platform": cap, "kick_policy": "kick_earliest"}))
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!(
                "PUT settings: HTTP {}: {}",
                resp.status(),
                resp.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    fn token(&self, i: usize) -> Result<String> {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(i)
            .cloned()
            .flatten()
            .with_context(|| format!("no token for user {i} (prepare_logins first)"))
    }

    fn options(&self, i: usize, resource: &str, src: Option<IpAddr>) -> Result<LoginOptions> {
        let mut opts = LoginOptions::new(&self.cfg.app_key, self.user(i), self.token(i)?)
            .with_resource(resource);
        opts.transport.local_addr = src;
        // This client does not speak LZ4; never let a server pick it.
        opts.offer_lz4 = false;
        opts.events_capacity = 4096;
        opts.commands_capacity = 1024;
        Ok(opts)
    }

    pub async fn login(
        &self,
        i: usize,
        resource: &str,
        src: Option<IpAddr>,
        sink: Sink,
    ) -> Result<FerrimSession> {
        let opts = self.options(i, resource, src)?;
        let (node, url) = self.next_ws_url();
        let (client, mut events) = Client::connect(url, opts).await?;
        tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                match ev {
                    Event::Message(m) => {
                        if let Some(text) = m.text() {
                            sink(Incoming::Message {
                                text: text.to_owned(),
                            });
                        }
                    }
                    Event::Kicked { .. } => sink(Incoming::Kicked),
                    Event::Disconnected { .. } => {
                        sink(Incoming::Closed);
                        break;
                    }
                    _ => {}
                }
            }
        });
        Ok(FerrimSession { client, node })
    }

    pub async fn login_and_drop(
        &self,
        i: usize,
        resource: &str,
        src: Option<IpAddr>,
    ) -> Result<Instant> {
        let opts = self.options(i, resource, src)?;
        let (_, url) = self.next_ws_url();
        let mut conn = Connection::connect(url, &opts.transport).await?;
        conn.provision(&opts).await?;
        let done = Instant::now();
        drop(conn);
        Ok(done)
    }
}

/// The WebSocket URL of the msync gateway at base URL `base`.
pub fn ws_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    let rest = if let Some(r) = base.strip_prefix("http://") {
        format!("ws://{r}")
    } else if let Some(r) = base.strip_prefix("https://") {
        format!("wss://{r}")
    } else {
        base.to_owned()
    };
    format!("{rest}/ws")
}

/// The password of user `i` (cheap to recompute; only for benchmark accounts).
pub fn password(i: usize) -> String {
    format!("pw-{i}")
}

async fn post_json(
    http: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    body: &Value,
) -> Result<Value> {
    let mut attempt = 0u32;
    loop {
        let mut req = http.post(url).json(body);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.with_context(|| format!("POST {url}"))?;
        let status = resp.status();
        if status.as_u16() == 429 && attempt < 5000 {
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(5 + u64::from(attempt.min(20)))).await;
            continue;
        }
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("POST {url}: HTTP {status}: {text}");
        }
        return serde_json::from_str(&text).with_context(|| format!("POST {url}: {text}"));
    }
}

/// One batch: returns (created, rejected-as-existing-or-invalid).
async fn post_users(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: Vec<Value>,
) -> Result<(usize, usize)> {
    let v = post_json(http, url, Some(token), &Value::Array(body)).await?;
    let created = v["entities"].as_array().map_or(0, Vec::len);
    let failed = v["data"].as_array().map_or(0, Vec::len);
    Ok((created, failed))
}

/// A logged-in msync session.
pub struct FerrimSession {
    client: Client,
    /// Index of the node it is connected to.
    node: usize,
}

impl FerrimSession {
    /// Index of the node this session is connected to (into the configured base URLs).
    pub fn node(&self) -> usize {
        self.node
    }

    pub async fn send(&self, to: &str, text: &str) -> Result<()> {
        self.client.send_text(to, text).await?;
        Ok(())
    }

    pub async fn heartbeat(&self) -> Result<()> {
        self.client.heartbeat().await?;
        Ok(())
    }

    pub async fn close(&self) {
        let _ = self.client.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(urls: &[&str]) -> FerrimTarget {
        FerrimTarget::new(FerrimConfig {
            base_urls: urls.iter().map(|u| u.to_string()).collect(),
            app_key: "org#app".into(),
            client_id: String::new(),
            client_secret: String::new(),
            user_prefix: "u".into(),
            hash_cost: "test".into(),
        })
    }

    #[test]
    fn urls() {
        assert_eq!(ws_url("http://127.0.0.1:8470/"), "ws://127.0.0.1:8470/ws");
        assert_eq!(ws_url("https://im.example"), "wss://im.example/ws");
        let t = target(&["http://a:1", "http://b:2"]);
        assert_eq!(
            t.app_path(),
            "http://a:1/org/app",
            "REST goes to the first node"
        );
    }

    #[test]
    fn connections_go_round_robin() {
        let t = target(&["http://a:1", "http://b:2"]);
        assert_eq!(t.nodes(), 2);
        let picked: Vec<(usize, String)> = (0..5)
            .map(|_| {
                let (n, u) = t.next_ws_url();
                (n, u.to_owned())
            })
            .collect();
        assert_eq!(picked[0], (0, "ws://a:1/ws".to_owned()));
        assert_eq!(picked[1], (1, "ws://b:2/ws".to_owned()));
        assert_eq!(picked[4].0, 0);
        let one = target(&["http://a:1"]);
        assert!((0..3).all(|_| one.next_ws_url().0 == 0));
    }
}
