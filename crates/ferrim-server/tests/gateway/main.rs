//! The msync gateway over a real socket: login, heartbeat, logout, timeouts, the
//! multi-device rules, kicks, and bad input.

#[path = "../common/mod.rs"]
mod common;
mod helpers;
mod over_client;

use std::time::Duration;

use ferrim_core::app::KickPolicy;
use ferrim_core::clock::now_ms;
use ferrim_core::token::DynamicToken;
use ferrim_proto::pb::m_sync::Command;
use ferrim_proto::pb::{CommSyncUl, Jid, MSync, Meta};
use ferrim_proto::Message as _;
use helpers::*;
use tokio_tungstenite::tungstenite::Message;

const INVALID_TOKEN: &str = "Sorry, token or password does not match login info";

// ----- login -------------------------------------------------------------------------

#[tokio::test]
async fn token_login_succeeds_and_echoes_the_resource_and_absolute_expiry() {
    let t = spawn_app().await;
    t.user("alice").await;
    let token = t.token("alice", Some(3600)).await;
    let before = now_ms();

    let (_ws, reply) = t.login("alice", &token, "webim_web_1").await;

    assert_eq!(status_of(&reply).0, 0);
    assert_eq!(reply.resource.as_deref(), Some("webim_web_1"));
    assert!(reply.protocol_compress_type.is_empty(), "LZ4 is declined");
    let json: serde_json::Value =
        serde_json::from_str(reply.auth_token.as_deref().unwrap()).unwrap();
    let expires = json["expires_in"].as_u64().unwrap();
    assert!(expires >= before + 3_599_000 && expires <= now_ms() + 3_600_000);
    assert_eq!(t.devices("alice").await, vec!["webim_web_1"]);
}

#[tokio::test]
async fn never_expiring_tokens_send_no_auth_token() {
    let t = spawn_app().await;
    t.user("alice").await;
    let token = t.token("alice", Some(0)).await;
    let (_ws, reply) = t.login("alice", &token, "r1").await;
    assert_eq!(status_of(&reply).0, 0);
    assert!(reply.auth_token.is_none());
}

#[tokio::test]
async fn dynamic_token_login_succeeds_with_its_expiry() {
    let t = spawn_app().await;
    t.user("alice").await;
    let cur = now_ms() / 1000;
    let token = DynamicToken::generate(
        &t.app.client_id,
        &t.app.client_secret,
        &t.app_key(),
        "alice",
        cur,
        600,
    );
    let (_ws, reply) = t.login("alice", &token, "r1").await;
    assert_eq!(status_of(&reply).0, 0);
    assert_eq!(
        reply.auth_token.as_deref(),
        Some(format!("{{\"expires_in\":{}}}", (cur + 600) * 1000).as_str())
    );
}

#[tokio::test]
async fn user_names_match_case_insensitively() {
    let t = spawn_app().await;
    let token = t.user("alice").await;
    let (_ws, reply) = t.login("Alice", &token, "r1").await;
    assert_eq!(status_of(&reply).0, 0);
}

/// Logs in and expects a refusal followed by the close.
async fn refused(t: &TestApp, frame: LoginFrame) -> (i32, String) {
    let (mut ws, reply) = t.login_with(frame).await;
    let (code, _) = ws.closed().await;
    assert_eq!(code, 1000, "a refused login is closed normally");
    status_of(&reply)
}

#[tokio::test]
async fn a_wrong_token_gives_28() {
    let t = spawn_app().await;
    t.user("alice").await;
    for token in ["YWMtnot-a-real-token", "garbage", ""] {
        let frame = LoginFrame::web(&t.app_key(), "alice", token, "r1");
        assert_eq!(
            refused(&t, frame).await,
            (1, INVALID_TOKEN.into()),
            "{token:?}"
        );
    }
    assert!(t.devices("alice").await.is_empty());
}

#[tokio::test]
async fn an_expired_token_gives_56() {
    let t = spawn_app().await;
    t.user("alice").await;
    let token = DynamicToken::generate(
        &t.app.client_id,
        &t.app.client_secret,
        &t.app_key(),
        "alice",
        now_ms() / 1000 - 700,
        600,
    );
    let frame = LoginFrame::web(&t.app_key(), "alice", &token, "r1");
    assert_eq!(refused(&t, frame).await, (1, "Sorry, token expired".into()));
}

