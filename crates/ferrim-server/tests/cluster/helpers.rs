//! A cluster of real `ferrim` processes (node IDs 1, 2, 3, ...) on one fresh PostgreSQL
//! schema and one NATS server. Every process is killed when the fixture drops.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferrim_client::{Client, ClientError, Event, Events, LoginOptions};
use serde_json::{json, Value};

pub const WAIT: Duration = Duration::from_secs(10);
/// A short lease so a crashed node is swept within seconds.
pub const LEASE_SECS: u64 = 3;
const APP: &str = "cluster#test";
const CLIENT_ID: &str = "YXA6clustertestclientid";
const CLIENT_SECRET: &str = "YXA6clustertestclientsecret";
const NATS_ENV: &str = "FERRIM_TEST_NATS_URL";
const LOCAL_NATS: &str = "nats://127.0.0.1:4222";

/// The NATS server to test against; `None` (skip) when absent outside CI.
fn nats_url() -> Option<String> {
    if let Some(url) = std::env::var(NATS_ENV).ok().filter(|v| !v.is_empty()) {
        return Some(url);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{NATS_ENV} is not set: CI must run the cluster tests (e.g. {NATS_ENV}={LOCAL_NATS})"
        );
    }
    let reachable = std::net::TcpStream::connect_timeout(
        &"127.0.0.1:4222".parse().expect("address"),
        Duration::from_millis(500),
    )
    .is_ok();
    if reachable {
        Some(LOCAL_NATS.into())
    } else {
        eprintln!(
            "notice: skipping the cluster tests: {NATS_ENV} is not set and {LOCAL_NATS} is not \
             reachable. Start nats-server (see docs/cluster.md) or set {NATS_ENV}."
        );
        None
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub struct Node {
    child: Child,
    port: u16,
}

pub struct TestCluster {
    database_url: String,
    nats_url: String,
    nodes: Vec<Option<Node>>,
    pub http: reqwest::Client,
    pub app_token: String,
    dir: tempfile::TempDir,
}

impl TestCluster {
    /// Starts `n` nodes (one after the other, so the first applies the migrations).
    pub async fn start(n: usize) -> Option<Self> {
        let nats_url = nats_url()?;
        let database_url = ferrim_store_postgres::testing::fresh_schema_url().await;
        let mut c = Self {
            database_url,
            nats_url,
            nodes: Vec::new(),
            http: reqwest::Client::new(),
            app_token: String::new(),
            dir: tempfile::tempdir().expect("temp dir"),
        };
        for _ in 0..n {
            c.add_node().await;
        }
        let token = c
            .post(
                0,
                "/token",
                None,
                json!({"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}),
            )
            .await;
        c.app_token = token["access_token"]
            .as_str()
            .expect("app token")
            .to_owned();
        Some(c)
    }

    /// Starts one more node and waits until it serves.
    pub async fn add_node(&mut self) {
        let index = self.nodes.len();
        let port = free_port();
        let log = std::fs::File::create(self.dir.path().join(format!("node{index}.log")))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_ferrim"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(self.dir.path().join(format!("data{index}")))
            .args(["--storage", &self.database_url])
            .args(["--nats-url", &self.nats_url])
            .args(["--node-id", &(index + 1).to_string()])
            .args(["--cluster-lease-secs", &LEASE_SECS.to_string()])
            .env_remove("FERRIM_CONFIG")
            .env("FERRIM_APP_KEY", APP)
            .env("FERRIM_CLIENT_ID", CLIENT_ID)
            .env("FERRIM_CLIENT_SECRET", CLIENT_SECRET)
            .env("FERRIM_PASSWORD_HASH_COST", "test")
            .env("FERRIM_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("ferrim starts");
        self.nodes.push(Some(Node { child, port }));
        let base = self.base(index);
        for _ in 0..400 {
            if let Ok(r) = self.http.get(format!("{base}/health")).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(self.dir.path().join(format!("node{index}.log")));
        panic!("node {index} did not become healthy: {log:?}");
    }

    fn base(&self, node: usize) -> String {
        let port = self.nodes[node].as_ref().expect("node running").port;
        format!("http://127.0.0.1:{port}")
    }

    /// A REST URL of the app on a node.
    pub fn url(&self, node: usize, path: &str) -> String {
        format!("{}/cluster/test{path}", self.base(node))
    }

    fn ws(&self, node: usize) -> String {
        format!("{}/ws", self.base(node).replacen("http", "ws", 1))
    }

    /// SIGKILL.
    pub fn kill(&mut self, node: usize) {
        if let Some(mut n) = self.nodes[node].take() {
            let _ = n.child.kill();
            let _ = n.child.wait();
        }
    }

    async fn post(&self, node: usize, path: &str, token: Option<&str>, body: Value) -> Value {
        let mut req = self.http.post(self.url(node, path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).expect("json")
    }

    /// GET with the app token.
    pub async fn get(&self, node: usize, path: &str) -> Value {
        let resp = self
            .http
            .get(self.url(node, path))
            .bearer_auth(&self.app_token)
            .send()
            .await
            .expect("request");
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.expect("json")
    }

    /// Registers users (password `secret1`) through node 0.
    pub async fn users(&self, names: &[&str]) {
        let body: Vec<Value> = names
            .iter()
            .map(|n| json!({"username": n, "password": "secret1"}))
            .collect();
        let token = self.app_token.clone();
        self.post(0, "/users", Some(&token), Value::Array(body))
            .await;
    }

    /// Logs a device of `user` in on `node`.
    pub async fn login(
        &self,
        node: usize,
        user: &str,
        resource: &str,
    ) -> Result<(Client, Events), ClientError> {
        let token = self
            .post(
                node,
                "/token",
                Some(&self.app_token),
                json!({"grant_type": "inherit", "username": user}),
            )
            .await["access_token"]
            .as_str()
            .expect("user token")
            .to_owned();
        let opts = LoginOptions::new(APP, user, token).with_resource(resource);
        Client::connect(&self.ws(node), opts).await
    }

    /// Waits until REST on `node` reports `user` offline.
    pub async fn wait_offline(&self, node: usize, user: &str, within: Duration) {
        let start = Instant::now();
        loop {
            let status = self.get(node, &format!("/users/{user}/status")).await;
            if status["data"][user] == "offline" {
                return;
            }
            assert!(
                start.elapsed() < within,
                "{user} still online after {within:?}: {status}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for node in self.nodes.iter_mut().flatten() {
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
    }
}

/// The kick code the device is told, if it is kicked within [`WAIT`].
pub async fn kicked(events: &mut Events) -> Option<u16> {
    events
        .wait_for(WAIT, |e| match e {
            Event::Kicked { code, .. } => Some(code),
            _ => None,
        })
        .await
        .ok()
}
