//! Crash safety: a server killed with SIGKILL during a message stream loses nothing it
//! acknowledged, and delivers each acknowledged message exactly once after a restart.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrim_client::{Client, Event, LoginOptions};
use serde_json::{json, Value};

use crate::common::send_until_failure;

const CLIENT_ID: &str = "YXA6crashtestclientid";
const CLIENT_SECRET: &str = "YXA6crashtestclientsecret";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start(dir: &std::path::Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ferrim"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir)
        .env("FERRIM_APP_KEY", "crash#test")
        .env("FERRIM_CLIENT_ID", CLIENT_ID)
        .env("FERRIM_CLIENT_SECRET", CLIENT_SECRET)
        .env("FERRIM_PASSWORD_HASH_COST", "test")
        .env("FERRIM_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ferrim starts")
}

async fn wait_healthy(http: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if let Ok(r) = http.get(format!("{base}/health")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server did not become healthy");
}

async fn post(http: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> Value {
    let mut req = http.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("request");
    assert!(resp.status().is_success(), "{}", resp.status());
    resp.json().await.expect("json")
}

#[tokio::test]
async fn sigkill_during_a_stream_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let ws = format!("ws://127.0.0.1:{port}/ws");
    let http = reqwest::Client::new();
    let mut server = start(dir.path(), port);
    wait_healthy(&http, &base).await;

    let app_token = post(
        &http,
        format!("{base}/crash/test/token"),
        None,
        json!({"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}),
    )
    .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    post(
        &http,
        format!("{base}/crash/test/users"),
        Some(&app_token),
        json!([{"username": "alice", "password": "secret1"}, {"username": "bob", "password": "secret1"}]),
    )
    .await;
    // Keep every offline message (the default keeps the newest 500 per user).
    let resp = http
        .put(format!("{base}/crash/test/settings"))
        .bearer_auth(&app_token)
        .json(&json!({"offline_keep_count": 100_000}))
        .send()
        .await
        .expect("settings request");
    assert!(resp.status().is_success(), "{}", resp.status());
    let token = |user: &'static str| {
        let (http, base, app_token) = (http.clone(), base.clone(), app_token.clone());
        async move {
            post(
                &http,
                format!("{base}/crash/test/token"),
                Some(&app_token),
                json!({"grant_type": "inherit", "username": user}),
            )
            .await["access_token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let alice_token = token("alice").await;
    let bob_token = token("bob").await;

    // Several senders keep sends in flight so the kill lands mid-commit.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut senders = Vec::new();
    for lane in 0..4 {
        let opts = LoginOptions::new("crash#test", "alice", alice_token.clone())
            .with_resource(format!("lane{lane}"));
        let (client, events) = Client::connect(&ws, opts).await.expect("alice logs in");
        senders.push(send_until_failure(
            lane,
            client,
            events,
            "bob",
            acked.clone(),
        ));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.kill().expect("SIGKILL");
    server.wait().unwrap();
    for s in senders {
        let _ = tokio::time::timeout(Duration::from_secs(20), s).await;
    }
    let acked: Vec<String> = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 10,
        "the stream was running when the server died"
    );

    let mut server = start(dir.path(), port);
    wait_healthy(&http, &base).await;
    let opts = LoginOptions::new("crash#test", "bob", bob_token).with_resource("b1");
    let (_bob, mut events) = Client::connect(&ws, opts)
        .await
        .expect("bob logs in after restart");
    let mut delivered: Vec<String> = Vec::new();
    loop {
        match events.recv_timeout(Duration::from_secs(3)).await {
            Ok(Event::Message(m)) => delivered.push(m.text().unwrap_or_default().to_owned()),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let _ = server.kill();
    let _ = server.wait();

    let unique: HashSet<&String> = delivered.iter().collect();
    assert_eq!(
        unique.len(),
        delivered.len(),
        "no message is delivered twice"
    );
    let missing: Vec<&String> = acked.iter().filter(|t| !unique.contains(t)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged messages lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}
