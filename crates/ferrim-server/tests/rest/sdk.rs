//! `GET /{org}/{app}/sdk/users/{user}/token/expires` (the Web SDK's renewToken).

use ferrim_core::token::DynamicToken;
use serde_json::json;

use crate::helpers::{now_ms, spawn_app};

#[tokio::test]
async fn renew_token_reports_the_expiry_of_a_rest_issued_user_token() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    app.create_user(&admin, "alice", "p").await;
    let before = now_ms();
    let resp = app
        .post(
            &app.path("/token"),
            Some(&admin),
            json!({"grant_type": "inherit", "username": "alice", "ttl": 600}),
        )
        .await;
    let token = resp.assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = app.token_expires("alice", &token).await;
    let expiry = resp.assert_ok()["expire_timestamp"].as_u64().unwrap();
    assert!(
        expiry >= before + 600_000 && expiry <= now_ms() + 600_000,
        "{expiry}"
    );

    // ttl 0 never expires: a far-future value.
    let resp = app
        .post(
            &app.path("/token"),
            Some(&admin),
            json!({"grant_type": "inherit", "username": "alice", "ttl": 0}),
        )
        .await;
    let forever = resp.assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = app.token_expires("Alice", &forever).await;
    assert_eq!(resp.assert_ok()["expire_timestamp"], 4_102_444_800_000u64);
}

#[tokio::test]
async fn renew_token_accepts_dynamic_tokens() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    app.create_user(&admin, "alice", "p").await;
    let now = now_ms() / 1000;
    let token = DynamicToken::generate(
        &app.app.client_id,
        &app.app.client_secret,
        &app.app.key.to_string(),
        "alice",
        now,
        600,
    );
    let resp = app.token_expires("alice", &token).await;
    assert_eq!(resp.assert_ok()["expire_timestamp"], (now + 600) * 1000);

    let wrong = DynamicToken::generate(
        &app.app.client_id,
        "not-the-secret",
        &app.app.key.to_string(),
        "alice",
        now,
        600,
    );
    app.token_expires("alice", &wrong).await.assert_error(
        401,
        "auth_bad_access_token",
        "Unable to authenticate",
    );
    let expired = DynamicToken::generate(
        &app.app.client_id,
        &app.app.client_secret,
        &app.app.key.to_string(),
        "alice",
        now - 1000,
        10,
    );
    app.token_expires("alice", &expired).await.assert_error(
        401,
        "unauthorized",
        "Unable to authenticate due to expired access token",
    );
}

#[tokio::test]
async fn renew_token_refuses_other_users_app_tokens_and_no_token() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    app.create_user(&admin, "alice", "p").await;
    app.create_user(&admin, "bob", "p").await;
    let bob = app.user_token(&admin, "bob").await;
    app.token_expires("alice", &bob).await.assert_error(
        401,
        "auth_bad_access_token",
        "Unable to authenticate due to corrupt access token",
    );
    app.token_expires("alice", &admin).await.assert_error(
        401,
        "auth_bad_access_token",
        "Unable to authenticate due to corrupt access token",
    );
    app.get(&app.path("/sdk/users/alice/token/expires"), None)
        .await
        .assert_error(
            401,
            "unauthorized",
            "Unable to authenticate due to expired access token",
        );
}

/// `removeHistoryMessages`: by time for the user (or the app), refusals otherwise.
#[tokio::test]
async fn roaming_deletion_by_time_is_accepted_and_everything_else_is_refused_clearly() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    app.create_user(&admin, "alice", "p").await;
    app.create_user(&admin, "bob", "p").await;
    let alice = app.user_token(&admin, "alice").await;
    let bob = app.user_token(&admin, "bob").await;
    let by_time = |query: &str| {
        app.path(&format!(
            "/sdk/message/roaming/chat/user/alice/time?{query}"
        ))
    };
    let now = now_ms();
    for token in [&alice, &admin] {
        let ok = app
            .delete(
                &by_time(&format!("userId=bob&delTime={now}&&resource=web_1")),
                Some(token),
            )
            .await;
        assert_eq!(ok.assert_ok()["data"]["result"], "ok");
    }
    // A peer that does not exist and group history (no groups) change nothing.
    app.delete(
        &by_time(&format!("userId=nobody&delTime={now}")),
        Some(&alice),
    )
    .await
    .assert_ok();
    let group = app.path(&format!(
        "/sdk/message/roaming/group/user/alice/time?groupId=1&delTime={now}"
    ));
    app.delete(&group, Some(&alice)).await.assert_ok();

    app.delete(&by_time("userId=bob"), Some(&alice))
        .await
        .assert_error(
            400,
            "illegal_argument",
            "delTime must be a time in milliseconds",
        );
    app.delete(&by_time("userId=bob&delTime=soon"), Some(&alice))
        .await
        .assert_error(
            400,
            "illegal_argument",
            "delTime must be a time in milliseconds",
        );
    app.delete(&by_time(&format!("delTime={now}")), Some(&alice))
        .await
        .assert_error(400, "illegal_argument", "userId is required");
    let room = app.path(&format!(
        "/sdk/message/roaming/room/user/alice/time?userId=bob&delTime={now}"
    ));
    app.delete(&room, Some(&alice)).await.assert_error(
        400,
        "illegal_argument",
        "unknown chat type \"room\": chat or group",
    );
    let by_ids = app.path("/sdk/message/roaming/chat/user/alice?userId=bob&msgIdList=1,2");
    app.delete(&by_ids, Some(&alice)).await.assert_error(
        400,
        "illegal_argument",
        "deleting single messages from the history is not supported; delete by time (beforeTimeStamp)",
    );
    // Another user's token, or none, opens nothing.
    app.delete(&by_time(&format!("userId=bob&delTime={now}")), Some(&bob))
        .await
        .assert_error(
            401,
            "auth_bad_access_token",
            "Unable to authenticate due to corrupt access token",
        );
    app.delete(&by_ids, None).await.assert_error(
        401,
        "unauthorized",
        "Unable to authenticate due to expired access token",
    );
}
