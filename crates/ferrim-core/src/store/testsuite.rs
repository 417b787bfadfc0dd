//! Conformance cases every [`Store`] backend must pass, written once.
//!
//! A backend's test file invokes [`store_conformance_tests!`](crate::store_conformance_tests)
//! with an async expression that yields a fresh, empty store; one `#[tokio::test]` is
//! generated per case.

use std::sync::Arc;

use uuid::Uuid;

use crate::app::{App, AppKey, AppSettings, KickPolicy, RegistrationMode};
use crate::messaging::{
    HistoryQuery, IdGenerator, InboxEntry, InboxQuery, LocalBus, MessageKind, Messaging,
    NewMessage, Party,
};
use crate::sessions::SessionRegistry;
use crate::store::{Store, StoreError, UserUpdate};
use crate::user::{PushSettings, User, Username};

/// Generates one test per conformance case. `$make` is an async expression returning
/// `Arc<dyn Store>` (a fresh, empty store each time).
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@cases $make;
            apps_round_trip,
            duplicate_app_key_conflicts,
            app_settings_update,
            users_insert_and_find,
            batch_insert_reports_duplicates_and_inserts_the_rest,
            usernames_are_unique_per_app_only,
            list_users_pages_in_creation_order,
            password_change_bumps_generation,
            deactivation_revokes_and_activation_keeps_revocation,
            delete_user_removes_only_that_user,
            delete_oldest_users_in_creation_order,
            missing_users_are_none,
            append_stores_in_order_and_dedupes_resends,
            inbox_holds_received_and_own_sent_messages,
            a_message_for_one_device_reaches_only_that_device,
            inbox_respects_cursor_limit_and_retention,
            cursors_only_move_forward,
            inbox_position_reports_backlog_floor,
            history_and_conversations_list_chat_only,
            new_message_ids_follow_the_newest_stored_one,
            deleted_messages_leave_and_edited_ones_change,
            a_deleted_conversation_leaves_one_users_list_until_a_new_message,
            a_deleted_history_keeps_the_conversation_listed,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let store: std::sync::Arc<dyn $crate::store::Store> = $make.await;
                $crate::store::testsuite::$case(store).await;
            }
        )*
    };
}

fn app(key: &str) -> App {
    App::new(AppKey::parse(key).unwrap(), None, None, 1_000)
}

async fn stored_app(store: &Arc<dyn Store>, key: &str) -> App {
    let app = app(key);
    store.insert_app(&app).await.unwrap();
    app
}

fn user(app: &App, name: &str, created: u64) -> User {
    User::new(
        app.id,
        Username::parse(name).unwrap(),
        Some(format!("hash-{name}")),
        None,
        created,
    )
}

pub async fn apps_round_trip(store: Arc<dyn Store>) {
    let a = stored_app(&store, "org#one").await;
    let by_key = store.app_by_key(&a.key).await.unwrap().unwrap();
    assert_eq!(by_key.id, a.id);
    assert_eq!(by_key.client_id, a.client_id);
    assert_eq!(by_key.client_secret, a.client_secret);
    assert_eq!(by_key.token_key, a.token_key);
    assert_eq!(by_key.settings, a.settings);
    assert_eq!(by_key.created_ms, a.created_ms);
    let by_id = store.app_by_id(a.id).await.unwrap().unwrap();
    assert_eq!(by_id.key, a.key);
    assert!(store
        .app_by_key(&AppKey::parse("org#none").unwrap())
        .await
        .unwrap()
        .is_none());
    stored_app(&store, "org#two").await;
    assert_eq!(store.list_apps().await.unwrap().len(), 2);
}

pub async fn duplicate_app_key_conflicts(store: Arc<dyn Store>) {
    stored_app(&store, "org#dup").await;
    let again = app("org#dup");
    assert!(matches!(
        store.insert_app(&again).await,
        Err(StoreError::Conflict)
    ));
}

