//! `spawn_app()` and typed helpers over reqwest.

use std::sync::Arc;

use ferrim_core::accounts::Accounts;
use ferrim_core::app::App;
use ferrim_server::{Application, Settings};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::sync::oneshot;

/// A running server.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub app: Arc<App>,
    pub accounts: Arc<Accounts>,
    _shutdown: oneshot::Sender<()>,
    _dir: TempDir,
}

/// A decoded response.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    /// Asserts an Easemob error body.
    #[track_caller]
    pub fn assert_error(&self, status: u16, error: &str, description: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.body["error"], error, "body: {}", self.body);
        assert_eq!(
            self.body["error_description"], description,
            "body: {}",
            self.body
        );
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "body: {}", self.body);
        &self.body
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = Settings::for_tests(dir.path());
    configure(&mut settings);
    let application = Application::build(settings).await.expect("build");
    let base = format!("http://{}", application.addr());
    let app = application.app().clone();
    let accounts = application.state().accounts.clone();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(application.run_until_stopped(async {
        let _ = rx.await;
    }));
    TestApp {
        base,
        client: reqwest::Client::new(),
        app,
        accounts,
        _shutdown: tx,
        _dir: dir,
    }
}

impl TestApp {
    /// `/{org}/{app}{rest}` for the default app.
    pub fn path(&self, rest: &str) -> String {
        format!("/{}/{}{}", self.app.key.org(), self.app.key.app(), rest)
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        send(req).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.request(Method::POST, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.request(Method::PUT, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Resp {
        self.request(Method::DELETE, path, token, None).await
    }

    /// Raw body with a given content type.
    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Resp {
        let mut req = self
            .client
            .post(format!("{}{}", self.base, path))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        send(req).await
    }

    /// A fresh app token (client_credentials).
    pub async fn app_token(&self) -> String {
        self.app_token_ttl(None).await
    }

    pub async fn app_token_ttl(&self, ttl: Option<Value>) -> String {
        let mut body = json!({
            "grant_type": "client_credentials",
            "client_id": self.app.client_id,
            "client_secret": self.app.client_secret,
        });
        if let Some(ttl) = ttl {
            body["ttl"] = ttl;
        }
        let resp = self.post(&self.path("/token"), None, body).await;
        resp.assert_ok()["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// Registers users with the app token; returns the response.
    pub async fn register(&self, token: &str, users: Value) -> Resp {
        self.post(&self.path("/users"), Some(token), users).await
    }

    /// Registers one user and asserts success.
    pub async fn create_user(&self, token: &str, username: &str, password: &str) {
        self.register(token, json!({"username": username, "password": password}))
            .await
            .assert_ok();
    }

    /// Registers `n` users `{prefix}{i}` in batches of 60.
    pub async fn create_users(&self, token: &str, prefix: &str, n: usize) {
        let names: Vec<Value> = (0..n)
            .map(|i| json!({"username": format!("{prefix}{i:03}"), "password": "pw"}))
            .collect();
        for chunk in names.chunks(60) {
            let body = if chunk.len() == 1 {
                chunk[0].clone()
            } else {
                Value::Array(chunk.to_vec())
            };
            self.register(token, body).await.assert_ok();
        }
    }

    /// A user token via `grant_type=inherit`.
    pub async fn user_token(&self, app_token: &str, username: &str) -> String {
        let resp = self
            .post(
                &self.path("/token"),
                Some(app_token),
                json!({"grant_type": "inherit", "username": username}),
            )
            .await;
        resp.assert_ok()["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// The password grant.
    pub async fn password_grant(&self, username: &str, password: &str) -> Resp {
        self.post(
            &self.path("/token"),
            None,
            json!({"grant_type": "password", "username": username, "password": password}),
        )
        .await
    }

    /// The renewToken endpoint for `username` with `token`.
    pub async fn token_expires(&self, username: &str, token: &str) -> Resp {
        self.get(
            &self.path(&format!("/sdk/users/{username}/token/expires")),
            Some(token),
        )
        .await
    }

    pub async fn put_settings(&self, token: &str, patch: Value) -> Resp {
        self.put(&self.path("/settings"), Some(token), patch).await
    }
}

pub async fn send(req: reqwest::RequestBuilder) -> Resp {
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Resp {
        status,
        headers,
        body,
    }
}

/// Current Unix time in ms.
pub fn now_ms() -> u64 {
    ferrim_core::clock::now_ms()
}
