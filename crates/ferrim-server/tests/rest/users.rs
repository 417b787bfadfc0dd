//! User management: get, list, delete, batch delete, password, ban, nickname.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

fn names(body: &Value) -> Vec<String> {
    body["entities"]
        .as_array()
        .expect("entities")
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn get_user_returns_one_entity_and_404s_for_missing_users() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    app.create_user(&admin, "alice", "p").await;
    let resp = app.get(&app.path("/users/ALICE"), Some(&admin)).await;
    let body = resp.assert_ok();
    assert_eq!(body["action"], "get");
    assert_eq!(body["count"], 1);
    assert_eq!(body["path"], "/users");
    assert_eq!(names(body), ["alice"]);
    let resp = app.get(&app.path("/users/nobody"), Some(&admin)).await;
    resp.assert_error(
        404,
        "service_resource_not_found",
        "Service resource not found",
    );
    assert_eq!(
        resp.body["exception"],
        "org.apache.usergrid.services.exceptions.ServiceResourceNotFoundException"
    );
    app.get(&app.path("/users/b@d"), Some(&admin))
        .await
        .assert_error(
            404,
            "service_resource_not_found",
            "Service resource not found",
        );
}

async fn list(app: &TestApp, admin: &str, query: &str) -> Value {
    let resp = app
        .get(&app.path(&format!("/users{query}")), Some(admin))
        .await;
    resp.assert_ok().clone()
}

#[tokio::test]
async fn listing_pages_oldest_first_with_an_opaque_cursor() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    app.create_users(&admin, "u", 25).await;

    let first = list(&app, &admin, "").await;
    assert_eq!(first["count"], 10, "default limit is 10");
    assert_eq!(names(&first)[0], "u000");

    let mut seen = Vec::new();
    let mut query = "?limit=10".to_owned();
    let mut pages = 0;
    loop {
        let page = list(&app, &admin, &query).await;
        pages += 1;
        seen.extend(names(&page));
        match page.get("cursor").and_then(Value::as_str) {
            Some(cursor) => query = format!("?limit=10&cursor={cursor}&_v=123"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..25).map(|i| format!("u{i:03}")).collect();
    assert_eq!(seen, expected);

    let all = list(&app, &admin, "?limit=500").await;
    assert_eq!(all["count"], 25, "limit is capped at 100");
    assert!(all.get("cursor").is_none(), "no cursor on the last page");

    for bad in ["?limit=0", "?limit=abc", "?limit=-3"] {
        app.get(&app.path(&format!("/users{bad}")), Some(&admin))
            .await
            .assert_error(
                400,
                "illegal_argument",
                "limit must be an integer between 1 and 100",
            );
    }
    app.get(&app.path("/users?cursor=!!!"), Some(&admin))
        .await
        .assert_error(400, "illegal_argument", "cursor is not valid");
}

#[tokio::test]
async fn deleting_a_user_returns_it_and_revokes_its_tokens() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    app.create_user(&admin, "alice", "p").await;
    let token = app.user_token(&admin, "alice").await;
    app.token_expires("alice", &token).await.assert_ok();

    let resp = app.delete(&app.path("/users/alice"), Some(&admin)).await;
    let body = resp.assert_ok();
    assert_eq!(body["action"], "delete");
    assert_eq!(names(body), ["alice"]);
    assert_eq!(app.token_expires("alice", &token).await.status, 401);
    app.delete(&app.path("/users/alice"), Some(&admin))
        .await
        .assert_error(
            404,
            "service_resource_not_found",
            "Service resource not found",
        );
    // A new user of the same name does not inherit the old token.
    app.create_user(&admin, "alice", "p").await;
    assert_eq!(app.token_expires("alice", &token).await.status, 401);
}

#[tokio::test]
async fn batch_delete_removes_the_oldest_users_and_returns_a_cursor_while_any_remain() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    app.create_users(&admin, "u", 15).await;

    let resp = app.delete(&app.path("/users?limit=10"), Some(&admin)).await;
    let body = resp.assert_ok().clone();
    let expected: Vec<String> = (0..10).map(|i| format!("u{i:03}")).collect();
    assert_eq!(names(&body), expected);
    let cursor = body["cursor"].as_str().expect("cursor while users remain");

    let resp = app
        .delete(
            &app.path(&format!("/users?limit=10&cursor={cursor}")),
            Some(&admin),
        )
        .await;
    let body = resp.assert_ok();
    assert_eq!(names(body).len(), 5);
    assert!(body.get("cursor").is_none());
    assert_eq!(list(&app, &admin, "").await["count"], 0);
}