pub async fn app_settings_update(store: Arc<dyn Store>) {
    let a = stored_app(&store, "org#set").await;
    let settings = AppSettings {
        registration_mode: RegistrationMode::Open,
        token_ttl_secs: 30,
        device_cap_per_platform: 2,
        device_caps: [("web".to_owned(), 1)].into_iter().collect(),
        kick_policy: KickPolicy::RefuseNewcomer,
        offline_keep_count: 10,
        offline_keep_days: 1,
    };
    assert!(store.update_app_settings(a.id, &settings).await.unwrap());
    let got = store.app_by_id(a.id).await.unwrap().unwrap();
    assert_eq!(got.settings, settings);
    assert!(!store
        .update_app_settings(Uuid::new_v4(), &settings)
        .await
        .unwrap());
}

pub async fn users_insert_and_find(store: Arc<dyn Store>) {
    let a = stored_app(&store, "org#users").await;
    let mut alice = user(&a, "alice", 5);
    alice.nickname = Some("Alice".into());
    assert_eq!(
        store.insert_users(&[alice.clone()]).await.unwrap(),
        vec![true]
    );
    let by_name = store
        .user_by_name(a.id, &alice.username)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_name, alice);
    let by_id = store.user_by_id(a.id, alice.id).await.unwrap().unwrap();
    assert_eq!(by_id, alice);
    assert_eq!(store.count_users(a.id).await.unwrap(), 1);
}

pub async fn batch_insert_reports_duplicates_and_inserts_the_rest(store: Arc<dyn Store>) {
    let a = stored_app(&store, "org#batch").await;
    store.insert_users(&[user(&a, "u2", 1)]).await.unwrap();
    let batch = [user(&a, "u1", 2), user(&a, "u2", 2), user(&a, "u3", 2)];
    assert_eq!(
        store.insert_users(&batch).await.unwrap(),
        vec![true, false, true]
    );
    assert_eq!(store.count_users(a.id).await.unwrap(), 3);
    // The pre-existing u2 is untouched.
    let u2 = store
        .user_by_name(a.id, &Username::parse("u2").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u2.created_ms, 1);
}

