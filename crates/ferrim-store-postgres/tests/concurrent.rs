//! PostgreSQL-specific: several nodes (each its own pool, its own ID generator) appending
//! to one recipient at once leave a gap-free, strictly increasing inbox sequence with every
//! message in it exactly once, and a reader paging while they write never skips an entry.

use std::collections::HashSet;

use ferrim_core::app::{App, AppKey};
use ferrim_core::messaging::{IdGenerator, InboxQuery, MessageKind, NewMessage, Party};
use ferrim_core::store::Store;
use ferrim_core::user::{User, Username};
use ferrim_store_postgres::{testing, PostgresStore};

const NODES: usize = 4;
const BATCHES: usize = 25;
const PER_BATCH: usize = 8;

fn user(app: &App, name: &str) -> User {
    User::new(app.id, Username::parse(name).unwrap(), None, None, 1)
}

fn party(u: &User) -> Party {
    Party {
        id: u.id,
        name: u.username.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_from_several_nodes_keep_one_gap_free_order() {
    let url = testing::fresh_schema_url().await;
    let setup = PostgresStore::connect_with(&url, 2).await.unwrap();
    setup.migrate().await.unwrap();
    let app = App::new(AppKey::parse("org#race").unwrap(), None, None, 1);
    setup.insert_app(&app).await.unwrap();
    let bob = user(&app, "bob");
    // One sender per node, plus a sender shared by all nodes so that batches lock
    // overlapping sets of users in different orders of appearance.
    let senders: Vec<User> = (0..NODES).map(|i| user(&app, &format!("s{i}"))).collect();
    let shared = user(&app, "shared");
    let mut all = vec![bob.clone(), shared.clone()];
    all.extend(senders.iter().cloned());
    setup.insert_users(&all).await.unwrap();

    let mut tasks = Vec::new();
    for (node, sender) in senders.iter().enumerate() {
        let store = PostgresStore::connect_with(&url, 2).await.unwrap();
        let (app, bob, sender, shared) = (app.clone(), bob.clone(), sender.clone(), shared.clone());
        tasks.push(tokio::spawn(async move {
            let ids = IdGenerator::new(node as u16 + 1);
            let mut sent = Vec::new();
            for b in 0..BATCHES {
                let now = 1_800_000_000_000 + b as u64;
                let batch: Vec<NewMessage> = (0..PER_BATCH)
                    .map(|i| {
                        // Alternate senders, and send in both directions with `shared`.
                        let (from, to) = match i % 3 {
                            0 => (&sender, &bob),
                            1 => (&shared, &bob),
                            _ => (&bob, &sender),
                        };
                        NewMessage {
                            id: ids.next(now),
                            app_id: app.id,
                            from: party(from),
                            to: party(to),
                            from_resource: format!("n{node}"),
                            to_resource: None,
                            client_id: Some((b * PER_BATCH + i) as u64),
                            timestamp_ms: now,
                            kind: MessageKind::Chat,
                            payload: vec![node as u8],
                        }
                    })
                    .collect();
                let out = store.append_messages(&batch).await.unwrap();
                assert!(out.iter().all(|o| !o.duplicate));
                sent.extend(out.iter().map(|o| o.id));
                tokio::task::yield_now().await;
            }
            sent
        }));
    }

    // A reader on yet another node pages Bob's inbox while the writers run: with a
    // per-user sequence it must see every entry, in order, without ever skipping one.
    let reader = PostgresStore::connect_with(&url, 1).await.unwrap();
    let expected = NODES * BATCHES * PER_BATCH;
    let mut seen = Vec::new();
    let mut cursor = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while seen.len() < expected {
        assert!(std::time::Instant::now() < deadline, "reader timed out");
        let page = reader
            .inbox_after(
                app.id,
                bob.id,
                &InboxQuery {
                    after: cursor,
                    sent_after: 0,
                    resource: "reader",
                    min_timestamp_ms: 0,
                    limit: 50,
                },
            )
            .await
            .unwrap();
        for entry in page {
            assert_eq!(entry.cursor, cursor + 1, "gap or reordering in the inbox");
            cursor = entry.cursor;
            seen.push(entry.message.id);
        }
        tokio::task::yield_now().await;
    }

    let mut written = HashSet::new();
    for task in tasks {
        written.extend(task.await.unwrap());
    }
    assert_eq!(written.len(), expected);
    let seen_set: HashSet<u64> = seen.iter().copied().collect();
    assert_eq!(seen_set.len(), seen.len(), "no entry twice");
    assert_eq!(seen_set, written, "no message lost");
    let position = reader
        .inbox_position(bob.id, "reader", 10_000)
        .await
        .unwrap();
    assert_eq!(position.latest, expected as u64);

    // Every other user's sequence is gap-free too.
    for u in senders.iter().chain([&shared]) {
        let entries = reader
            .inbox_after(
                app.id,
                u.id,
                &InboxQuery {
                    after: 0,
                    sent_after: 0,
                    resource: "reader",
                    min_timestamp_ms: 0,
                    limit: 10_000,
                },
            )
            .await
            .unwrap();
        let cursors: Vec<u64> = entries.iter().map(|e| e.cursor).collect();
        assert_eq!(cursors, (1..=cursors.len() as u64).collect::<Vec<_>>());
    }
}