#[tokio::test]
async fn an_unknown_user_gives_204() {
    let t = spawn_app().await;
    let token = DynamicToken::generate(
        &t.app.client_id,
        &t.app.client_secret,
        &t.app_key(),
        "ghost",
        now_ms() / 1000,
        600,
    );
    let frame = LoginFrame::web(&t.app_key(), "ghost", &token, "r1");
    assert_eq!(
        refused(&t, frame).await,
        (1, "Sorry, user not found".into())
    );
}

#[tokio::test]
async fn a_deleted_users_token_gives_204() {
    let t = spawn_app().await;
    let token = t.user("alice").await;
    t.accounts.delete_user(&t.app, "alice").await.unwrap();
    let frame = LoginFrame::web(&t.app_key(), "alice", &token, "r1");
    assert_eq!(
        refused(&t, frame).await,
        (1, "Sorry, user not found".into())
    );
}

#[tokio::test]
async fn a_dynamic_token_minted_before_the_account_existed_gives_28() {
    let t = spawn_app().await;
    let mint = |secs_ago: u64| {
        DynamicToken::generate(
            &t.app.client_id,
            &t.app.client_secret,
            &t.app_key(),
            "alice",
            now_ms() / 1000 - secs_ago,
            3600,
        )
    };
    // Minted for an earlier "alice", deleted since: it must not open the new account.
    let old = mint(600);
    // Minted just before registering (an app server may mint, then register).
    let fresh = mint(60);
    t.user("alice").await;
    let frame = LoginFrame::web(&t.app_key(), "alice", &old, "r1");
    assert_eq!(
        refused(&t, frame).await,
        (
            1,
            "Sorry, token or password does not match login info".into()
        )
    );
    let (_ws, reply) = t.login("alice", &fresh, "r2").await;
    assert_eq!(status_of(&reply).0, 0);
}

#[tokio::test]
async fn a_deactivated_user_is_refused_until_activated() {
    let t = spawn_app().await;
    let token = t.user("alice").await;
    t.accounts
        .set_activated(&t.app, "alice", false)
        .await
        .unwrap();
    let frame = LoginFrame::web(&t.app_key(), "alice", &token, "r1");
    assert_eq!(
        refused(&t, frame).await,
        (1, "Sorry, user is deactivated".into())
    );

    t.accounts
        .set_activated(&t.app, "alice", true)
        .await
        .unwrap();
    let token = t.token("alice", None).await;
    t.online("alice", &token, "r1").await;
}

#[tokio::test]
async fn another_users_token_gives_28() {
    let t = spawn_app().await;
    t.user("alice").await;
    let bobs = t.user("bob").await;
    let frame = LoginFrame::web(&t.app_key(), "alice", &bobs, "r1");
    assert_eq!(refused(&t, frame).await, (1, INVALID_TOKEN.into()));
    assert!(t.devices("bob").await.is_empty());
}

#[tokio::test]
async fn an_unknown_app_is_refused_with_a_clear_reason() {
    let t = spawn_app().await;
    let token = t.user("alice").await;
    let frame = LoginFrame::web("nope#nope", "alice", &token, "r1");
    assert_eq!(refused(&t, frame).await, (1, "Sorry, app not found".into()));
}

#[tokio::test]
async fn the_token_may_come_from_the_auth_token_json_alone() {
    let t = spawn_app().await;
    let token = t.user("alice").await;
    let mut frame = LoginFrame::web(&t.app_key(), "alice", &token, "r1").build();
    frame.auth = None;
    let mut ws = t.connect().await;
    ws.send(frame).await;
    assert_eq!(status_of(&ws.provision_reply().await).0, 0);
}

#[tokio::test]
async fn a_missing_resource_gets_one_generated() {
    let t = spawn_app().await;
    let token = t.user("alice").await;
    let (_ws, reply) = t.login("alice", &token, "").await;
    assert_eq!(status_of(&reply).0, 0);
    let resource = reply.resource.unwrap();
    assert!(!resource.is_empty());
    assert_eq!(t.devices("alice").await, vec![resource]);
}