pub async fn usernames_are_unique_per_app_only(store: Arc<dyn Store>) {
    let a = stored_app(&store, "org#a").await;
    let b = stored_app(&store, "org#b").await;
    assert_eq!(
        store.insert_users(&[user(&a, "same", 1)]).await.unwrap(),
        vec![true]
    );
    assert_eq!(
        store.insert_users(&[user(&b, "same", 1)]).await.unwrap(),
        vec![true]
    );
    let in_a = store
        .user_by_name(a.id, &Username::parse("same").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(store.user_by_id(b.id, in_a.id).await.unwrap().is_none());
}

pub async fn list_users_pages_in_creation_order(store: Arc<dyn Store>) {
    let a = stored_app(&store, "org#list").await;
    let other = stored_app(&store, "org#other").await;
    store.insert_users(&[user(&other, "zz", 0)]).await.unwrap();
    for i in 0..5 {
        store
            .insert_users(&[user(&a, &format!("user{i}"), 10 + i)])
            .await
            .unwrap();
    }
    let first = store.list_users(a.id, None, 2).await.unwrap();
    assert_eq!(
        first
            .users
            .iter()
            .map(|u| u.username.as_str())
            .collect::<Vec<_>>(),
        ["user0", "user1"]
    );
    let second = store.list_users(a.id, first.next, 2).await.unwrap();
    assert_eq!(
        second
            .users
            .iter()
            .map(|u| u.username.as_str())
            .collect::<Vec<_>>(),
        ["user2", "user3"]
    );
    let last = store.list_users(a.id, second.next, 2).await.unwrap();
    assert_eq!(last.users.len(), 1);
    assert_eq!(last.users[0].username.as_str(), "user4");
    assert!(last.next.is_none(), "no cursor after the last page");
    let exact = store.list_users(a.id, None, 5).await.unwrap();
    assert_eq!(exact.users.len(), 5);
    assert!(exact.next.is_none());
}

pub async fn password_change_bumps_generation(store: Arc<dyn Store>) {
    let a = stored_app(&store, "org#pwd").await;
    let u = user(&a, "pat", 1);
    store.insert_users(std::slice::from_ref(&u)).await.unwrap();
    let updated = store
        .update_user(
            a.id,
            &u.username,
            UserUpdate::Password {
                hash: "new-hash".into(),
            },
            99,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.password_hash.as_deref(), Some("new-hash"));
    assert_eq!(updated.token_generation, u.token_generation + 1);
    assert_eq!(updated.tokens_revoked_ms, 99);
    assert_eq!(updated.modified_ms, 99);
    let reread = store.user_by_id(a.id, u.id).await.unwrap().unwrap();
    assert_eq!(reread, updated);
    let nobody = store
        .update_user(
            a.id,
            &Username::parse("nobody").unwrap(),
            UserUpdate::Activated(false),
            1,
        )
        .await
        .unwrap();
    assert!(nobody.is_none());
}

pub async fn deactivation_revokes_and_activation_keeps_revocation(store: Arc<dyn Store>) {
    let a = stored_app(&store, "org#ban").await;
    let u = user(&a, "ban", 1);
    store.insert_users(std::slice::from_ref(&u)).await.unwrap();
    let banned = store
        .update_user(a.id, &u.username, UserUpdate::Activated(false), 50)
        .await
        .unwrap()
        .unwrap();
    assert!(!banned.activated);
    assert_eq!(banned.token_generation, 1);
    let back = store
        .update_user(a.id, &u.username, UserUpdate::Activated(true), 60)
        .await
        .unwrap()
        .unwrap();
    assert!(back.activated);
    assert_eq!(
        back.token_generation, 1,
        "activation does not revive old tokens"
    );
    let nick = store
        .update_user(
            a.id,
            &u.username,
            UserUpdate::Profile {
                nickname: Some("Nick".into()),
                push: PushSettings {
                    notification_display_style: Some(1),
                    notification_no_disturbing_start: Some("22".into()),
                    ..PushSettings::default()
                },
            },
            70,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(nick.nickname.as_deref(), Some("Nick"));
    assert_eq!(nick.push.notification_display_style, Some(1));
    assert_eq!(
        nick.push.notification_no_disturbing_start.as_deref(),
        Some("22")
    );
    assert_eq!(nick.push.notification_no_disturbing, None);
    let again = store
        .user_by_name(a.id, &u.username)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.push, nick.push);
    assert_eq!(nick.token_generation, 1);
}

pub async fn delete_user_removes_only_that_user(store: Arc<dyn Store>) {
    let a = stored_app(&store, "org#del").await;
    let (x, y, z) = (user(&a, "x", 1), user(&a, "y", 2), user(&a, "z", 3));
    store
        .insert_users(&[x.clone(), y.clone(), z.clone()])
        .await
        .unwrap();
    store
        .append_messages(&[
            msg(1, &a, &x, &y, "rx", 1),
            msg(2, &a, &y, &x, "ry", 1),
            msg(3, &a, &y, &z, "ry", 2),
        ])
        .await
        .unwrap();
    let deleted = store.delete_user(a.id, &x.username).await.unwrap().unwrap();
    assert_eq!(deleted.id, x.id);
    // The user's messages, sent and received, go with them (spec §5.3); others' stay.
    for gone in [1, 2] {
        assert!(store.message_by_id(a.id, gone).await.unwrap().is_none());
    }
    assert!(store.message_by_id(a.id, 3).await.unwrap().is_some());
    let ys_inbox = store
        .inbox_after(a.id, y.id, &query(0, "ry2"))
        .await
        .unwrap();
    assert_eq!(
        ys_inbox.iter().map(|e| e.message.id).collect::<Vec<_>>(),
        [3]
    );
    // Nothing of theirs still counts as waiting for the other user.
    let position = store.inbox_position(y.id, "ry2", 100).await.unwrap();
    assert_eq!(position.latest, ys_inbox[0].cursor);
    assert!(store
        .user_by_name(a.id, &x.username)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .user_by_name(a.id, &y.username)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .delete_user(a.id, &x.username)
        .await
        .unwrap()
        .is_none());
    // The name is free again.
    assert_eq!(
        store.insert_users(&[user(&a, "x", 3)]).await.unwrap(),
        vec![true]
    );
}

pub async fn delete_oldest_users_in_creation_order(store: Arc<dyn Store>) {
    let a = stored_app(&store, "org#old").await;
    for i in 0..4 {
        store
            .insert_users(&[user(&a, &format!("o{i}"), i)])
            .await
            .unwrap();
    }
    let gone = store.delete_oldest_users(a.id, 3).await.unwrap();
    assert_eq!(
        gone.iter().map(|u| u.username.as_str()).collect::<Vec<_>>(),
        ["o0", "o1", "o2"]
    );
    assert_eq!(store.count_users(a.id).await.unwrap(), 1);
}

pub async fn missing_users_are_none(store: Arc<dyn Store>) {
    let a = stored_app(&store, "org#none").await;
    assert!(store
        .user_by_name(a.id, &Username::parse("ghost").unwrap())
        .await
        .unwrap()
        .is_none());
    assert!(store
        .user_by_id(a.id, Uuid::new_v4())
        .await
        .unwrap()
        .is_none());
    assert!(store
        .delete_user(a.id, &Username::parse("ghost").unwrap())
        .await
        .unwrap()
        .is_none());
}

fn party(u: &User) -> Party {
    Party {
        id: u.id,
        name: u.username.clone(),
    }
}

fn msg(id: u64, app: &App, from: &User, to: &User, res: &str, client_id: u64) -> NewMessage {
    NewMessage {
        id,
        app_id: app.id,
        from: party(from),
        to: party(to),
        from_resource: res.into(),
        to_resource: None,
        client_id: Some(client_id),
        timestamp_ms: id,
        kind: MessageKind::Chat,
        payload: format!("payload-{id}").into_bytes(),
    }
}

async fn two_users(store: &Arc<dyn Store>, key: &str) -> (App, User, User) {
    let a = stored_app(store, key).await;
    let (alice, bob) = (user(&a, "alice", 1), user(&a, "bob", 2));
    store
        .insert_users(&[alice.clone(), bob.clone()])
        .await
        .unwrap();
    (a, alice, bob)
}

fn query(after: u64, resource: &str) -> InboxQuery<'_> {
    InboxQuery {
        after,
        sent_after: 0,
        resource,
        min_timestamp_ms: 0,
        limit: 100,
    }
}

