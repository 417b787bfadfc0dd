//! HTTP plumbing: malformed input, limits, unknown routes, CORS, metrics, OpenAPI.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{send, spawn_app, spawn_app_with};

#[tokio::test]
async fn malformed_json_and_wrong_types_are_400() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    app.create_user(&admin, "alice", "p").await;
    for (path, method) in [
        (app.path("/users/alice/password"), Method::PUT),
        (app.path("/users/batch/status"), Method::POST),
        (app.path("/settings"), Method::PUT),
        (app.path("/users/alice"), Method::PUT),
    ] {
        let resp = send(
            app.client
                .request(method, format!("{}{}", app.base, path))
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
        assert_eq!(resp.status, 400, "{path}: {}", resp.body);
        assert_eq!(resp.body["error"], "json_parse", "{path}");
        assert!(resp.body["error_description"]
            .as_str()
            .unwrap()
            .contains("line 1"));
    }
    app.put(
        &app.path("/users/alice/password"),
        Some(&admin),
        json!({"newpassword": 5}),
    )
    .await
    .assert_error(400, "illegal_argument", "newpassword must be a string");
    app.put(
        &app.path("/users/alice"),
        Some(&admin),
        json!({"nickname": 5}),
    )
    .await
    .assert_error(400, "illegal_argument", "nickname must be a string");
}

#[tokio::test]
async fn oversize_bodies_are_413() {
    let app = spawn_app_with(|s| s.max_body_bytes = 1024).await;
    let admin = app.app_token().await;
    let big = json!({"username": "alice", "password": "p", "nickname": "x".repeat(4096)});
    let resp = app.register(&admin, big).await;
    assert_eq!(resp.status, 413, "{}", resp.body);
    assert_eq!(resp.body["error"], "request_entity_too_large");
    let resp = app
        .post_raw(
            &app.path("/token"),
            None,
            "application/json",
            "x".repeat(4096),
        )
        .await;
    assert_eq!(resp.status, 413);
    assert!(
        resp.body.get("timestamp").is_none(),
        "token errors stay bare"
    );
}

#[tokio::test]
async fn wrong_methods_are_405_and_unknown_paths_404_with_easemob_bodies() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    let resp = app
        .request(Method::PATCH, &app.path("/users"), Some(&admin), None)
        .await;
    resp.assert_error(
        405,
        "unsupported_service_operation",
        "Service operation not supported",
    );
    let resp = app.get(&app.path("/token"), None).await;
    resp.assert_error(
        405,
        "unsupported_service_operation",
        "Service operation not supported",
    );

    let resp = app
        .get(&app.path("/no/such/thing/here"), Some(&admin))
        .await;
    assert_eq!(resp.status, 404);
    assert_eq!(resp.body["error"], "web_application");
    assert!(resp.body["timestamp"].is_u64());
}

