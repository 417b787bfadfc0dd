//! The real binary, started twice on the same data directory.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::send;

struct Running {
    child: Child,
    base: String,
    client_id: String,
    client_secret: Option<String>,
}

fn value_of(line: &str, label: &str) -> Option<String> {
    line.trim()
        .strip_prefix(label)
        .map(|rest| rest.trim().to_owned())
}

/// Starts `ferrim serve` and reads the start-up banner.
async fn start(data_dir: &std::path::Path) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrim"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("FERRIM_PASSWORD_HASH_COST", "test")
        .env("FERRIM_LOG", "warn")
        .env_remove("FERRIM_CLIENT_ID")
        .env_remove("FERRIM_CLIENT_SECRET")
        .env_remove("FERRIM_APP_KEY")
        .env_remove("FERRIM_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn ferrim");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let (mut base, mut client_id, mut client_secret) = (None, None, None);
    let banner = async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if let Some(v) = value_of(&line, "client ID:") {
                client_id = Some(v);
            } else if let Some(v) = value_of(&line, "client secret:") {
                client_secret = Some(v);
            } else if let Some(v) = value_of(&line, "REST API:") {
                base = Some(v);
            } else if line.trim().starts_with("WebSocket:") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), banner)
        .await
        .expect("banner within 30 s");
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Running {
        child,
        base: base.expect("REST URL printed"),
        client_id: client_id.expect("client ID printed"),
        client_secret,
    }
}

/// Stops the child gracefully (SIGTERM to its own pid), killing it if it lingers.
async fn stop(mut running: Running) {
    if let Some(pid) = running.child.id() {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
    }
    if tokio::time::timeout(Duration::from_secs(10), running.child.wait())
        .await
        .is_err()
    {
        let _ = running.child.kill().await;
    }
}

async fn token(
    client: &reqwest::Client,
    base: &str,
    body: serde_json::Value,
) -> crate::helpers::Resp {
    send(client.post(format!("{base}/demo/demo/token")).json(&body)).await
}

#[tokio::test]
async fn credentials_and_users_survive_a_restart_and_the_secret_prints_once() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();

    let first = start(dir.path()).await;
    let secret = first
        .client_secret
        .clone()
        .expect("the secret is printed when generated");
    let resp = token(
        &client,
        &first.base,
        json!({"grant_type": "client_credentials", "client_id": first.client_id, "client_secret": secret}),
    )
    .await;
    let admin = resp.assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = send(
        client
            .post(format!("{}/demo/demo/users", first.base))
            .bearer_auth(&admin)
            .json(&json!({"username": "alice", "password": "pw"})),
    )
    .await;
    resp.assert_ok();
    let client_id = first.client_id.clone();
    stop(first).await;

    let second = start(dir.path()).await;
    assert_eq!(second.client_id, client_id, "client ID unchanged");
    assert!(
        second.client_secret.is_none(),
        "the secret is printed only on first start"
    );
    let resp = token(
        &client,
        &second.base,
        json!({"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}),
    )
    .await;
    let admin2 = resp.assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // The token issued before the restart still works; the user is there.
    for token in [&admin, &admin2] {
        let resp = send(
            client
                .get(format!("{}/demo/demo/users/alice", second.base))
                .bearer_auth(token),
        )
        .await;
        resp.assert_ok();
    }
    let resp = token(
        &client,
        &second.base,
        json!({"grant_type": "password", "username": "alice", "password": "pw"}),
    )
    .await;
    resp.assert_ok();
    stop(second).await;
}
