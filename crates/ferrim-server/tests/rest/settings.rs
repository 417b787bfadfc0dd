//! ferrim's extensions: `GET/PUT /{org}/{app}/settings` and `GET /{org}/{app}`.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn settings_read_and_partially_update() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    let resp = app.get(&app.path("/settings"), Some(&admin)).await;
    assert_eq!(
        resp.assert_ok()["data"],
        json!({
            "registration_mode": "authorized",
            "token_ttl_secs": 5184000,
            "device_cap_per_platform": 4,
            "device_caps": {},
            "kick_policy": "kick_earliest",
            "offline_keep_count": 500,
            "offline_keep_days": 7,
        })
    );

    let resp = app
        .put_settings(
            &admin,
            json!({"token_ttl_secs": 3600, "kick_policy": "refuse_newcomer"}),
        )
        .await;
    let data = &resp.assert_ok()["data"];
    assert_eq!(data["token_ttl_secs"], 3600);
    assert_eq!(data["kick_policy"], "refuse_newcomer");
    assert_eq!(
        data["device_cap_per_platform"], 4,
        "untouched fields keep their value"
    );
    let resp = app.get(&app.path("/settings"), Some(&admin)).await;
    assert_eq!(resp.assert_ok()["data"]["token_ttl_secs"], 3600);
    let resp = app
        .put_settings(&admin, json!({"device_caps": {"web": 2, "custom5": 0}}))
        .await;
    assert_eq!(
        resp.assert_ok()["data"]["device_caps"],
        json!({"custom5": 0, "web": 2})
    );

    // The new default TTL applies to tokens issued afterwards.
    let resp = app
        .post(
            &app.path("/token"),
            None,
            json!({"grant_type": "client_credentials", "client_id": app.app.client_id, "client_secret": app.app.client_secret}),
        )
        .await;
    assert_eq!(resp.assert_ok()["expires_in"], 3600);
}

#[tokio::test]
async fn bad_settings_are_refused_without_change() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    for bad in [
        json!({"nope": 1}),
        json!({"registration_mode": "sometimes"}),
        json!({"token_ttl_secs": "soon"}),
        json!({"device_cap_per_platform": 0}),
        json!({"device_caps": {"tv": 1}}),
        json!({"device_caps": {"web": 101}}),
        json!({"device_caps": {"web": -1}}),
        json!([1]),
    ] {
        let resp = app.put_settings(&admin, bad).await;
        assert_eq!(resp.status, 400, "{}", resp.body);
        assert_eq!(resp.body["error"], "illegal_argument");
    }
    let resp = app.get(&app.path("/settings"), Some(&admin)).await;
    assert_eq!(resp.assert_ok()["data"]["device_cap_per_platform"], 4);

    app.create_user(&admin, "alice", "p").await;
    let user = app.user_token(&admin, "alice").await;
    app.get(&app.path("/settings"), Some(&user))
        .await
        .assert_error(
            401,
            "auth_bad_access_token",
            "Unable to authenticate due to corrupt access token",
        );
    assert_eq!(
        app.put_settings(&user, json!({"registration_mode": "open"}))
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn the_app_overview_lists_key_client_id_and_urls_but_no_secret() {
    let app = spawn_app().await;
    let admin = app.app_token().await;
    let resp = app.get(&app.path(""), Some(&admin)).await;
    let data = resp.assert_ok()["data"].clone();
    assert_eq!(data["appKey"], app.app.key.to_string());
    assert_eq!(data["client_id"], app.app.client_id);
    assert_eq!(data["application"], app.app.id.to_string());
    assert_eq!(data["rest_url"], app.base);
    assert_eq!(
        data["ws_url"],
        format!("{}/ws", app.base.replace("http://", "ws://"))
    );
    assert!(!resp.body.to_string().contains(&app.app.client_secret));
    assert_eq!(app.get(&app.path(""), None).await.status, 401);
}