pub async fn append_stores_in_order_and_dedupes_resends(store: Arc<dyn Store>) {
    let (a, alice, bob) = two_users(&store, "org#msg").await;
    let out = store
        .append_messages(&[
            msg(10, &a, &alice, &bob, "r1", 1),
            msg(11, &a, &alice, &bob, "r1", 2),
        ])
        .await
        .unwrap();
    assert_eq!(
        out.iter().map(|o| (o.id, o.duplicate)).collect::<Vec<_>>(),
        [(10, false), (11, false)]
    );
    // Same client id from the same device: stored once, original id returned.
    let again = store
        .append_messages(&[
            msg(20, &a, &alice, &bob, "r1", 1),
            msg(21, &a, &alice, &bob, "r2", 1),
        ])
        .await
        .unwrap();
    assert_eq!(
        (again[0].id, again[0].duplicate, again[0].timestamp_ms),
        (10, true, 10)
    );
    assert_eq!(
        (again[1].id, again[1].duplicate),
        (21, false),
        "another device may reuse an id"
    );
    // A duplicate inside one batch is stored once too.
    let within = store
        .append_messages(&[
            msg(30, &a, &alice, &bob, "r3", 9),
            msg(31, &a, &alice, &bob, "r3", 9),
        ])
        .await
        .unwrap();
    assert_eq!((within[1].id, within[1].duplicate), (30, true));
    let stored = store.message_by_id(a.id, 10).await.unwrap().unwrap();
    assert_eq!(stored, msg(10, &a, &alice, &bob, "r1", 1));
    assert!(store.message_by_id(a.id, 999).await.unwrap().is_none());
}