#[tokio::test]
async fn no_login_within_the_deadline_closes_the_socket() {
    let t = spawn_app_with(|s| s.ws.login_timeout_secs = 1).await;
    let mut ws = t.connect().await;
    assert_eq!(ws.closed().await, (1008, "login timeout".into()));
}

// ----- session life ------------------------------------------------------------------

#[tokio::test]
async fn unread_is_answered_before_and_after_login_with_the_server_time() {
    let t = spawn_app().await;
    let token = t.user("alice").await;
    let mut ws = t.connect().await;
    ws.unread().await;
    let before = ws.unread_reply().await;
    assert!(before.status.is_some());

    ws.send(LoginFrame::web(&t.app_key(), "alice", &token, "r1").build())
        .await;
    ws.provision_reply().await;
    let start = now_ms();
    ws.unread().await;
    let reply = ws.unread_reply().await;
    assert!(reply.status.is_some());
    assert!(reply.unread.is_empty());
    let ts = reply.timestamp.unwrap();
    assert!(ts >= start && ts <= now_ms());
}

#[tokio::test]
async fn the_statistics_sync_gets_no_reply_and_a_chat_send_a_generic_failure() {
    let t = spawn_app().await;
    let token = t.user("alice").await;
    let mut ws = t.online("alice", &token, "r1").await;

    ws.send(sync(CommSyncUl {
        meta: Some(Meta {
            id: Some(now_ms()),
            ns: Some(0),
            payload: Some(vec![8, 0]),
            ..Default::default()
        }),
        ..Default::default()
    }))
    .await;
    ws.quiet().await;

    ws.send(sync(CommSyncUl {
        meta: Some(Meta {
            id: Some(530_654_237_629),
            to: Some(jid(&t.app_key(), "bob")),
            ns: Some(1),
            ..Default::default()
        }),
        ..Default::default()
    }))
    .await;
    let ack = ws.sync_reply().await;
    assert_eq!(ack.meta_id, Some(530_654_237_629));
    assert_eq!(ack.status.unwrap().error_code, Some(1));

    // A pull of any queue ends at once (no messaging yet).
    ws.send(sync(CommSyncUl {
        queue: Some(jid(&t.app_key(), "bob")),
        ..Default::default()
    }))
    .await;
    let end = ws.sync_reply().await;
    assert!(end.status.is_some());
    assert_eq!(end.is_last, Some(true));
    assert_eq!(end.queue.unwrap().name.as_deref(), Some("bob"));
}

fn sync(ul: CommSyncUl) -> MSync {
    MSync {
        command: Some(Command::Sync as i32),
        payload: Some(ul.encode_to_vec()),
        ..Default::default()
    }
}

fn jid(app_key: &str, name: &str) -> Jid {
    Jid {
        app_key: Some(app_key.into()),
        name: Some(name.into()),
        domain: Some("easemob.com".into()),
        client_resource: None,
    }
}

#[tokio::test]
async fn logout_takes_the_device_offline_at_once() {
    let t = spawn_app().await;
    let token = t.user("alice").await;
    let mut ws = t.online("alice", &token, "r1").await;
    let mut other = t.online("alice", &token, "r2").await;

    ws.logout().await;
    let reply = ws.frame().await;
    assert_eq!(reply.command, Some(Command::Logout as i32));
    assert_eq!(t.devices("alice").await, vec!["r2"]);
    assert_eq!(ws.closed().await, (1000, "logout".into()));

    other.logout().await;
    other.frame().await;
    assert!(t.devices("alice").await.is_empty());
    assert_eq!(t.accounts.sessions().connection_count(), 0);
}

#[tokio::test]
async fn a_silent_socket_is_closed_after_the_idle_timeout_and_heartbeats_keep_it() {
    let t = spawn_app_with(|s| s.ws.idle_timeout_secs = 1).await;
    let token = t.user("alice").await;
    let mut busy = t.online("alice", &token, "busy").await;
    let mut silent = t.online("alice", &token, "silent").await;

    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        busy.unread().await;
        busy.unread_reply().await;
    }

    assert_eq!(silent.closed().await, (1001, "idle timeout".into()));
    assert_eq!(t.devices("alice").await, vec!["busy"]);
}

