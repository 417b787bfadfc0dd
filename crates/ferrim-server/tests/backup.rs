//! `ferrim backup`: a copy of the embedded store taken while the server runs opens as a
//! store of its own with the users and messages acknowledged before it; an existing target
//! file is refused.

use std::process::Command;

use ferrim_core::messaging::{HistoryQuery, MessageKind, NewMessage, Party};
use ferrim_core::store::Store;
use ferrim_core::user::Username;
use ferrim_store_sqlite::SqliteStore;

#[path = "common/mod.rs"]
mod common;
use common::spawn_app;

fn backup(data_dir: &std::path::Path, out: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ferrim"))
        .arg("backup")
        .arg("--data-dir")
        .arg(data_dir)
        .arg(out)
        .env_remove("FERRIM_CONFIG")
        .env_remove("FERRIM_STORAGE")
        .output()
        .expect("ferrim runs")
}

#[tokio::test]
async fn a_backup_of_a_running_server_holds_what_was_acknowledged() {
    let server = spawn_app().await;
    let app = server.app.clone();
    let messaging = &server.messaging;
    let users = server.users(&["alice", "bob"]).await;
    let (alice, bob) = (&users[0], &users[1]);
    let party = |u: &ferrim_core::user::User| Party {
        id: u.id,
        name: u.username.clone(),
    };
    let mut sent = Vec::new();
    for i in 0..20u8 {
        let message = NewMessage {
            id: 0,
            app_id: app.id,
            from: party(alice),
            to: party(bob),
            from_resource: String::new(),
            to_resource: None,
            client_id: None,
            timestamp_ms: 0,
            kind: MessageKind::Chat,
            payload: vec![i],
        };
        sent.push(messaging.send(message, None).await.unwrap().id);
    }

    // Taken while the server is up.
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("ferrim-backup.db");
    let result = backup(server.data_dir(), &out);
    assert!(
        result.status.success(),
        "backup failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );

    // A second backup to the same file is refused, and says why.
    let again = backup(server.data_dir(), &out);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    server.shutdown();

    // Restored: the file becomes the store of a fresh data directory.
    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(&out, restored.path().join(ferrim_store_sqlite::DB_FILE)).unwrap();
    let store = SqliteStore::open(restored.path()).await.unwrap();
    let bob_back = store
        .user_by_name(app.id, &Username::parse("bob").unwrap())
        .await
        .unwrap()
        .expect("bob is in the backup");
    assert_eq!(bob_back.id, bob.id);
    let history = store
        .history(
            app.id,
            &HistoryQuery {
                a: alice.id,
                b: bob.id,
                before: None,
                after: None,
                from_ms: None,
                to_ms: None,
                limit: 100,
                descending: false,
            },
        )
        .await
        .unwrap();
    let ids: Vec<u64> = history.iter().map(|m| m.id).collect();
    assert_eq!(ids, sent, "every acknowledged message, in order");
    store.close().await;
}
