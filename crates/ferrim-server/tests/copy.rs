//! `ferrim copy`: an embedded store copied into PostgreSQL keeps its apps (with
//! credentials and token keys), users (hashes, token generations), messages, inbox order and
//! read positions; tokens issued before the copy still verify; a second copy is refused.
//! Needs PostgreSQL: see `ferrim_store_postgres::testing` (FERRIM_TEST_DATABASE_URL).
#![cfg(feature = "postgres")]

use std::sync::Arc;

use ferrim_core::accounts::NewUserInput;
use ferrim_core::app::AppKey;
use ferrim_core::messaging::{
    HistoryQuery, InboxEntry, InboxQuery, MessageKind, NewMessage, Party,
};
use ferrim_core::store::{Store, UserUpdate};
use ferrim_core::user::{User, Username};
use ferrim_server::copy::sqlite_to_postgres;
use ferrim_server::startup::accounts;
use ferrim_server::Settings;
use ferrim_store_postgres::PostgresStore;
use ferrim_store_sqlite::SqliteStore;

fn party(u: &User) -> Party {
    Party {
        id: u.id,
        name: u.username.clone(),
    }
}

fn query(after: u64, resource: &str) -> InboxQuery<'_> {
    InboxQuery {
        after,
        sent_after: 0,
        resource,
        min_timestamp_ms: 0,
        limit: 10_000,
    }
}

fn ids(entries: &[InboxEntry]) -> Vec<u64> {
    entries.iter().map(|e| e.message.id).collect()
}