pub async fn inbox_holds_received_and_own_sent_messages(store: Arc<dyn Store>) {
    let (a, alice, bob) = two_users(&store, "org#inbox").await;
    store
        .append_messages(&[
            msg(1, &a, &alice, &bob, "a1", 1),
            msg(2, &a, &bob, &alice, "b1", 1),
            msg(3, &a, &alice, &bob, "a2", 2),
        ])
        .await
        .unwrap();
    let ids = |v: Vec<InboxEntry>| v.iter().map(|e| e.message.id).collect::<Vec<_>>();
    // Bob gets what Alice sent, and his other device gets what he sent from b1.
    assert_eq!(
        ids(store
            .inbox_after(a.id, bob.id, &query(0, "b2"))
            .await
            .unwrap()),
        [1, 2, 3]
    );
    // The sending device does not get its own message back.
    assert_eq!(
        ids(store
            .inbox_after(a.id, bob.id, &query(0, "b1"))
            .await
            .unwrap()),
        [1, 3]
    );
    assert_eq!(
        ids(store
            .inbox_after(a.id, alice.id, &query(0, "a1"))
            .await
            .unwrap()),
        [2, 3]
    );
    // Sent messages only after `sent_after`.
    let mut q = query(0, "a9");
    q.sent_after = 2;
    assert_eq!(
        ids(store.inbox_after(a.id, alice.id, &q).await.unwrap()),
        [2, 3]
    );
    q.sent_after = 3;
    assert_eq!(
        ids(store.inbox_after(a.id, alice.id, &q).await.unwrap()),
        [2]
    );
    // A message to oneself reaches the user's other devices, not the one it came from.
    store
        .append_messages(&[msg(4, &a, &bob, &bob, "b1", 7)])
        .await
        .unwrap();
    assert_eq!(
        ids(store
            .inbox_after(a.id, bob.id, &query(3, "b1"))
            .await
            .unwrap()),
        [] as [u64; 0]
    );
    assert_eq!(
        ids(store
            .inbox_after(a.id, bob.id, &query(3, "b2"))
            .await
            .unwrap()),
        [4]
    );
}

pub async fn a_message_for_one_device_reaches_only_that_device(store: Arc<dyn Store>) {
    let (a, alice, bob) = two_users(&store, "org#target").await;
    let mut targeted = msg(1, &a, &alice, &bob, "a1", 1);
    targeted.to_resource = Some("b2".into());
    store
        .append_messages(&[targeted.clone(), msg(2, &a, &alice, &bob, "a1", 2)])
        .await
        .unwrap();
    let ids = |v: Vec<InboxEntry>| v.iter().map(|e| e.message.id).collect::<Vec<_>>();
    let for_b2 = store
        .inbox_after(a.id, bob.id, &query(0, "b2"))
        .await
        .unwrap();
    assert_eq!(for_b2[0].message, targeted, "stored with its target device");
    assert_eq!(ids(for_b2), [1, 2]);
    assert_eq!(
        ids(store
            .inbox_after(a.id, bob.id, &query(0, "b1"))
            .await
            .unwrap()),
        [2]
    );
    // The sender's other devices see what was sent, whichever device it was for.
    assert_eq!(
        ids(store
            .inbox_after(a.id, alice.id, &query(0, "a2"))
            .await
            .unwrap()),
        [1, 2]
    );
}

pub async fn inbox_respects_cursor_limit_and_retention(store: Arc<dyn Store>) {
    let (a, alice, bob) = two_users(&store, "org#page").await;
    let batch: Vec<_> = (1..=10).map(|i| msg(i, &a, &alice, &bob, "a", i)).collect();
    store.append_messages(&batch).await.unwrap();
    let all = store
        .inbox_after(a.id, bob.id, &query(0, "b"))
        .await
        .unwrap();
    assert_eq!(all.len(), 10);
    assert!(
        all.windows(2).all(|w| w[0].cursor < w[1].cursor),
        "cursors increase through the inbox"
    );
    let mut q = query(all[3].cursor, "b");
    q.limit = 3;
    let page: Vec<u64> = store
        .inbox_after(a.id, bob.id, &q)
        .await
        .unwrap()
        .iter()
        .map(|e| e.message.id)
        .collect();
    assert_eq!(page, [5, 6, 7]);
    let mut q = query(0, "b");
    q.min_timestamp_ms = 9;
    let recent: Vec<u64> = store
        .inbox_after(a.id, bob.id, &q)
        .await
        .unwrap()
        .iter()
        .map(|e| e.message.id)
        .collect();
    assert_eq!(recent, [9, 10]);
    // Other apps' users see nothing of it.
    let other = stored_app(&store, "org#elsewhere").await;
    assert!(store
        .inbox_after(other.id, bob.id, &query(0, "b"))
        .await
        .unwrap()
        .is_empty());
}

