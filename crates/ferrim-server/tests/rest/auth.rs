//! Token checks on admin endpoints, cross-app isolation and per-app quotas.

use ferrim_core::app::AppKey;
use serde_json::json;

use crate::helpers::spawn_app;

const EXPIRED: &str = "Unable to authenticate due to expired access token";
const CORRUPT: &str = "Unable to authenticate due to corrupt access token";

#[tokio::test]
async fn admin_endpoints_refuse_missing_malformed_expired_and_user_tokens() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    app.create_user(&admin, "alice", "p").await;
    let path = app.path("/users/alice");

    app.get(&path, None)
        .await
        .assert_error(401, "unauthorized", EXPIRED);
    app.get(&path, Some("not-a-token"))
        .await
        .assert_error(401, "auth_bad_access_token", CORRUPT);
    let user_token = app.user_token(&admin, "alice").await;
    app.get(&path, Some(&user_token))
        .await
        .assert_error(401, "auth_bad_access_token", CORRUPT);

    // Flip one character of the signature: well-formed, not ours.
    let mut forged = admin.clone().into_bytes();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    app.get(&path, Some(&forged)).await.assert_error(
        401,
        "auth_bad_access_token",
        "Unable to authenticate",
    );

    let short = app.app_token_ttl(Some(json!(1))).await;
    app.get(&path, Some(&short)).await.assert_ok();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    app.get(&path, Some(&short))
        .await
        .assert_error(401, "unauthorized", EXPIRED);

    // The scheme is case-insensitive.
    let resp = crate::helpers::send(
        app.client
            .get(format!("{}{}", app.base, path))
            .header("authorization", format!("bearer {admin}")),
    )
    .await;
    resp.assert_ok();
}

#[tokio::test]
async fn one_apps_tokens_never_open_another_app() {
    let app = spawn_app().await;
    let other = app
        .accounts
        .create_app(&AppKey::parse("other#app").unwrap(), None, None)
        .await
        .unwrap();
    let admin = app.app_token().await;
    app.create_user(&admin, "alice", "p").await;

    let resp = app
        .post(
            "/other/app/token",
            None,
            json!({"grant_type": "client_credentials", "client_id": other.client_id, "client_secret": other.client_secret}),
        )
        .await;
    let other_admin = resp.assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    app.get(&app.path("/users/alice"), Some(&other_admin))
        .await
        .assert_error(401, "auth_bad_access_token", CORRUPT);
    app.get("/other/app/users/alice", Some(&admin))
        .await
        .assert_error(401, "auth_bad_access_token", CORRUPT);
    // Users are per app.
    app.get("/other/app/users/alice", Some(&other_admin))
        .await
        .assert_error(
            404,
            "service_resource_not_found",
            "Service resource not found",
        );
    // The first app's credentials do not open the second.
    app.post(
        "/other/app/token",
        None,
        json!({"grant_type": "client_credentials", "client_id": app.app.client_id, "client_secret": app.app.client_secret}),
    )
    .await
    .assert_error(400, "invalid_grant", "client_id does not match");
    // A user token of one app is refused by the other's user-token endpoints as a corrupt
    // token (spec §9.5: "token of another AppKey").
    let alice = app.user_token(&admin, "alice").await;
    app.get("/other/app/sdk/users/alice/token/expires", Some(&alice))
        .await
        .assert_error(401, "auth_bad_access_token", CORRUPT);
    app.get("/other/app/users/alice/resources", Some(&alice))
        .await
        .assert_error(401, "auth_bad_access_token", CORRUPT);
}

#[tokio::test]
async fn unknown_apps_are_404_with_the_documented_description() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    app.get("/no/such/users/alice", Some(&admin))
        .await
        .assert_error(
            404,
            "organization_application_not_found",
            "Could not find application for no/such from URI: no/such/users/alice",
        );
    app.get("/bad%20org/x/users", Some(&admin))
        .await
        .assert_error(
            404,
            "organization_application_not_found",
            "Could not find application for bad org/x from URI: bad%20org/x/users",
        );
}

#[tokio::test]
async fn the_user_system_api_is_rate_limited_per_app() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    let path = app.path("/users");
    let requests = (0..250).map(|_| app.get(&path, Some(&admin)));
    let responses = futures_util::future::join_all(requests).await;
    let limited: Vec<_> = responses.iter().filter(|r| r.status == 429).collect();
    assert!(!limited.is_empty(), "250 requests at once exceed 100/s");
    limited[0].assert_error(429, "reach_limit", "This request has reached api limit");
}

#[tokio::test]
async fn batch_deletion_has_its_own_lower_limit() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    let path = app.path("/users?limit=1");
    // 60 at once stay under the shared 100/s but not under batch deletion's 30/s.
    let requests = (0..60).map(|_| app.delete(&path, Some(&admin)));
    let responses = futures_util::future::join_all(requests).await;
    let limited = responses.iter().filter(|r| r.status == 429).count();
    assert!(limited >= 20, "{limited} of 60 limited");
    assert!(responses.iter().any(|r| r.status == 200));
}