// ----- multi-device ------------------------------------------------------------------

#[tokio::test]
async fn the_fifth_web_login_kicks_the_first_with_206_while_a_custom_platform_stays() {
    let t = spawn_app().await;
    let token = t.user("alice").await;
    let mut web = Vec::new();
    for i in 0..4 {
        web.push(t.online("alice", &token, &format!("web{i}")).await);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut custom_frame = LoginFrame::web(&t.app_key(), "alice", &token, "custom7_x");
    custom_frame.os_type = OS_CUSTOM;
    custom_frame.os_custom = Some(7);
    let (mut custom, reply) = t.login_with(custom_frame).await;
    assert_eq!(status_of(&reply).0, 0);

    let mut fifth = LoginFrame::web(&t.app_key(), "alice", &token, "web4");
    fifth.ext = Some("from the fifth".into());
    let (_fifth, reply) = t.login_with(fifth).await;
    assert_eq!(status_of(&reply).0, 0);

    assert_eq!(web[0].kicked().await, (2, "from the fifth".into()));
    for ws in &mut web[1..] {
        ws.quiet().await;
    }
    custom.quiet().await;
    let mut devices = t.devices("alice").await;
    devices.sort();
    assert_eq!(devices, ["custom7_x", "web1", "web2", "web3", "web4"]);
}

#[tokio::test]
async fn a_per_platform_cap_overrides_the_default_and_0_closes_a_platform() {
    let t = spawn_app().await;
    t.set_platform_caps(&[("web", 1), ("custom3", 0)]).await;
    let token = t.user("alice").await;
    let mut first = t.online("alice", &token, "web1").await;
    let _second = t.online("alice", &token, "web2").await;
    assert_eq!(first.kicked().await.0, 2, "the web cap is 1 here");

    let mut closed = LoginFrame::web(&t.app_key(), "alice", &token, "custom3_x");
    closed.os_type = OS_CUSTOM;
    closed.os_custom = Some(3);
    assert_eq!(
        refused(&t, closed).await.0,
        13,
        "TOO_MANY_DEVICES (SDK 214)"
    );
    // Other platforms keep the default of 4.
    let mut other = LoginFrame::web(&t.app_key(), "alice", &token, "custom4_x");
    other.os_type = OS_CUSTOM;
    other.os_custom = Some(4);
    let (_ok, reply) = t.login_with(other).await;
    assert_eq!(status_of(&reply).0, 0);
    let mut devices = t.devices("alice").await;
    devices.sort();
    assert_eq!(devices, ["custom4_x", "web2"]);
}

#[tokio::test]
async fn the_refuse_policy_gives_214_and_keeps_the_devices() {
    let t = spawn_app().await;
    t.set_devices(2, KickPolicy::RefuseNewcomer).await;
    let token = t.user("alice").await;
    let mut a = t.online("alice", &token, "a").await;
    let _b = t.online("alice", &token, "b").await;

    let frame = LoginFrame::web(&t.app_key(), "alice", &token, "c");
    assert_eq!(refused(&t, frame).await, (13, "too many devices".into()));
    a.quiet().await;
    assert_eq!(t.devices("alice").await.len(), 2);
}

#[tokio::test]
async fn the_same_resource_reconnecting_replaces_itself_and_counts_once() {
    let t = spawn_app().await;
    t.set_devices(1, KickPolicy::RefuseNewcomer).await;
    let token = t.user("alice").await;
    let mut old = t.online("alice", &token, "web").await;

    let mut frame = LoginFrame::web(&t.app_key(), "alice", &token, "web");
    frame.ext = Some("second tab".into());
    let (mut new, _) = t.login_with(frame).await;

    // The old connection is told (206, with the newcomer's extension, see docs/msync.md)
    // and closed.
    assert_eq!(old.kicked().await, (2, "second tab".to_owned()));
    assert_eq!(t.devices("alice").await, vec!["web"]);
    new.unread().await;
    new.unread_reply().await;
    assert_eq!(t.accounts.sessions().connection_count(), 1);
}

#[tokio::test]
async fn racing_logins_for_the_last_slot_leave_exactly_the_cap() {
    let t = std::sync::Arc::new(spawn_app().await);
    t.set_devices(3, KickPolicy::RefuseNewcomer).await;
    let token = t.user("alice").await;
    let _first = t.online("alice", &token, "first").await;

    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let t = t.clone();
            let token = token.clone();
            tokio::spawn(async move {
                let (ws, reply) = t.login("alice", &token, &format!("racer{i}")).await;
                (status_of(&reply).0, ws)
            })
        })
        .collect();
    let mut admitted = 0;
    let mut sockets = Vec::new();
    for task in tasks {
        let (code, ws) = task.await.unwrap();
        match code {
            0 => admitted += 1,
            13 => {}
            other => panic!("unexpected status {other}"),
        }
        sockets.push(ws);
    }
    assert_eq!(admitted, 2);
    assert_eq!(t.devices("alice").await.len(), 3);
}

