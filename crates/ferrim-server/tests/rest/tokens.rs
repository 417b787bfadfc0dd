//! `POST /{org}/{app}/token`.

use base64::Engine;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn client_credentials_issue_an_app_token_with_the_default_ttl() {
    let app = spawn_app().await;
    let resp = app
        .post(
            &app.path("/token"),
            None,
            json!({"grant_type": "client_credentials", "client_id": app.app.client_id, "client_secret": app.app.client_secret}),
        )
        .await;
    let body = resp.assert_ok();
    assert!(body["access_token"].as_str().unwrap().starts_with("YWMt"));
    assert_eq!(body["expires_in"], 5_184_000);
    assert_eq!(body["application"], app.app.id.to_string());
}

#[tokio::test]
async fn ttl_may_be_a_number_a_numeric_string_or_zero() {
    let app = spawn_app().await;
    for (ttl, expected) in [
        (json!(1024000), 1024000),
        (json!("1024000"), 1024000),
        (json!(0), 0),
    ] {
        let resp = app
            .post(
                &app.path("/token"),
                None,
                json!({"grant_type": "client_credentials", "client_id": app.app.client_id, "client_secret": app.app.client_secret, "ttl": ttl}),
            )
            .await;
        assert_eq!(resp.assert_ok()["expires_in"], expected);
    }
    // A never-expiring token works.
    let token = app.app_token_ttl(Some(json!(0))).await;
    app.get(&app.path("/users"), Some(&token)).await.assert_ok();
    for bad in [json!(-1), json!("ten"), json!(1.5), json!(true)] {
        let resp = app
            .post(
                &app.path("/token"),
                None,
                json!({"grant_type": "client_credentials", "client_id": app.app.client_id, "client_secret": app.app.client_secret, "ttl": bad}),
            )
            .await;
        resp.assert_error(400, "illegal_argument", "ttl must be a number >= 0");
    }
}

#[tokio::test]
async fn the_token_endpoint_accepts_form_bodies_and_basic_credentials() {
    let app = spawn_app().await;
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}&ttl=60",
        app.app.client_id, app.app.client_secret
    );
    let resp = app
        .post_raw(
            &app.path("/token"),
            None,
            "application/x-www-form-urlencoded",
            form,
        )
        .await;
    assert_eq!(resp.assert_ok()["expires_in"], 60);

    // JSON sent with a form content type (curl -d) is still JSON.
    let resp = app
        .post_raw(
            &app.path("/token"),
            None,
            "application/x-www-form-urlencoded",
            json!({"grant_type": "client_credentials", "client_id": app.app.client_id, "client_secret": app.app.client_secret}).to_string(),
        )
        .await;
    resp.assert_ok();

    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", app.app.client_id, app.app.client_secret));
    let resp = crate::helpers::send(
        app.client
            .post(format!("{}{}", app.base, app.path("/token")))
            .header("authorization", format!("Basic {basic}"))
            .json(&json!({"grant_type": "client_credentials"})),
    )
    .await;
    resp.assert_ok();
}

#[tokio::test]
async fn client_credential_errors_use_the_bare_oauth_shape() {
    let app = spawn_app().await;
    let path = app.path("/token");
    let cases = [
        (
            json!({"grant_type": "client_credentials", "client_secret": "x"}),
            400,
            "illegal_argument",
            "client_id must be provided.",
        ),
        (
            json!({"grant_type": "client_credentials", "client_id": app.app.client_id}),
            400,
            "illegal_argument",
            "client_secret must be provided",
        ),
        (
            json!({"grant_type": "client_credentials", "client_id": "nope", "client_secret": app.app.client_secret}),
            400,
            "invalid_grant",
            "client_id does not match",
        ),
        (
            json!({"grant_type": "client_credentials", "client_id": app.app.client_id, "client_secret": "nope"}),
            400,
            "invalid_grant",
            "client_secret does not match",
        ),
        (
            json!({"grant_type": "magic"}),
            400,
            "invalid_grant",
            "invalid username or password",
        ),
        (
            json!({}),
            400,
            "invalid_grant",
            "invalid username or password",
        ),
    ];
    for (body, status, error, description) in cases {
        let resp = app.post(&path, None, body).await;
        resp.assert_error(status, error, description);
        assert!(
            resp.body.get("timestamp").is_none(),
            "bare shape: {}",
            resp.body
        );
    }
    let resp = app
        .post_raw(&path, None, "application/json", "{\"grant_type\": ")
        .await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.body["error"], "json_parse");
}

#[tokio::test]
async fn the_token_endpoint_of_an_unknown_app_is_404() {
    let app = spawn_app().await;
    let resp = app
        .post(
            "/nope/nope/token",
            None,
            json!({"grant_type": "client_credentials"}),
        )
        .await;
    resp.assert_error(
        404,
        "organization_application_not_found",
        "Could not find application for nope/nope from URI: nope/nope/token",
    );
}

