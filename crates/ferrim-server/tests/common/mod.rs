//! A real server on port 0 with a fresh data directory, shared by the integration test
//! targets that drive it in-process (`gateway`, `messaging`).

// Each target uses a part of it.
#![allow(dead_code)]

use std::sync::Arc;

use ferrim_core::accounts::Accounts;
use ferrim_core::app::App;
use ferrim_core::messaging::Messaging;
use ferrim_server::{Application, Settings};

pub struct TestApp {
    pub app: Arc<App>,
    pub accounts: Arc<Accounts>,
    pub messaging: Arc<Messaging>,
    pub ws_url: String,
    _dir: tempfile::TempDir,
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
        _dir: dir,
        stop,
    }
}

impl TestApp {
    /// Stops the server (graceful shutdown).
    pub fn shutdown(self) {
        let _ = self.stop.send(());
    }
}