#[tokio::test]
async fn settings_changes_apply_to_the_next_login_without_restart() {
    let t = spawn_app().await;
    let token = t.user("alice").await;
    let _a = t.online("alice", &token, "a").await;
    t.set_devices(1, KickPolicy::RefuseNewcomer).await;
    let frame = LoginFrame::web(&t.app_key(), "alice", &token, "b");
    assert_eq!(refused(&t, frame).await.0, 13);
}

// ----- kicks -------------------------------------------------------------------------

#[tokio::test]
async fn force_offline_kicks_every_device_with_217() {
    let t = spawn_app().await;
    let token = t.user("alice").await;
    let mut a = t.online("alice", &token, "a").await;
    let mut b = t.online("alice", &token, "b").await;
    assert_eq!(t.accounts.disconnect_all(&t.app, "alice").await.unwrap(), 2);
    assert_eq!(a.kicked().await.0, 4);
    assert_eq!(b.kicked().await.0, 4);
    assert!(t.devices("alice").await.is_empty());
    // Tokens stay valid: the user may log in again.
    t.online("alice", &token, "a").await;
}

#[tokio::test]
async fn force_offline_of_one_resource_kicks_only_it() {
    let t = spawn_app().await;
    let token = t.user("alice").await;
    let mut a = t.online("alice", &token, "a").await;
    let mut b = t.online("alice", &token, "b").await;
    assert!(t
        .accounts
        .disconnect_resource(&t.app, "alice", "a")
        .await
        .unwrap());
    assert_eq!(a.kicked().await.0, 4);
    b.quiet().await;
    assert_eq!(t.devices("alice").await, vec!["b"]);
}

#[tokio::test]
async fn a_password_change_kicks_with_216_and_old_tokens_fail() {
    let t = spawn_app().await;
    let token = t.user("alice").await;
    let mut a = t.online("alice", &token, "a").await;
    t.accounts
        .change_password(&t.app, "alice", "newpass")
        .await
        .unwrap();
    assert_eq!(a.kicked().await.0, 3);
    let frame = LoginFrame::web(&t.app_key(), "alice", &token, "a");
    assert_eq!(refused(&t, frame).await, (1, INVALID_TOKEN.into()));
}

#[tokio::test]
async fn deleting_the_user_kicks_with_207() {
    let t = spawn_app().await;
    let token = t.user("alice").await;
    let mut a = t.online("alice", &token, "a").await;
    t.accounts.delete_user(&t.app, "alice").await.unwrap();
    assert_eq!(a.kicked().await.0, 1);
}

#[tokio::test]
async fn deactivation_kicks_with_217() {
    let t = spawn_app().await;
    let token = t.user("alice").await;
    let mut a = t.online("alice", &token, "a").await;
    t.accounts
        .set_activated(&t.app, "alice", false)
        .await
        .unwrap();
    assert_eq!(a.kicked().await.0, 4);
    assert!(t.devices("alice").await.is_empty());
}