pub async fn cursors_only_move_forward(store: Arc<dyn Store>) {
    let (a, alice, bob) = two_users(&store, "org#cur").await;
    store
        .append_messages(&[msg(5, &a, &alice, &bob, "a", 1)])
        .await
        .unwrap();
    let entry = store
        .inbox_after(a.id, bob.id, &query(0, "b1"))
        .await
        .unwrap()[0]
        .cursor;
    let fresh = store.inbox_position(bob.id, "b1", 500).await.unwrap();
    assert_eq!(fresh.device_cursor, None);
    assert_eq!(fresh.offline_cursor, 0);
    assert_eq!(fresh.latest, entry);
    store
        .save_inbox_cursors(&[((bob.id, "b1".into()), entry)])
        .await
        .unwrap();
    store
        .save_inbox_cursors(&[((bob.id, "b1".into()), 0)])
        .await
        .unwrap();
    let pos = store.inbox_position(bob.id, "b1", 500).await.unwrap();
    assert_eq!(pos.device_cursor, Some(entry));
    assert_eq!(pos.offline_cursor, entry);
    let other_device = store.inbox_position(bob.id, "b2", 500).await.unwrap();
    assert_eq!(other_device.device_cursor, None);
    assert_eq!(other_device.offline_cursor, entry);
    assert_eq!(
        store
            .inbox_position(alice.id, "a", 500)
            .await
            .unwrap()
            .offline_cursor,
        0
    );
    assert!(store
        .inbox_after(a.id, bob.id, &query(entry, "b1"))
        .await
        .unwrap()
        .is_empty());
}

pub async fn inbox_position_reports_backlog_floor(store: Arc<dyn Store>) {
    let (a, alice, bob) = two_users(&store, "org#floor").await;
    let batch: Vec<_> = (1..=10).map(|i| msg(i, &a, &alice, &bob, "a", i)).collect();
    store.append_messages(&batch).await.unwrap();
    let all = store
        .inbox_after(a.id, bob.id, &query(0, "b"))
        .await
        .unwrap();
    // Keeping 3 leaves entries 8, 9, 10: the floor is the 7th entry's cursor.
    assert_eq!(
        store
            .inbox_position(bob.id, "b", 3)
            .await
            .unwrap()
            .backlog_floor,
        all[6].cursor
    );
    assert_eq!(
        store
            .inbox_position(bob.id, "b", 10)
            .await
            .unwrap()
            .backlog_floor,
        0
    );
    assert_eq!(
        store
            .inbox_position(bob.id, "b", 50)
            .await
            .unwrap()
            .backlog_floor,
        0
    );
}

pub async fn history_and_conversations_list_chat_only(store: Arc<dyn Store>) {
    let a = stored_app(&store, "org#hist").await;
    let (alice, bob, carol) = (
        user(&a, "alice", 1),
        user(&a, "bob", 2),
        user(&a, "carol", 3),
    );
    store
        .insert_users(&[alice.clone(), bob.clone(), carol.clone()])
        .await
        .unwrap();
    let mut receipt = msg(3, &a, &bob, &alice, "b", 3);
    receipt.kind = MessageKind::Signal;
    store
        .append_messages(&[
            msg(1, &a, &alice, &bob, "a", 1),
            msg(2, &a, &bob, &alice, "b", 2),
            receipt,
            msg(4, &a, &carol, &alice, "c", 4),
            msg(5, &a, &alice, &bob, "a", 5),
        ])
        .await
        .unwrap();
    let page = |before, descending, limit| HistoryQuery {
        a: alice.id,
        b: bob.id,
        before,
        after: None,
        from_ms: None,
        to_ms: None,
        limit,
        descending,
    };
    let ids = |v: Vec<NewMessage>| v.iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.history(a.id, &page(None, false, 10)).await.unwrap()),
        [1, 2, 5]
    );
    assert_eq!(
        ids(store.history(a.id, &page(None, true, 2)).await.unwrap()),
        [5, 2]
    );
    assert_eq!(
        ids(store.history(a.id, &page(Some(2), true, 10)).await.unwrap()),
        [1]
    );
    let convs = store.conversations(a.id, alice.id, None, 10).await.unwrap();
    assert_eq!(
        convs
            .iter()
            .map(|c| (c.peer.as_str(), c.last.id, c.unread))
            .collect::<Vec<_>>(),
        // From bob 2 (the receipt is no chat message), from carol 4; alice read neither.
        [("bob", 5, 1), ("carol", 4, 1)]
    );
    // bob reads his conversation with alice (a channel ack), then alice writes once more:
    // only what came after his read mark is unread for him; alice's own count is unchanged.
    let mut read_mark = msg(6, &a, &bob, &alice, "", 6);
    read_mark.kind = MessageKind::ConversationRead;
    store
        .append_messages(&[read_mark, msg(7, &a, &alice, &bob, "a", 7)])
        .await
        .unwrap();
    let bobs = store.conversations(a.id, bob.id, None, 10).await.unwrap();
    assert_eq!(
        bobs.iter()
            .map(|c| (c.peer.as_str(), c.last.id, c.unread))
            .collect::<Vec<_>>(),
        [("alice", 7, 1)]
    );
    assert_eq!(
        store.conversations(a.id, alice.id, None, 10).await.unwrap()[0].unread,
        1
    );
    // A read mark is not history.
    assert_eq!(
        ids(store.history(a.id, &page(None, false, 10)).await.unwrap()),
        [1, 2, 5, 7]
    );
    assert_eq!(
        store
            .conversations(a.id, alice.id, None, 1)
            .await
            .unwrap()
            .len(),
        1
    );
    // The next page starts below the last message of the previous one.
    let next = store
        .conversations(a.id, alice.id, Some(7), 1)
        .await
        .unwrap();
    assert_eq!(
        next.iter()
            .map(|c| (c.peer.as_str(), c.last.id))
            .collect::<Vec<_>>(),
        [("carol", 4)]
    );
    assert!(store
        .conversations(a.id, alice.id, Some(4), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.conversations(a.id, carol.id, None, 10).await.unwrap()[0]
            .peer
            .as_str(),
        "alice"
    );
}