#[tokio::test]
async fn sqlite_store_copied_into_postgres_reads_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::for_tests(dir.path());
    let sqlite = SqliteStore::open(dir.path()).await.unwrap();
    let src: Arc<dyn Store> = Arc::new(sqlite.clone());
    let src_accounts = accounts(&settings, src.clone()).unwrap();

    // Two apps; users with passwords; one password change (generation 1).
    let app = src_accounts
        .create_app(&AppKey::parse("org#main").unwrap(), None, None)
        .await
        .unwrap();
    let other = src_accounts
        .create_app(&AppKey::parse("org#other").unwrap(), None, None)
        .await
        .unwrap();
    let names = ["alice", "bob", "carol"];
    src_accounts
        .register(
            &app,
            names
                .iter()
                .map(|n| NewUserInput {
                    username: (*n).into(),
                    password: Some(format!("{n}-password")),
                    nickname: Some(format!("Nick {n}")),
                })
                .collect(),
        )
        .await
        .unwrap();
    src_accounts
        .register(
            &other,
            vec![NewUserInput {
                username: "alice".into(),
                password: Some("x-password".into()),
                nickname: None,
            }],
        )
        .await
        .unwrap();
    let carol_name = Username::parse("carol").unwrap();
    src.update_user(
        app.id,
        &carol_name,
        UserUpdate::Password {
            hash: "changed-hash".into(),
        },
        5,
    )
    .await
    .unwrap();
    let mut users = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let name = Username::parse(name).unwrap();
        users.push(src.user_by_name(app.id, &name).await.unwrap().unwrap());
    }
    let [alice, bob, carol]: [User; 3] = users.try_into().unwrap();

    // Tokens issued before the copy.
    let app_token = src_accounts
        .issue_app_token(&app, &app.client_id, &app.client_secret, Some(3600))
        .unwrap()
        .token;
    let (bob_token, _) = src_accounts
        .issue_user_token(&app, "bob", Some(3600))
        .await
        .unwrap();

    // 1,203 messages (more than one copy page): chat both ways, receipts, a message to
    // oneself, and messages from the app's "admin" pseudo-sender (no users row).
    let admin = Party {
        id: app.id,
        name: Username::parse("admin").unwrap(),
    };
    let mut batch = Vec::new();
    for i in 1..=1200u64 {
        let (from, to, res) = match i % 4 {
            0 => (party(&alice), party(&bob), "a1"),
            1 => (party(&bob), party(&alice), "b1"),
            2 => (party(&carol), party(&bob), "c1"),
            _ => (admin.clone(), party(&bob), ""),
        };
        batch.push(NewMessage {
            id: 1_000 + i,
            app_id: app.id,
            from,
            to,
            from_resource: res.into(),
            to_resource: None,
            client_id: Some(i),
            timestamp_ms: 10_000 + i,
            kind: if i % 10 == 0 {
                MessageKind::Signal
            } else {
                MessageKind::Chat
            },
            payload: format!("body {i}").into_bytes(),
        });
    }
    for (i, to) in [(1201u64, &alice), (1202, &alice), (1203, &carol)] {
        let from = if i == 1201 { &alice } else { &bob };
        batch.push(NewMessage {
            id: 1_000 + i,
            app_id: app.id,
            from: party(from),
            to: party(to),
            from_resource: "x".into(),
            to_resource: None,
            client_id: None,
            timestamp_ms: 10_000 + i,
            kind: MessageKind::Chat,
            payload: vec![],
        });
    }
    for chunk in batch.chunks(300) {
        src.append_messages(chunk).await.unwrap();
    }
    // Read positions: bob's b1 read up to message 1700, b2 up to 1100.
    src.save_inbox_cursors(&[
        ((bob.id, "b1".into()), 1_700),
        ((bob.id, "b2".into()), 1_100),
    ])
    .await
    .unwrap();

    // Alice deleted her conversation with bob up to message 1500, and its history.
    src.clear_conversation(alice.id, bob.id, 1_500, true)
        .await
        .unwrap();

    // Copy.
    let url = ferrim_store_postgres::testing::fresh_schema_url().await;
    let pg = PostgresStore::connect(&url).await.unwrap();
    let mut lines = Vec::new();
    let report = sqlite_to_postgres(&sqlite, &pg, |l| lines.push(l))
        .await
        .unwrap();
    assert_eq!(
        (
            report.apps,
            report.users,
            report.messages,
            report.device_cursors,
            report.conversation_clears
        ),
        (2, 4, 1203, 2, 1)
    );
    let dst: Arc<dyn Store> = Arc::new(pg.clone());

    // Apps and users, field for field.
    let (src_apps, dst_apps) = (
        src.list_apps().await.unwrap(),
        dst.list_apps().await.unwrap(),
    );
    assert_eq!(src_apps.len(), dst_apps.len());
    for (s, d) in src_apps.iter().zip(&dst_apps) {
        assert_eq!(
            (
                &s.id,
                &s.key,
                &s.client_id,
                &s.client_secret,
                &s.token_key,
                &s.settings,
                s.created_ms
            ),
            (
                &d.id,
                &d.key,
                &d.client_id,
                &d.client_secret,
                &d.token_key,
                &d.settings,
                d.created_ms
            )
        );
        let (su, du) = (
            src.list_users(s.id, None, 100).await.unwrap().users,
            dst.list_users(s.id, None, 100).await.unwrap().users,
        );
        assert_eq!(su, du, "users of {} in creation order", s.key);
    }
    let copied_carol = dst
        .user_by_name(app.id, &carol_name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(copied_carol.token_generation, 1);
    assert_eq!(copied_carol.password_hash.as_deref(), Some("changed-hash"));

    // Messages, inboxes, positions, history, conversations.
    for m in &batch {
        assert_eq!(
            dst.message_by_id(app.id, m.id).await.unwrap().as_ref(),
            Some(m)
        );
    }
    for (u, res) in [(&alice, "a9"), (&bob, "b1"), (&bob, "b9"), (&carol, "c1")] {
        let s = src.inbox_after(app.id, u.id, &query(0, res)).await.unwrap();
        let d = dst.inbox_after(app.id, u.id, &query(0, res)).await.unwrap();
        assert_eq!(
            ids(&s),
            ids(&d),
            "inbox of {} on {res}",
            u.username.as_str()
        );
        let (sp, dp) = (
            src.inbox_position(u.id, res, 100).await.unwrap(),
            dst.inbox_position(u.id, res, 100).await.unwrap(),
        );
        // The backlog floor names the same message in both stores.
        let floor_message = |entries: &[InboxEntry], floor: u64| {
            entries
                .iter()
                .find(|e| e.cursor == floor)
                .map(|e| e.message.id)
        };
        let all_s = src
            .inbox_after(app.id, u.id, &query(0, "none"))
            .await
            .unwrap();
        let all_d = dst
            .inbox_after(app.id, u.id, &query(0, "none"))
            .await
            .unwrap();
        assert_eq!(
            floor_message(&all_s, sp.backlog_floor),
            floor_message(&all_d, dp.backlog_floor)
        );
        // Whatever a device has still to read is the same.
        for (cursor_s, cursor_d) in [
            (sp.device_cursor.unwrap_or(0), dp.device_cursor.unwrap_or(0)),
            (sp.offline_cursor, dp.offline_cursor),
        ] {
            assert_eq!(
                ids(&src
                    .inbox_after(app.id, u.id, &query(cursor_s, res))
                    .await
                    .unwrap()),
                ids(&dst
                    .inbox_after(app.id, u.id, &query(cursor_d, res))
                    .await
                    .unwrap()),
                "unread of {} on {res}",
                u.username.as_str()
            );
        }
    }
    let bob_b1 = dst.inbox_position(bob.id, "b1", 100).await.unwrap();
    assert!(bob_b1.device_cursor.unwrap() > 0);
    for (a, b) in [(&alice, &bob), (&bob, &carol), (&alice, &alice)] {
        let h = HistoryQuery {
            a: a.id,
            b: b.id,
            before: None,
            after: None,
            from_ms: None,
            to_ms: None,
            limit: 2000,
            descending: false,
        };
        assert_eq!(
            src.history(app.id, &h).await.unwrap(),
            dst.history(app.id, &h).await.unwrap()
        );
    }
    for u in [&alice, &bob, &carol] {
        let peers = |c: Vec<ferrim_core::messaging::Conversation>| {
            c.into_iter()
                .map(|c| (c.peer, c.last.id, c.unread))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            peers(src.conversations(app.id, u.id, None, 10).await.unwrap()),
            peers(dst.conversations(app.id, u.id, None, 10).await.unwrap())
        );
    }
    assert_eq!(dst.history_start(alice.id, bob.id).await.unwrap(), 1_500);
    assert_eq!(dst.history_start(bob.id, alice.id).await.unwrap(), 0);

    // Tokens issued before the copy verify against the PostgreSQL store.
    let dst_accounts = accounts(&settings, dst.clone()).unwrap();
    let dst_app = dst_accounts
        .app(&AppKey::parse("org#main").unwrap())
        .await
        .unwrap();
    dst_accounts.authenticate_app(&dst_app, &app_token).unwrap();
    let authed = dst_accounts
        .authenticate_user(&dst_app, &bob_token.token)
        .await
        .unwrap();
    assert_eq!(authed.user.id, bob.id);

    // A second copy into the same (now non-empty) database is refused and changes nothing.
    let again = sqlite_to_postgres(&sqlite, &pg, |_| {}).await;
    let err = again.unwrap_err().to_string();
    assert!(err.contains("empty"), "{err}");
    assert_eq!(dst.count_users(app.id).await.unwrap(), 3);
    sqlite.close().await;
    pg.close().await;
}