#[tokio::test]
async fn changing_the_password_revokes_old_tokens_and_the_old_password() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    app.create_user(&admin, "alice", "old").await;
    let old_token = app.user_token(&admin, "alice").await;

    let resp = app
        .put(
            &app.path("/users/alice/password"),
            Some(&admin),
            json!({"newpassword": "new"}),
        )
        .await;
    let body = resp.assert_ok();
    assert_eq!(body["action"], "set user password");
    assert!(body["timestamp"].is_u64() && body["duration"].is_u64());

    assert_eq!(app.token_expires("alice", &old_token).await.status, 401);
    app.password_grant("alice", "old")
        .await
        .assert_error(400, "invalid_grant", "invalid password");
    app.password_grant("alice", "new").await.assert_ok();
    let fresh = app.user_token(&admin, "alice").await;
    app.token_expires("alice", &fresh).await.assert_ok();

    // POST is accepted too.
    app.post(
        &app.path("/users/alice/password"),
        Some(&admin),
        json!({"newpassword": "newer"}),
    )
    .await
    .assert_ok();
    app.password_grant("alice", "newer").await.assert_ok();

    for body in [
        json!({}),
        json!({"newpassword": ""}),
        json!({"password": "x"}),
    ] {
        app.put(&app.path("/users/alice/password"), Some(&admin), body)
            .await
            .assert_error(400, "illegal_argument", "newpassword is required");
    }
    app.put(
        &app.path("/users/alice/password"),
        Some(&admin),
        json!({"newpassword": "x".repeat(65)}),
    )
    .await
    .assert_error(
        400,
        "illegal_argument",
        "PASSWORD_TOO_LONG: at most 64 characters",
    );
    app.put(
        &app.path("/users/ghost/password"),
        Some(&admin),
        json!({"newpassword": "x"}),
    )
    .await
    .assert_error(404, "entity_not_found", "User null not found");
}

#[tokio::test]
async fn deactivation_bans_and_activation_lifts_the_ban() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    app.create_user(&admin, "alice", "p").await;
    let token = app.user_token(&admin, "alice").await;

    let resp = app
        .post(
            &app.path("/users/alice/deactivate"),
            Some(&admin),
            json!({}),
        )
        .await;
    let body = resp.assert_ok();
    assert_eq!(body["action"], "Deactivate user");
    assert_eq!(body["entities"][0]["activated"], false);
    assert_eq!(app.token_expires("alice", &token).await.status, 401);
    app.password_grant("alice", "p")
        .await
        .assert_error(400, "invalid_grant", "user not activated");

    let resp = app
        .post(&app.path("/users/alice/activate"), Some(&admin), json!({}))
        .await;
    assert_eq!(resp.assert_ok()["action"], "activate user");
    // The old token stays revoked; new ones work.
    assert_eq!(app.token_expires("alice", &token).await.status, 401);
    let fresh = app.user_token(&admin, "alice").await;
    app.token_expires("alice", &fresh).await.assert_ok();

    for action in ["deactivate", "activate"] {
        app.post(
            &app.path(&format!("/users/ghost/{action}")),
            Some(&admin),
            json!({}),
        )
        .await
        .assert_error(
            404,
            "service_resource_not_found",
            "Service resource not found",
        );
    }
}

#[tokio::test]
async fn put_user_sets_and_clears_the_nickname() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    app.create_user(&admin, "alice", "p").await;
    let path = app.path("/users/alice");
    let resp = app
        .put(&path, Some(&admin), json!({"nickname": "Alice A."}))
        .await;
    let body = resp.assert_ok();
    assert_eq!(body["action"], "put");
    assert_eq!(body["entities"][0]["nickname"], "Alice A.");
    let got = app.get(&path, Some(&admin)).await;
    assert_eq!(got.assert_ok()["entities"][0]["nickname"], "Alice A.");

    let resp = app
        .put(&path, Some(&admin), json!({"nickname": null}))
        .await;
    assert!(resp.assert_ok()["entities"][0].get("nickname").is_none());

    app.put(&path, Some(&admin), json!({"something": "else"}))
        .await
        .assert_error(400, "illegal_argument", "nickname is required");
    app.put(&path, Some(&admin), json!({"nickname": "n".repeat(101)}))
        .await
        .assert_error(400, "illegal_argument", "NICKNAME_TOO_LONG");
    app.put(
        &app.path("/users/ghost"),
        Some(&admin),
        json!({"nickname": "x"}),
    )
    .await
    .assert_error(
        404,
        "service_resource_not_found",
        "Service resource not found",
    );
}

#[tokio::test]
async fn put_user_sets_push_preferences_and_keeps_what_is_not_given() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    app.create_user(&admin, "alice", "p").await;
    let path = app.path("/users/alice");
    // Not reported until set.
    let fresh = app.get(&path, Some(&admin)).await.assert_ok().clone();
    assert!(fresh["entities"][0]
        .get("notification_display_style")
        .is_none());

    app.put(&path, Some(&admin), json!({"nickname": "Al"}))
        .await
        .assert_ok();
    let style = app
        .put(
            &path,
            Some(&admin),
            json!({"notification_display_style": 1}),
        )
        .await
        .assert_ok()
        .clone();
    assert_eq!(style["entities"][0]["notification_display_style"], 1);
    assert_eq!(
        style["entities"][0]["nickname"], "Al",
        "the nickname is kept"
    );
    app.put(
        &path,
        Some(&admin),
        json!({
            "notification_no_disturbing": true,
            "notification_no_disturbing_start": "22",
            "notification_no_disturbing_end": 7,
        }),
    )
    .await
    .assert_ok();
    let user = app.get(&path, Some(&admin)).await.assert_ok()["entities"][0].clone();
    assert_eq!(user["notification_display_style"], 1);
    assert_eq!(user["notification_no_disturbing"], true);
    assert_eq!(user["notification_no_disturbing_start"], "22");
    assert_eq!(user["notification_no_disturbing_end"], "7");
    assert_eq!(user["nickname"], "Al");

    for bad in [
        json!({"notification_display_style": 2}),
        json!({"notification_no_disturbing": "yes"}),
        json!({"notification_no_disturbing_start": 24}),
    ] {
        let resp = app.put(&path, Some(&admin), bad.clone()).await;
        assert_eq!(resp.status, 400, "{bad}: {:?}", resp.body);
        assert_eq!(resp.body["error"], "illegal_argument");
    }
}
