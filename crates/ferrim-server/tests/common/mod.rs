//! A real server on port 0 with a fresh data directory, shared by the integration test
//! targets that drive it in-process (`gateway`, `messaging`).

// Each target uses a part of it.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use ferrim_client::{Client, Events};
use ferrim_core::accounts::{Accounts, NewUserInput, RegisterOutcome};
use ferrim_core::app::App;
use ferrim_core::messaging::Messaging;
use ferrim_core::user::User;
use ferrim_server::{Application, Settings};

pub struct TestApp {
    pub app: Arc<App>,
    pub accounts: Arc<Accounts>,
    pub messaging: Arc<Messaging>,
    pub ws_url: String,
    dir: tempfile::TempDir,
    stop: tokio::sync::oneshot::Sender<()>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts a server with test settings, adjusted by `configure`.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings::for_tests(dir.path());
    configure(&mut settings);
    let application = Application::build(settings).await.expect("server builds");
    let app = application.app().clone();
    let accounts = application.state().accounts.clone();
    let messaging = application.state().messaging.clone();
    let ws_url = application.ws_url();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(application.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        app,
        accounts,
        messaging,
        ws_url,
        dir,
        stop,
    }
}

impl TestApp {
    /// Registers users with password `secret1`; every one must be new.
    pub async fn users(&self, names: &[&str]) -> Vec<User> {
        let inputs = names
            .iter()
            .map(|n| NewUserInput {
                username: (*n).into(),
                password: Some("secret1".into()),
                nickname: None,
            })
            .collect();
        self.accounts
            .register(&self.app, inputs)
            .await
            .expect("users registered")
            .into_iter()
            .map(|outcome| match outcome {
                RegisterOutcome::Created(user) => user,
                other => panic!("not created: {other:?}"),
            })
            .collect()
    }

    /// The server's data directory (its embedded store).
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Stops the server (graceful shutdown).
    pub fn shutdown(self) {
        let _ = self.stop.send(());
    }
}

/// Sends texts `{lane}-0`, `{lane}-1`, … to `to` back to back until a send fails (the
/// server went away), recording each acknowledged text in `acked`: a stream for the crash
/// tests to kill a server under.
pub fn send_until_failure(
    lane: usize,
    client: Client,
    events: Events,
    to: &'static str,
    acked: Arc<Mutex<Vec<String>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let _events = events;
        for i in 0..100_000 {
            let text = format!("{lane}-{i}");
            match client.send_text(to, &text).await {
                Ok(_) => acked.lock().unwrap().push(text),
                Err(_) => return,
            }
        }
    })
}
