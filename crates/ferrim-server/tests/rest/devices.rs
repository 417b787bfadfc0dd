//! Status, resources, forced logout and offline-message endpoints.

use serde_json::{json, Value};

use crate::helpers::spawn_app;

#[tokio::test]
async fn disconnect_all_succeeds_and_one_resource_reports_whether_it_was_online() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    app.create_user(&admin, "alice", "p").await;

    let resp = app
        .get(&app.path("/users/alice/disconnect"), Some(&admin))
        .await;
    let body = resp.assert_ok();
    assert_eq!(body["action"], "get");
    // Offline on every device afterwards, though nothing was online.
    assert_eq!(body["data"], json!({"result": true}));
    assert_eq!(body["entities"], json!([]));
    assert_eq!(body["count"], 0);

    let resp = app
        .delete(&app.path("/users/alice/disconnect/web_123"), Some(&admin))
        .await;
    let body = resp.assert_ok();
    assert_eq!(body["action"], "delete");
    assert_eq!(body["data"], json!({"result": false}));
    assert_eq!(body["applicationName"], app.app.key.app());

    app.get(&app.path("/users/ghost/disconnect"), Some(&admin))
        .await
        .assert_error(
            404,
            "service_resource_not_found",
            "Service resource not found",
        );
    let resp = app
        .delete(&app.path("/users/ghost/disconnect/web_1"), Some(&admin))
        .await;
    resp.assert_error(
        404,
        "service_resource_not_found",
        "Service resource not found",
    );
    assert_eq!(resp.body["exception"], "UserNotFoundException");
}

#[tokio::test]
async fn resources_accept_the_app_token_or_the_users_own_token() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    app.create_user(&admin, "alice", "p").await;
    app.create_user(&admin, "bob", "p").await;
    let path = app.path("/users/alice/resources");

    let resp = app.get(&path, Some(&admin)).await;
    let body = resp.assert_ok();
    assert_eq!(body["data"], json!([]));
    assert_eq!(body["path"], "/users/alice/resources");
    assert_eq!(body["action"], "get");

    let alice = app.user_token(&admin, "alice").await;
    assert_eq!(
        app.get(&path, Some(&alice)).await.assert_ok()["data"],
        json!([])
    );

    let bob = app.user_token(&admin, "bob").await;
    app.get(&path, Some(&bob)).await.assert_error(
        401,
        "auth_bad_access_token",
        "Unable to authenticate due to corrupt access token",
    );
    app.get(&path, None).await.assert_error(
        401,
        "unauthorized",
        "Unable to authenticate due to expired access token",
    );
    app.get(&app.path("/users/ghost/resources"), Some(&admin))
        .await
        .assert_error(
            404,
            "service_resource_not_found",
            "Service resource not found",
        );
}

#[tokio::test]
async fn status_reports_offline_users() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    app.create_user(&admin, "alice", "p").await;
    let resp = app
        .get(&app.path("/users/Alice/status"), Some(&admin))
        .await;
    let body = resp.assert_ok();
    assert_eq!(body["data"], json!({"alice": "offline"}));
    assert_eq!(body["action"], "get");
    app.get(&app.path("/users/ghost/status"), Some(&admin))
        .await
        .assert_error(
            404,
            "service_resource_not_found",
            "Service resource not found",
        );
    // `batch` is a legal user ID, though `users/batch/status` is also the batch route.
    app.get(&app.path("/users/batch/status"), Some(&admin))
        .await
        .assert_error(
            404,
            "service_resource_not_found",
            "Service resource not found",
        );
    app.create_user(&admin, "batch", "p").await;
    let resp = app
        .get(&app.path("/users/batch/status"), Some(&admin))
        .await;
    assert_eq!(resp.assert_ok()["data"], json!({"batch": "offline"}));
}

#[tokio::test]
async fn batch_status_answers_in_request_order_and_caps_at_100() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    app.create_user(&admin, "alice", "p").await;
    let path = app.path("/users/batch/status");
    let resp = app
        .post(
            &path,
            Some(&admin),
            json!({"usernames": ["alice", "ghost", "b@d"]}),
        )
        .await;
    let body = resp.assert_ok();
    assert_eq!(body["action"], "get batch user status");
    assert_eq!(
        body["data"],
        json!([{"alice": "offline"}, {"ghost": "offline"}, {"b@d": "offline"}])
    );

    let many: Vec<Value> = (0..101).map(|i| json!(format!("u{i}"))).collect();
    app.post(&path, Some(&admin), json!({ "usernames": many }))
        .await
        .assert_error(
            400,
            "illegal_argument",
            "request body exceeds maximum limit, maximum limit is 100",
        );
    for bad in [
        json!({}),
        json!({"usernames": "alice"}),
        json!({"usernames": [1]}),
    ] {
        app.post(&path, Some(&admin), bad).await.assert_error(
            400,
            "illegal_argument",
            "usernames must be an array of strings",
        );
    }
}

#[tokio::test]
async fn offline_message_endpoints_without_messages_and_for_unknown_users() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    app.create_user(&admin, "alice", "p").await;
    let resp = app
        .get(&app.path("/users/alice/offline_msg_count"), Some(&admin))
        .await;
    assert_eq!(resp.assert_ok()["data"], json!({"alice": 0}));
    let resp = app
        .get(
            &app.path("/users/alice/offline_msg_status/123"),
            Some(&admin),
        )
        .await;
    assert_eq!(resp.assert_ok()["data"], json!({"123": "delivered"}));
    app.get(&app.path("/users/ghost/offline_msg_count"), Some(&admin))
        .await
        .assert_error(
            404,
            "service_resource_not_found",
            "Service resource not found",
        );
    app.get(&app.path("/users/ghost/offline_msg_status/1"), Some(&admin))
        .await
        .assert_error(
            404,
            "service_resource_not_found",
            "Service resource not found",
        );
}