/// A clock set back across a restart must not mint IDs below stored ones (on the embedded
/// store they are the inbox cursors): the writer starts after the newest stored ID.
pub async fn new_message_ids_follow_the_newest_stored_one(store: Arc<dyn Store>) {
    assert_eq!(store.latest_message_id().await.unwrap(), None);
    let (a, alice, bob) = two_users(&store, "org#ids").await;
    // Minted by node 9 a day ahead of this machine's clock.
    let now = IdGenerator::new(9).next(crate::clock::now_ms());
    let ahead = now + (86_400_000 << 22);
    store
        .append_messages(&[
            msg(ahead - 5, &a, &alice, &bob, "r", 1),
            msg(ahead, &a, &alice, &bob, "r", 2),
        ])
        .await
        .unwrap();
    assert_eq!(store.latest_message_id().await.unwrap(), Some(ahead));

    let bus = Arc::new(LocalBus::new(Arc::new(SessionRegistry::new()), false));
    let messaging = Messaging::start(store.clone(), bus, 1);
    let sent = messaging
        .send(msg(0, &a, &bob, &alice, "r", 3), None)
        .await
        .unwrap();
    assert!(sent.id > ahead, "{} is not after {ahead}", sent.id);
    let stored = store.message_by_id(a.id, sent.id).await.unwrap().unwrap();
    assert_eq!(stored.from.id, bob.id);
}

pub async fn deleted_messages_leave_and_edited_ones_change(store: Arc<dyn Store>) {
    let (a, alice, bob) = two_users(&store, "org#recall").await;
    store
        .append_messages(&[
            msg(1, &a, &alice, &bob, "a1", 1),
            msg(2, &a, &alice, &bob, "a1", 2),
        ])
        .await
        .unwrap();
    let other = stored_app(&store, "org#recall2").await;
    // Another app cannot delete it; the app it belongs to can, once.
    assert!(!store.delete_message(other.id, 2).await.unwrap());
    assert!(store.delete_message(a.id, 2).await.unwrap());
    assert!(!store.delete_message(a.id, 2).await.unwrap());
    let inbox: Vec<u64> = store
        .inbox_after(a.id, bob.id, &query(0, "b1"))
        .await
        .unwrap()
        .iter()
        .map(|e| e.message.id)
        .collect();
    assert_eq!(inbox, [1]);
    let history = store
        .history(a.id, &newest_first(&alice, &bob))
        .await
        .unwrap();
    assert_eq!(history.iter().map(|m| m.id).collect::<Vec<_>>(), [1]);
    let convs = store.conversations(a.id, bob.id, None, 10).await.unwrap();
    assert_eq!(convs.iter().map(|c| c.last.id).collect::<Vec<_>>(), [1]);
    assert!(store.message_by_id(a.id, 2).await.unwrap().is_none());
    // An edit replaces the payload, in that app only.
    assert!(!store.replace_payload(other.id, 1, b"edited").await.unwrap());
    assert!(store.replace_payload(a.id, 1, b"edited").await.unwrap());
    assert!(!store.replace_payload(a.id, 2, b"gone").await.unwrap());
    let edited = store.message_by_id(a.id, 1).await.unwrap().unwrap();
    assert_eq!(edited.payload, b"edited");
}