#[tokio::test]
async fn shutdown_closes_sessions_with_1001_and_no_kick_meta() {
    let t = spawn_app().await;
    let token = t.user("alice").await;
    let mut a = t.online("alice", &token, "a").await;
    t.shutdown();
    assert_eq!(a.closed().await, (1001, "server shutting down".into()));
}

// ----- bad input ---------------------------------------------------------------------

/// A logged-in bystander that must be unaffected by someone else's bad input.
async fn bystander(t: &TestApp) -> Ws {
    let token = t.user("carol").await;
    t.online("carol", &token, "c").await
}

async fn still_fine(ws: &mut Ws) {
    ws.unread().await;
    assert!(ws.unread_reply().await.status.is_some());
}

#[tokio::test]
async fn undecodable_frames_close_only_that_connection() {
    let t = spawn_app().await;
    let mut carol = bystander(&t).await;
    let mut ws = t.connect().await;
    ws.send_raw(Message::Binary(vec![0xff, 0xff, 0xff, 0x0f].into()))
        .await;
    assert_eq!(ws.closed().await, (1007, "undecodable frame".into()));
    still_fine(&mut carol).await;
}

#[tokio::test]
async fn an_undecodable_provision_payload_gets_wrong_parameter() {
    let t = spawn_app().await;
    let mut ws = t.connect().await;
    ws.send(MSync {
        command: Some(Command::Provision as i32),
        payload: Some(vec![0xff, 0xff]),
        ..Default::default()
    })
    .await;
    assert_eq!(status_of(&ws.provision_reply().await).0, 4);
    assert_eq!(ws.closed().await.0, 1000);
}

#[tokio::test]
async fn text_frames_close_with_1003() {
    let t = spawn_app().await;
    let mut carol = bystander(&t).await;
    let mut ws = t.connect().await;
    ws.send_raw(Message::Text("hello".into())).await;
    assert_eq!(ws.closed().await.0, 1003);
    still_fine(&mut carol).await;
}

#[tokio::test]
async fn oversize_frames_close_with_1009() {
    let t = spawn_app_with(|s| s.ws.max_frame_bytes = 4096).await;
    let mut carol = bystander(&t).await;
    let mut ws = t.connect().await;
    ws.send_raw(Message::Binary(vec![0u8; 5000].into())).await;
    match ws.recv().await {
        Received::Closed(Some((code, _))) => assert_eq!(code, 1009),
        // The server may drop the connection without reading the rest of the frame.
        Received::Closed(None) => {}
        other => panic!("expected a close, got {other:?}"),
    }
    still_fine(&mut carol).await;
}

#[tokio::test]
async fn sync_before_login_is_refused() {
    let t = spawn_app().await;
    let mut ws = t.connect().await;
    ws.send(sync(CommSyncUl::default())).await;
    assert_eq!(ws.closed().await, (1008, "login first".into()));
}

#[tokio::test]
async fn unknown_and_server_only_commands_are_refused() {
    let t = spawn_app().await;
    for command in [2, 9] {
        let mut ws = t.connect().await;
        ws.send(MSync {
            command: Some(command),
            ..Default::default()
        })
        .await;
        assert_eq!(ws.closed().await, (1008, "unexpected command".into()));
    }
}

