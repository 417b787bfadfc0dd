//! `POST /{org}/{app}/users`: open and authorized, single and batch.

use serde_json::{json, Value};

use crate::helpers::spawn_app;

const CLOSED: &str = "Open registration doesn't allow, so register user need token";

#[tokio::test]
async fn authorized_registration_returns_the_envelope_and_entity() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    let resp = app
        .register(
            &admin,
            json!([{"username": "User1", "password": "123", "nickname": "Nick"}]),
        )
        .await;
    let body = resp.assert_ok();
    assert_eq!(body["action"], "post");
    assert_eq!(body["application"], app.app.id.to_string());
    assert_eq!(body["path"], "/users");
    assert_eq!(body["uri"], format!("{}{}", app.base, app.path("/users")));
    assert_eq!(body["organization"], app.app.key.org());
    assert_eq!(body["applicationName"], app.app.key.app());
    assert!(body["timestamp"].is_u64());
    assert!(body["duration"].is_u64());
    assert!(
        body.get("data").is_none(),
        "single registration has no data"
    );
    let user = &body["entities"][0];
    assert_eq!(user["username"], "user1");
    assert_eq!(user["type"], "user");
    assert_eq!(user["activated"], true);
    assert_eq!(user["nickname"], "Nick");
    assert!(user["uuid"].is_string() && user["created"].is_u64() && user["modified"].is_u64());
}

#[tokio::test]
async fn open_registration_follows_the_registration_mode() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    let users = app.path("/users");
    // Authorized mode (the default): no token, no user.
    app.post(&users, None, json!({"username": "u1", "password": "p"}))
        .await
        .assert_error(401, "unauthorized", CLOSED);

    app.put_settings(&admin, json!({"registration_mode": "open"}))
        .await
        .assert_ok();
    let resp = app
        .post(&users, None, json!({"username": "u1", "password": "p"}))
        .await;
    assert_eq!(resp.assert_ok()["entities"][0]["username"], "u1");
    // Curl's default form content type still carries JSON.
    let resp = app
        .post_raw(
            &users,
            None,
            "application/x-www-form-urlencoded",
            r#"{"username":"u2","password":"p"}"#,
        )
        .await;
    resp.assert_ok();
    // Batches always need the token.
    app.post(
        &users,
        None,
        json!([{"username": "u3", "password": "p"}, {"username": "u4", "password": "p"}]),
    )
    .await
    .assert_error(401, "unauthorized", CLOSED);

    app.put_settings(&admin, json!({"registration_mode": "authorized"}))
        .await
        .assert_ok();
    app.post(&users, None, json!({"username": "u5", "password": "p"}))
        .await
        .assert_error(401, "unauthorized", CLOSED);
    // A bad token is refused even when open.
    app.post(
        &users,
        Some("garbage"),
        json!({"username": "u6", "password": "p"}),
    )
    .await
    .assert_error(
        401,
        "auth_bad_access_token",
        "Unable to authenticate due to corrupt access token",
    );
}

#[tokio::test]
async fn an_existing_user_is_a_duplicate_case_insensitively() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    app.create_user(&admin, "user1", "p").await;
    let resp = app
        .register(&admin, json!({"username": "User1", "password": "p"}))
        .await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.body["error"], "duplicate_unique_property_exists");
    let text = resp.body["error_description"].as_str().unwrap();
    assert!(
        text.ends_with(
            "Entity user requires that property named username be unique, value of user1 exists"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_batch_creates_the_new_users_and_reports_existing_ones() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    app.create_user(&admin, "user3", "p").await;
    let resp = app
        .register(
            &admin,
            json!([
                {"username": "user1", "password": "p"},
                {"username": "user2", "password": "p"},
                {"username": "user3", "password": "p"},
            ]),
        )
        .await;
    let body = resp.assert_ok();
    let names: Vec<&str> = body["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["user1", "user2"]);
    assert_eq!(
        body["data"],
        json!([{"username": "user3", "registerUserFailReason": "the user3 already exists"}])
    );

    let resp = app
        .register(
            &admin,
            json!([{"username": "x1", "password": "p"}, {"username": "x2", "password": "p"}]),
        )
        .await;
    assert_eq!(resp.assert_ok()["data"], json!([]));
}

#[tokio::test]
async fn batch_limits_and_conflicts_are_400_and_create_nobody() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    let many: Vec<Value> = (0..61)
        .map(|i| json!({"username": format!("u{i}"), "password": "p"}))
        .collect();
    app.register(&admin, Value::Array(many))
        .await
        .assert_error(
            400,
            "illegal_argument",
            "Request body array size[61] had almost reached or been greater than the upper range value[60]",
        );

    let resp = app
        .register(
            &admin,
            json!([{"username": "dup", "password": "a"}, {"username": "DUP", "password": "b"}]),
        )
        .await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.body["error"], "duplicate_unique_property_exists");
    assert!(resp.body["error_description"]
        .as_str()
        .unwrap()
        .starts_with("the same user dup has a different password"));

    // One bad entry: nobody is created.
    app.register(
        &admin,
        json!([{"username": "good", "password": "p"}, {"username": "b@d", "password": "p"}]),
    )
    .await
    .assert_error(400, "illegal_argument", "username b@d is not legal");
    app.get(&app.path("/users/good"), Some(&admin))
        .await
        .assert_error(
            404,
            "service_resource_not_found",
            "Service resource not found",
        );
    app.register(&admin, json!([])).await.assert_error(
        400,
        "illegal_argument",
        "request body must contain at least one user",
    );
}

#[tokio::test]
async fn registration_validates_every_field() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    let cases = [
        (
            json!({"username": "a b", "password": "p"}),
            "username a b is not legal",
        ),
        (
            json!({"username": "u".repeat(65), "password": "p"}),
            "USERNAME_TOO_LONG",
        ),
        (json!({"username": "u1"}), "password or pin must provided"),
        (
            json!({"username": "u1", "password": ""}),
            "password or pin must provided",
        ),
        (
            json!({"username": "u1", "password": "p", "nickname": "n".repeat(101)}),
            "NICKNAME_TOO_LONG",
        ),
        (
            json!({"password": "p"}),
            "Entity user requires a property named username",
        ),
        (
            json!({"username": 5, "password": "p"}),
            "username must be a string",
        ),
        (
            json!({"username": "u1", "password": ["p"]}),
            "password must be a string",
        ),
        (
            json!("just a string"),
            "request body must be a user object or an array of user objects",
        ),
        (json!([1]), "each user must be a JSON object"),
    ];
    for (body, description) in cases {
        app.register(&admin, body)
            .await
            .assert_error(400, "illegal_argument", description);
    }
    let resp = app
        .post_raw(
            &app.path("/users"),
            Some(&admin),
            "application/json",
            "{\"username\":",
        )
        .await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.body["error"], "json_parse");
    assert_eq!(
        resp.body["exception"],
        "org.codehaus.jackson.JsonParseException"
    );
}