#[tokio::test]
async fn inherit_issues_user_tokens_on_the_app_tokens_authority() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    app.create_user(&admin, "alice", "pw").await;
    let path = app.path("/token");

    let resp = app
        .post(
            &path,
            Some(&admin),
            json!({"grant_type": "inherit", "username": "Alice", "ttl": "600"}),
        )
        .await;
    let body = resp.assert_ok();
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["user"]["username"], "alice");
    assert_eq!(body["user"]["type"], "user");
    assert_eq!(body["user"]["activated"], true);

    // Missing user, with and without autoCreateUser.
    app.post(
        &path,
        Some(&admin),
        json!({"grant_type": "inherit", "username": "bob"}),
    )
    .await
    .assert_error(404, "invalid_grant", "user not found");
    let resp = app
        .post(
            &path,
            Some(&admin),
            json!({"grant_type": "inherit", "username": "bob", "autoCreateUser": true}),
        )
        .await;
    assert_eq!(resp.assert_ok()["user"]["username"], "bob");
    app.get(&app.path("/users/bob"), Some(&admin))
        .await
        .assert_ok();

    app.post(
        &path,
        Some(&admin),
        json!({"grant_type": "inherit", "username": "a b", "autoCreateUser": true}),
    )
    .await
    .assert_error(400, "illegal_argument", "username [a b] is not legal");
    app.post(
        &path,
        Some(&admin),
        json!({"grant_type": "inherit", "username": "x".repeat(65), "autoCreateUser": true}),
    )
    .await
    .assert_error(400, "illegal_argument", "USERNAME_TOO_LONG");
    // Without auto-creation an ID that cannot exist is just a missing user.
    app.post(
        &path,
        Some(&admin),
        json!({"grant_type": "inherit", "username": "a b"}),
    )
    .await
    .assert_error(404, "invalid_grant", "user not found");
    app.post(
        &path,
        Some(&admin),
        json!({"grant_type": "inherit", "username": "bob", "autoCreateUser": 3}),
    )
    .await
    .assert_error(400, "illegal_argument", "autoCreateUser must be a boolean");

    // No token, or a user token.
    app.post(
        &path,
        None,
        json!({"grant_type": "inherit", "username": "alice"}),
    )
    .await
    .assert_error(
        401,
        "unauthorized",
        "Unable to authenticate due to expired access token",
    );
    let user_token = app.user_token(&admin, "alice").await;
    let resp = app
        .post(
            &path,
            Some(&user_token),
            json!({"grant_type": "inherit", "username": "alice"}),
        )
        .await;
    resp.assert_error(
        401,
        "auth_bad_access_token",
        "Unable to authenticate due to corrupt access token",
    );
    assert!(resp.body.get("timestamp").is_none());

    // Deactivated users get no token.
    app.post(
        &app.path("/users/alice/deactivate"),
        Some(&admin),
        json!({}),
    )
    .await
    .assert_ok();
    app.post(
        &path,
        Some(&admin),
        json!({"grant_type": "inherit", "username": "alice"}),
    )
    .await
    .assert_error(400, "invalid_grant", "user not activated");
}

#[tokio::test]
async fn the_password_grant_checks_the_password_and_lowercases_the_user() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    app.create_user(&admin, "c", "secret").await;

    let resp = app
        .post(
            &app.path("/token"),
            None,
            json!({"grant_type": "password", "username": "C", "password": "secret", "ttl": "1024000"}),
        )
        .await;
    let body = resp.assert_ok();
    assert_eq!(body["user"]["username"], "c");
    assert_eq!(body["expires_in"], 1024000);

    app.password_grant("c", "wrong")
        .await
        .assert_error(400, "invalid_grant", "invalid password");
    app.password_grant("nobody", "x")
        .await
        .assert_error(404, "invalid_grant", "user not found");
    app.post(
        &app.path("/token"),
        None,
        json!({"grant_type": "password", "username": "c"}),
    )
    .await
    .assert_error(400, "illegal_argument", "password must be provided");
}

#[tokio::test]
async fn password_guessing_is_throttled_with_429() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    app.create_user(&admin, "victim", "secret").await;
    let mut throttled = None;
    for attempt in 0..30 {
        let resp = app.password_grant("victim", "guess").await;
        if resp.status == 429 {
            throttled = Some((attempt, resp));
            break;
        }
        resp.assert_error(400, "invalid_grant", "invalid password");
    }
    let (attempt, resp) = throttled.expect("throttled within 30 attempts");
    assert!(attempt >= 5, "throttled too early: {attempt}");
    resp.assert_error(429, "reach_limit", "This request has reached api limit");
    // Even the right password is refused while throttled.
    assert_eq!(app.password_grant("victim", "secret").await.status, 429);
}

#[tokio::test]
async fn successful_password_logins_are_not_throttled() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    app.create_user(&admin, "regular", "secret").await;
    // Many more than the failure limit: an app whose users log in by password often (the
    // Web SDK's password login uses this grant) must not be locked out.
    for attempt in 0..25 {
        let resp = app.password_grant("regular", "secret").await;
        assert_eq!(resp.status, 200, "attempt {attempt}: {:?}", resp.body);
    }
    // Failures still count, and lock the user out once they reach the limit.
    for _ in 0..10 {
        app.password_grant("regular", "guess").await.assert_error(
            400,
            "invalid_grant",
            "invalid password",
        );
    }
    app.password_grant("regular", "secret").await.assert_error(
        429,
        "reach_limit",
        "This request has reached api limit",
    );
}