#[tokio::test]
async fn a_second_provision_on_a_logged_in_socket_is_refused_and_closed() {
    let t = spawn_app().await;
    let token = t.user("alice").await;
    let mut ws = t.online("alice", &token, "r1").await;
    ws.send(LoginFrame::web(&t.app_key(), "alice", &token, "r2").build())
        .await;
    assert_eq!(status_of(&ws.provision_reply().await).0, 4);
    assert_eq!(ws.closed().await, (1008, "already logged in".into()));
    assert!(t.devices("alice").await.is_empty());
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused_at_upgrade() {
    let t = spawn_app_with(|s| s.ws.max_connections = 1).await;
    let _first = t.connect().await;
    let second = tokio_tungstenite::connect_async(t.ws_url.as_str()).await;
    assert!(second.is_err());
}

// ----- delivery: notice and pull first, pushes once caught up --------------------------

/// The text of the single TEXT content of a delivered CHAT meta.
fn text_of(meta: &Meta) -> String {
    use ferrim_proto::pb::MessageBody;
    let body = MessageBody::decode(meta.payload.as_deref().unwrap()).unwrap();
    body.contents[0].text.clone().unwrap_or_default()
}

/// alice and bob online; alice sends, bob reads his inbox queue with raw frames.
struct Chat {
    t: TestApp,
    alice: Ws,
    bob: Ws,
    bob_token: String,
    queue: Jid,
}

impl Chat {
    async fn start() -> Self {
        let t = spawn_app().await;
        let alice_token = t.user("alice").await;
        let bob_token = t.user("bob").await;
        let alice = t.online("alice", &alice_token, "a1").await;
        let bob = t.online("bob", &bob_token, "b1").await;
        let queue = jid(&t.app_key(), "bob");
        Self {
            t,
            alice,
            bob,
            bob_token,
            queue,
        }
    }

    /// alice → bob, acknowledged.
    async fn send(&mut self, meta_id: u64, text: &str) {
        let frame =
            ferrim_client::frames::text_frame(1, meta_id, &self.t.app_key(), "alice", "bob", text);
        self.alice.send_raw(Message::Binary(frame.into())).await;
        assert_eq!(self.alice.sync_reply().await.meta_id, Some(meta_id));
    }

    /// bob pulls his queue (`key` acknowledges up to it).
    async fn pull(&mut self, key: Option<u64>) {
        self.bob
            .send(sync(CommSyncUl {
                queue: Some(self.queue.clone()),
                key,
                ..Default::default()
            }))
            .await;
    }

    /// Bob had nothing waiting at login, so he is caught up from the start: the first
    /// message comes pushed, as an unsolicited batch, and his ack ends the pushed cycle
    /// without a frame (spec §8.3). Returns the batch's key.
    async fn catch_up(&mut self, meta_id: u64) -> u64 {
        self.send(meta_id, "one").await;
        let push = self.bob.frame().await;
        assert_eq!(
            push.command,
            Some(Command::Sync as i32),
            "pushed, no NOTICE"
        );
        let batch = ferrim_proto::pb::CommSyncDl::decode(push.payload.as_deref().unwrap()).unwrap();
        assert_eq!(batch.is_last, Some(false));
        assert_eq!(batch.metas.len(), 1);
        assert_eq!(text_of(&batch.metas[0]), "one");
        let key = batch.next_key.unwrap();
        self.pull(Some(key)).await;
        self.bob.quiet().await;
        key
    }
}

#[tokio::test]
async fn a_device_with_messages_waiting_at_login_is_told_of_new_ones_by_a_notice() {
    let t = spawn_app().await;
    let alice_token = t.user("alice").await;
    let bob_token = t.user("bob").await;
    let mut alice = t.online("alice", &alice_token, "a1").await;
    let send = |meta_id: u64, text: &str| {
        ferrim_client::frames::text_frame(1, meta_id, &t.app_key(), "alice", "bob", text)
    };
    alice
        .send_raw(Message::Binary(send(1, "zero").into()))
        .await;
    assert_eq!(alice.sync_reply().await.meta_id, Some(1));
    // Bob logs in with "zero" waiting and has not pulled it yet.
    let mut bob = t.online("bob", &bob_token, "b1").await;
    alice.send_raw(Message::Binary(send(2, "one").into())).await;
    assert_eq!(alice.sync_reply().await.meta_id, Some(2));
    assert_eq!(bob.frame().await.command, Some(Command::Notice as i32));
    let queue = jid(&t.app_key(), "bob");
    let pull = |key| {
        sync(CommSyncUl {
            queue: Some(queue.clone()),
            key,
            ..Default::default()
        })
    };
    bob.send(pull(None)).await;
    let batch = bob.sync_reply().await;
    assert_eq!(
        batch.metas.iter().map(text_of).collect::<Vec<_>>(),
        ["zero", "one"]
    );
    // The pulled cycle ends with an empty isLast:true.
    bob.send(pull(batch.next_key)).await;
    let end = bob.sync_reply().await;
    assert_eq!(end.is_last, Some(true));
    assert!(end.metas.is_empty());
    // Caught up now: the next one is pushed.
    alice.send_raw(Message::Binary(send(3, "two").into())).await;
    assert_eq!(alice.sync_reply().await.meta_id, Some(3));
    let push = bob.frame().await;
    assert_eq!(push.command, Some(Command::Sync as i32));
}

#[tokio::test]
async fn a_caught_up_device_gets_new_messages_pushed_without_a_notice_or_an_end_frame() {
    let mut c = Chat::start().await;
    let key = c.catch_up(101).await;

    // Caught up: the next message comes as an unsolicited batch on bob's own queue.
    c.send(102, "two").await;
    let push = c.bob.frame().await;
    assert_eq!(push.command, Some(Command::Sync as i32), "no NOTICE first");
    let push = ferrim_proto::pb::CommSyncDl::decode(push.payload.as_deref().unwrap()).unwrap();
    assert!(push.status.is_some(), "the SDK dereferences status");
    assert_eq!(push.queue.as_ref().unwrap().name.as_deref(), Some("bob"));
    assert_eq!(push.is_last, Some(false));
    assert_eq!(push.metas.len(), 1);
    assert_eq!(text_of(&push.metas[0]), "two");
    let key2 = push.next_key.unwrap();
    assert!(key2 > key, "keys strictly increase");

    // A message arriving before the push is acknowledged waits for the ack's answer.
    c.send(103, "three").await;
    c.bob.quiet().await;
    c.pull(Some(key2)).await;
    let next = c.bob.sync_reply().await;
    assert_eq!(next.is_last, Some(false));
    assert_eq!(text_of(&next.metas[0]), "three");

    // Acknowledging the last one ends the pushed cycle without a frame.
    c.pull(next.next_key).await;
    c.bob.quiet().await;

    // Nothing is delivered twice after a reconnect: everything was acknowledged.
    drop(c.bob);
    let mut bob = c.t.online("bob", &c.bob_token, "b1").await;
    bob.unread().await;
    assert!(bob.unread_reply().await.unread.is_empty());
}

#[tokio::test]
async fn a_batch_the_device_never_acknowledges_is_offered_again_with_the_next_message() {
    let mut c = Chat::start().await;
    c.catch_up(201).await;

    // A push that bob drops without acknowledging (what the SDK does with a batch whose
    // nextKey it has seen before).
    c.send(202, "two").await;
    let dropped = c.bob.sync_reply().await;
    assert_eq!(text_of(&dropped.metas[0]), "two");

    // Long after, the next message is announced again, and the pull offers both, ending
    // with a new key.
    tokio::time::sleep(Duration::from_millis(5_300)).await;
    c.send(203, "three").await;
    assert_eq!(c.bob.frame().await.command, Some(Command::Notice as i32));
    c.pull(None).await;
    let again = c.bob.sync_reply().await;
    let texts: Vec<String> = again.metas.iter().map(text_of).collect();
    assert_eq!(texts, ["two", "three"]);
    assert!(again.next_key > dropped.next_key);
}

#[tokio::test]
async fn a_message_held_behind_an_unacknowledged_batch_is_announced_once_the_batch_stalls() {
    let mut c = Chat::start().await;
    c.catch_up(301).await;

    // bob drops a push, and the next message arrives while that batch is still young, so
    // it waits for the ack that never comes.
    c.send(302, "two").await;
    let dropped = c.bob.sync_reply().await;
    c.send(303, "three").await;
    c.bob.quiet().await;

    // Nothing else happens, yet once the batch counts as stalled the message is announced.
    let announced = c
        .bob
        .recv_within(Duration::from_secs(8))
        .await
        .expect("a NOTICE once the unacknowledged batch stalls");
    let Received::Frame(frame) = announced else {
        panic!("expected a frame, got {announced:?}");
    };
    assert_eq!(frame.command, Some(Command::Notice as i32));
    c.pull(None).await;
    let again = c.bob.sync_reply().await;
    let texts: Vec<String> = again.metas.iter().map(text_of).collect();
    assert_eq!(texts, ["two", "three"]);
    assert!(again.next_key > dropped.next_key);
}
