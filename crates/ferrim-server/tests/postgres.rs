//! `ferrim serve` on PostgreSQL (`storage` = a postgres:// URL), and the `ferrim migrate`
//! and `ferrim copy` commands of the real binary. Needs PostgreSQL: see
//! `ferrim_store_postgres::testing` (FERRIM_TEST_DATABASE_URL).
#![cfg(feature = "postgres")]

use std::process::Command;

use ferrim_core::accounts::NewUserInput;
use ferrim_core::messaging::{InboxQuery, MessageKind, NewMessage, Party};
use ferrim_server::{Application, Settings};

fn ferrim(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ferrim"))
        .args(args)
        .env_remove("FERRIM_STORAGE")
        .env_remove("FERRIM_CONFIG")
        .output()
        .expect("run ferrim");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn serve_runs_on_postgres_and_the_commands_work() {
    let url = ferrim_store_postgres::testing::fresh_schema_url().await;

    // `ferrim migrate` on an empty schema applies both migrations; again, nothing to do.
    let (ok, out) = ferrim(&["migrate", "--storage", &url]);
    assert!(ok, "{out}");
    assert!(out.contains("applied migrations 0001, 0002"), "{out}");
    let (ok, out) = ferrim(&["migrate", "--storage", &url]);
    assert!(ok && out.contains("up to date"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let (ok, out) = ferrim(&["migrate", "--data-dir", data_dir]);
    assert!(ok && out.contains("nothing to do"), "{out}");
    let (ok, out) = ferrim(&["migrate", "--storage", "mysql://x"]);
    assert!(!ok && out.contains("invalid storage"), "{out}");

    // The server on PostgreSQL: the app is ensured there, messages go to its inboxes.
    let mut settings = Settings::for_tests(dir.path());
    settings.storage = url.clone();
    let app = Application::build(settings).await.unwrap();
    let state = app.state().clone();
    assert_eq!(state.accounts.store().engine(), "postgres");
    let demo = app.app().clone();
    let users = state
        .accounts
        .register(
            &demo,
            ["ann", "ben"]
                .iter()
                .map(|n| NewUserInput {
                    username: (*n).into(),
                    password: Some("password1".into()),
                    nickname: None,
                })
                .collect(),
        )
        .await
        .unwrap();
    assert_eq!(users.len(), 2);
    let ann = state.accounts.user(&demo, "ann").await.unwrap();
    let ben = state.accounts.user(&demo, "ben").await.unwrap();
    let sent = state
        .messaging
        .send(
            NewMessage {
                id: 0,
                app_id: demo.id,
                from: Party {
                    id: ann.id,
                    name: ann.username.clone(),
                },
                to: Party {
                    id: ben.id,
                    name: ben.username.clone(),
                },
                from_resource: "web_1".into(),
                to_resource: None,
                client_id: Some(7),
                timestamp_ms: 0,
                kind: MessageKind::Chat,
                payload: b"hi".to_vec(),
            },
            None,
        )
        .await
        .unwrap();
    let inbox = state
        .messaging
        .inbox(
            demo.id,
            ben.id,
            InboxQuery {
                after: 0,
                sent_after: 0,
                resource: "web_2",
                min_timestamp_ms: 0,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!((inbox[0].cursor, inbox[0].message.id), (1, sent.id));
    let base = app.rest_url();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let health = reqwest::get(format!("{base}/health")).await.unwrap();
    assert!(health.status().is_success());
    let _ = stop.send(());
    server.await.unwrap().unwrap();

    // `ferrim copy` refuses a target that already holds data, and a missing source.
    let source = tempfile::tempdir().unwrap();
    let mut source_settings = Settings::for_tests(source.path());
    source_settings.storage = "sqlite".into();
    drop(Application::build(source_settings).await.unwrap());
    let from = format!("sqlite:{}", source.path().display());
    let (ok, out) = ferrim(&["copy", "--from", &from, "--to", &url]);
    assert!(!ok && out.contains("empty database"), "{out}");
    let (ok, out) = ferrim(&["copy", "--from", "/nonexistent/dir", "--to", &url]);
    assert!(!ok && out.contains("no embedded store"), "{out}");
}