#[tokio::test]
async fn cors_preflight_allows_the_sdk_headers_from_any_origin_by_default() {
    let app = spawn_app().await;
    let resp = send(
        app.client
            .request(
                Method::OPTIONS,
                format!("{}{}", app.base, app.path("/token")),
            )
            .header("origin", "http://example.com")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,authorization",
            ),
    )
    .await;
    assert!(resp.status.is_success(), "{}", resp.status);
    assert_eq!(resp.headers["access-control-allow-origin"], "*");
    let headers = resp.headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(headers.contains("content-type") && headers.contains("authorization"));
    let methods = resp.headers["access-control-allow-methods"]
        .to_str()
        .unwrap();
    for m in ["GET", "POST", "PUT", "DELETE"] {
        assert!(methods.contains(m), "{methods}");
    }
    // Actual responses carry the header too, errors included.
    let resp = send(
        app.client
            .get(format!("{}{}", app.base, app.path("/users")))
            .header("origin", "http://example.com"),
    )
    .await;
    assert_eq!(resp.status, 401);
    assert_eq!(resp.headers["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn cors_origins_can_be_restricted() {
    let app = spawn_app_with(|s| s.cors_origins = vec!["https://good.example".into()]).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(
                Method::OPTIONS,
                format!("{}{}", app.base, app.path("/users")),
            )
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
    };
    let ok = send(preflight("https://good.example")).await;
    assert_eq!(
        ok.headers["access-control-allow-origin"],
        "https://good.example"
    );
    let bad = send(preflight("https://evil.example")).await;
    assert!(bad.headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn metrics_count_requests_tokens_and_registrations() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    app.create_user(&admin, "alice", "p").await;
    app.get(&app.path("/users/alice"), Some(&admin))
        .await
        .assert_ok();
    let resp = app.get("/metrics", None).await;
    assert_eq!(resp.status, 200);
    let text = resp.body.as_str().expect("text").to_owned();
    for needle in [
        "ferrim_http_requests_total",
        "route=\"/{org}/{app}/users/{username}\"",
        "ferrim_http_request_duration_seconds",
        "ferrim_tokens_issued_total",
        "ferrim_users_registered_total",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    assert!(!text.contains("alice"), "no user names in labels");
}

#[tokio::test]
async fn metrics_report_the_embedded_stores_wal() {
    let app = spawn_app().await;
    // The checkpointer reports after its first pass (every 100 ms).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = app
            .get("/metrics", None)
            .await
            .body
            .as_str()
            .expect("text")
            .to_owned();
        if text.contains("ferrim_sqlite_wal_frames") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no WAL gauge in\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn metrics_count_the_message_journals_commits() {
    let app = spawn_app().await;
    let token = app.app_token().await;
    app.create_user(&token, "alice", "pw-alice").await;
    app.create_user(&token, "bob", "pw-bob").await;
    app.post(
        &app.path("/messages/users"),
        Some(&token),
        json!({"from": "alice", "to": ["bob"], "type": "txt", "body": {"msg": "hi"}}),
    )
    .await
    .assert_ok();
    let text = app.get("/metrics", None).await.body;
    let text = text.as_str().expect("text");
    assert!(
        text.lines()
            .any(|l| l.starts_with("ferrim_sqlite_journal_commits_total ")),
        "no journal commit counter in\n{text}"
    );
}

/// Every REST route, as (method, path template).
const ROUTES: &[(&str, &str)] = &[
    ("post", "/{org}/{app}/token"),
    ("post", "/{org}/{app}/users"),
    ("get", "/{org}/{app}/users"),
    ("delete", "/{org}/{app}/users"),
    ("get", "/{org}/{app}/users/{username}"),
    ("put", "/{org}/{app}/users/{username}"),
    ("delete", "/{org}/{app}/users/{username}"),
    ("put", "/{org}/{app}/users/{username}/password"),
    ("post", "/{org}/{app}/users/{username}/deactivate"),
    ("post", "/{org}/{app}/users/{username}/activate"),
    ("get", "/{org}/{app}/users/{username}/disconnect"),
    (
        "delete",
        "/{org}/{app}/users/{username}/disconnect/{resource}",
    ),
    ("get", "/{org}/{app}/users/{username}/resources"),
    ("get", "/{org}/{app}/users/{username}/status"),
    ("post", "/{org}/{app}/users/batch/status"),
    ("get", "/{org}/{app}/users/{username}/offline_msg_count"),
    (
        "get",
        "/{org}/{app}/users/{username}/offline_msg_status/{msg_id}",
    ),
    ("get", "/{org}/{app}/sdk/users/{username}/token/expires"),
    ("post", "/{org}/{app}/messages/users"),
    ("post", "/{org}/{app}/users/{username}/messageroaming"),
    ("get", "/{org}/{app}/sdk/user/{username}/user_channels/list"),
    ("delete", "/{org}/{app}/user/{username}/user_channel"),
    (
        "delete",
        "/{org}/{app}/sdk/message/roaming/{chat_type}/user/{username}/time",
    ),
    (
        "delete",
        "/{org}/{app}/sdk/message/roaming/{chat_type}/user/{username}",
    ),
    ("get", "/{org}/{app}"),
    ("get", "/{org}/{app}/settings"),
    ("put", "/{org}/{app}/settings"),
    ("get", "/{org}/{app}/stats"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

#[tokio::test]
async fn the_served_openapi_document_lists_every_route_and_matches_docs() {
    let app = spawn_app().await;
    let resp = app.get("/openapi.json", None).await;
    let doc = resp.assert_ok();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for (method, path) in ROUTES {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
    let served = ferrim_server::rest::openapi::document();
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    if std::env::var_os("FERRIM_UPDATE_OPENAPI").is_some() {
        std::fs::write(file, format!("{served}\n")).expect("write docs/openapi.json");
    }
    let checked_in: Value =
        serde_json::from_str(&std::fs::read_to_string(file).expect("docs/openapi.json exists"))
            .expect("valid JSON");
    assert_eq!(
        &checked_in, doc,
        "docs/openapi.json is stale: rerun with FERRIM_UPDATE_OPENAPI=1"
    );
}
