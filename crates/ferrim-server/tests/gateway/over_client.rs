//! The login and multi-device rules again, through the `ferrim-client` library (what the
//! benchmark and Rust users drive), not raw frames.

use std::time::Duration;

use ferrim_client::{Client, ClientError, Event, Events, LoginOptions};
use ferrim_core::app::KickPolicy;
use ferrim_core::clock::now_ms;

use crate::helpers::{spawn_app, TestApp};

const WAIT: Duration = Duration::from_secs(5);

fn options(t: &TestApp, user: &str, token: &str, resource: &str) -> LoginOptions {
    LoginOptions::new(t.app_key(), user, token).with_resource(resource)
}

async fn kicked(events: &mut Events) -> u16 {
    events
        .wait_for(WAIT, |e| match e {
            Event::Kicked { code, .. } => Some(code),
            _ => None,
        })
        .await
        .expect("a kick arrives")
}

#[tokio::test]
async fn client_login_reports_the_token_expiry_and_logs_out() {
    let t = spawn_app().await;
    t.user("alice").await;
    let token = t.token("alice", Some(600)).await;
    let (client, _events) = Client::connect(&t.ws_url, options(&t, "alice", &token, "r1"))
        .await
        .expect("login");

    let expiry = client.session().expires_at_ms.expect("expiry sent");
    assert!(expiry.abs_diff(now_ms() + 600_000) < 5_000);
    assert_eq!(client.session().resource, "r1");
    assert_eq!(t.devices("alice").await, ["r1"]);

    client.logout().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        t.devices("alice").await.is_empty(),
        "offline right after logout"
    );
}

#[tokio::test]
async fn client_login_refusals_carry_the_sdk_codes() {
    let t = spawn_app().await;
    t.user("alice").await;
    let refused = |r: Result<(Client, Events), ClientError>| match r {
        Err(ClientError::LoginRefused { code, reason }) => (code, reason),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("login should be refused"),
    };
    let wrong = Client::connect(&t.ws_url, options(&t, "alice", "YWMtnope", "r")).await;
    assert_eq!(
        refused(wrong),
        (
            1,
            "Sorry, token or password does not match login info".into()
        )
    );
    let token = t.token("alice", None).await;
    let unknown = Client::connect(&t.ws_url, options(&t, "ghost", &token, "r")).await;
    assert_eq!(refused(unknown).0, 1);
}

#[tokio::test]
async fn fifth_web_login_kicks_the_first_with_206_through_the_client() {
    let t = spawn_app().await;
    t.user("alice").await;
    let token = t.token("alice", None).await;
    let mut devices = Vec::new();
    for i in 0..4 {
        devices.push(
            Client::connect(&t.ws_url, options(&t, "alice", &token, &format!("w{i}")))
                .await
                .unwrap(),
        );
    }
    let mut opts = options(&t, "alice", &token, "w4");
    opts.login_ext = Some("newcomer".into());
    let _fifth = Client::connect(&t.ws_url, opts).await.unwrap();

    let first = &mut devices[0].1;
    let reason = first
        .wait_for(WAIT, |e| match e {
            Event::Kicked { code, reason, .. } => Some((code, reason)),
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(reason, (206, Some("newcomer".into())));
    let mut online = t.devices("alice").await;
    online.sort();
    assert_eq!(online, ["w1", "w2", "w3", "w4"]);
}

#[tokio::test]
async fn racing_client_logins_for_the_last_slot_leave_exactly_the_cap() {
    let t = spawn_app().await;
    t.user("alice").await;
    t.set_devices(2, KickPolicy::RefuseNewcomer).await;
    let token = t.token("alice", None).await;
    let first = Client::connect(&t.ws_url, options(&t, "alice", &token, "held"))
        .await
        .unwrap();

    let attempts: Vec<_> = (0..8)
        .map(|i| {
            let opts = options(&t, "alice", &token, &format!("racer{i}"));
            let url = t.ws_url.clone();
            tokio::spawn(async move { Client::connect(&url, opts).await })
        })
        .collect();
    let mut admitted = Vec::new();
    let mut refused = 0;
    for a in attempts {
        match a.await.unwrap() {
            Ok(pair) => admitted.push(pair),
            Err(ClientError::LoginRefused { code: 13, .. }) => refused += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }

    assert_eq!(admitted.len(), 1, "one racer takes the last slot");
    assert_eq!(refused, 7);
    assert_eq!(t.devices("alice").await.len(), 2);
    drop(first);
}

#[tokio::test]
async fn admin_kicks_reach_client_devices_with_their_codes() {
    let t = spawn_app().await;
    t.user("alice").await;
    let token = t.token("alice", None).await;
    let (_a, mut a_events) = Client::connect(&t.ws_url, options(&t, "alice", &token, "a"))
        .await
        .unwrap();
    let (_b, mut b_events) = Client::connect(&t.ws_url, options(&t, "alice", &token, "b"))
        .await
        .unwrap();

    assert!(t
        .accounts
        .disconnect_resource(&t.app, "alice", "a")
        .await
        .unwrap());
    assert_eq!(kicked(&mut a_events).await, 217);

    t.accounts
        .change_password(&t.app, "alice", "another1")
        .await
        .unwrap();
    assert_eq!(kicked(&mut b_events).await, 216);
    let stale = Client::connect(&t.ws_url, options(&t, "alice", &token, "c")).await;
    assert!(matches!(
        stale,
        Err(ClientError::LoginRefused { code: 1, .. })
    ));
}

#[tokio::test]
async fn a_malformed_frame_closes_only_that_connection() {
    let t = spawn_app().await;
    t.user("alice").await;
    t.user("bob").await;
    let (bad, mut bad_events) = Client::connect(
        &t.ws_url,
        options(&t, "alice", &t.token("alice", None).await, "a"),
    )
    .await
    .unwrap();
    let (good, _good_events) = Client::connect(
        &t.ws_url,
        options(&t, "bob", &t.token("bob", None).await, "b"),
    )
    .await
    .unwrap();

    bad.send_raw(vec![0xff, 0xff, 0xff, 0x01]).await.unwrap();
    bad_events
        .wait_for(WAIT, |e| {
            matches!(e, Event::Disconnected { .. }).then_some(())
        })
        .await
        .expect("the bad connection is closed");
    good.heartbeat()
        .await
        .expect("the other connection still works");
    assert_eq!(t.devices("bob").await, ["b"]);
}
