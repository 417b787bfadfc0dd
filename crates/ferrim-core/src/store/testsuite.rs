//! Conformance cases every [`Store`] backend must pass, written once.
//!
//! A backend's test file invokes [`store_conformance_tests!`](crate::store_conformance_tests)
//! with an async expression that yields a fresh, empty store; one `#[tokio::test]` is
//! generated per case.

use std::sync::Arc;

use uuid::Uuid;

use crate::app::{App, AppKey, AppSettings, KickPolicy, RegistrationMode};
use crate::store::{Store, StoreError, UserUpdate};
use crate::user::{User, Username};

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
    store.insert_users(&[u.clone()]).await.unwrap();
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
    store.insert_users(&[u.clone()]).await.unwrap();
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
            UserUpdate::Nickname(Some("Nick".into())),
            70,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(nick.nickname.as_deref(), Some("Nick"));
    assert_eq!(nick.token_generation, 1);
}

pub async fn delete_user_removes_only_that_user(store: Arc<dyn Store>) {
    let a = stored_app(&store, "org#del").await;
    let (x, y) = (user(&a, "x", 1), user(&a, "y", 2));
    store.insert_users(&[x.clone(), y.clone()]).await.unwrap();
    let deleted = store.delete_user(a.id, &x.username).await.unwrap().unwrap();
    assert_eq!(deleted.id, x.id);
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