/// The first page of two users' history, newest first.
fn newest_first(a: &User, b: &User) -> HistoryQuery {
    HistoryQuery {
        a: a.id,
        b: b.id,
        before: None,
        after: None,
        from_ms: None,
        to_ms: None,
        limit: 10,
        descending: true,
    }
}

pub async fn a_deleted_conversation_leaves_one_users_list_until_a_new_message(
    store: Arc<dyn Store>,
) {
    let (a, alice, bob) = two_users(&store, "org#clear").await;
    store
        .append_messages(&[
            msg(1, &a, &alice, &bob, "a1", 1),
            msg(2, &a, &bob, &alice, "b1", 2),
        ])
        .await
        .unwrap();
    let listed = |user: Uuid| {
        let store = store.clone();
        async move {
            store
                .conversations(a.id, user, None, 10)
                .await
                .unwrap()
                .iter()
                .map(|c| (c.last.id, c.unread))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(store.history_start(alice.id, bob.id).await.unwrap(), 0);
    // Alice deletes the conversation, not its history: gone from her list only.
    store
        .clear_conversation(alice.id, bob.id, 2, false)
        .await
        .unwrap();
    assert_eq!(listed(alice.id).await, []);
    assert_eq!(listed(bob.id).await, [(2, 1)]);
    assert_eq!(store.history_start(alice.id, bob.id).await.unwrap(), 0);
    // Then with its history; a lower mark later changes nothing.
    store
        .clear_conversation(alice.id, bob.id, 2, true)
        .await
        .unwrap();
    store
        .clear_conversation(alice.id, bob.id, 1, true)
        .await
        .unwrap();
    assert_eq!(store.history_start(alice.id, bob.id).await.unwrap(), 2);
    assert_eq!(store.history_start(bob.id, alice.id).await.unwrap(), 0);
    // A new message brings it back, counting only what came after the deletion as unread.
    store
        .append_messages(&[msg(3, &a, &bob, &alice, "b1", 3)])
        .await
        .unwrap();
    assert_eq!(listed(alice.id).await, [(3, 1)]);
}

pub async fn a_deleted_history_keeps_the_conversation_listed(store: Arc<dyn Store>) {
    let (a, alice, bob) = two_users(&store, "org#roam").await;
    store
        .append_messages(&[
            msg(1, &a, &alice, &bob, "a1", 1),
            msg(2, &a, &bob, &alice, "b1", 2),
        ])
        .await
        .unwrap();
    // Alice deletes her history up to message 1; a lower mark later changes nothing.
    store.clear_history(alice.id, bob.id, 1).await.unwrap();
    store.clear_history(alice.id, bob.id, 0).await.unwrap();
    assert_eq!(store.history_start(alice.id, bob.id).await.unwrap(), 1);
    assert_eq!(store.history_start(bob.id, alice.id).await.unwrap(), 0);
    // Both still list the conversation, with its last message.
    for user in [alice.id, bob.id] {
        let listed = store.conversations(a.id, user, None, 10).await.unwrap();
        assert_eq!(listed.iter().map(|c| c.last.id).collect::<Vec<_>>(), [2]);
    }
    // A conversation deletion later moves both marks; a history deletion after it does not
    // bring the conversation back.
    store
        .clear_conversation(alice.id, bob.id, 2, false)
        .await
        .unwrap();
    store.clear_history(alice.id, bob.id, 2).await.unwrap();
    assert_eq!(store.history_start(alice.id, bob.id).await.unwrap(), 2);
    assert!(store
        .conversations(a.id, alice.id, None, 10)
        .await
        .unwrap()
        .is_empty());
}
