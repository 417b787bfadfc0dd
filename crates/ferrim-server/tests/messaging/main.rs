//! One-to-one messaging over msync, end to end through the Rust client.

#[path = "../common/mod.rs"]
mod common;
mod crash;
mod helpers;

use std::collections::HashMap;
use std::time::Duration;

use ferrim_client::{ClientError, Event};
use ferrim_core::messaging::HistoryQuery;
use ferrim_proto::pb::message_body::{content, Content};
use ferrim_proto::pb::MessageBody;
use helpers::{assert_quiet, collect, spawn_app, spawn_app_with, WAIT};

#[tokio::test]
async fn online_message_is_acked_then_delivered_with_the_same_id() {
    let app = spawn_app().await;
    app.users(&["alice", "bob"]).await;
    let (alice, _a) = app.login("alice", "a1").await;
    let (_bob, mut b) = app.login("bob", "b1").await;

    let ack = alice.send_text("bob", "hi bob").await.expect("acked");
    let got = b.next_message(WAIT).await.expect("delivered");

    assert_eq!(got.server_id, ack.server_id);
    assert_eq!(got.timestamp, ack.timestamp);
    assert_eq!((got.from.as_str(), got.to.as_str()), ("alice", "bob"));
    assert_eq!(got.from_resource.as_deref(), Some("a1"));
    assert_eq!(got.text(), Some("hi bob"));
}

#[tokio::test]
async fn offline_messages_arrive_once_at_login_with_sync_events() {
    let app = spawn_app().await;
    app.users(&["alice", "bob"]).await;
    let (alice, _a) = app.login("alice", "a1").await;
    for i in 0..3 {
        alice.send_text("bob", &format!("m{i}")).await.unwrap();
    }

    let (bob, mut b) = app.login("bob", "b1").await;
    let mut started = false;
    let mut texts = Vec::new();
    while texts.len() < 3 {
        match b.recv_timeout(WAIT).await.expect("event") {
            Event::OfflineSyncStart => started = true,
            Event::Message(m) => texts.push(m.text().unwrap_or_default().to_owned()),
            _ => {}
        }
    }
    b.wait_for(WAIT, |e| {
        matches!(e, Event::OfflineSyncFinish).then_some(())
    })
    .await
    .expect("offline sync finishes");
    assert!(started);
    assert_eq!(texts, ["m0", "m1", "m2"]);

    // Another login, of a new device, does not get them again.
    bob.logout().await.unwrap();
    let (_bob2, mut b2) = app.login("bob", "b2").await;
    assert_quiet(&mut b2).await;
}

#[tokio::test]
async fn a_resend_of_the_same_client_id_is_stored_and_delivered_once() {
    let app = spawn_app().await;
    app.users(&["alice", "bob"]).await;
    let (alice, _a) = app.login("alice", "a1").await;
    let (_bob, mut b) = app.login("bob", "b1").await;

    let first = alice.send_text_with_id(777, "bob", "once").await.unwrap();
    let again = alice.send_text_with_id(777, "bob", "once").await.unwrap();

    assert_eq!(first.server_id, again.server_id);
    assert_eq!(first.timestamp, again.timestamp);
    let got = collect(&mut b, 1).await;
    assert_eq!(got[0].server_id, first.server_id);
    assert_quiet(&mut b).await;
}

#[tokio::test]
async fn concurrent_senders_to_one_recipient_lose_nothing_and_keep_each_senders_order() {
    const SENDERS: usize = 4;
    const EACH: usize = 150;
    let app = spawn_app().await;
    let names: Vec<String> = (0..SENDERS).map(|i| format!("s{i}")).collect();
    let mut all: Vec<&str> = names.iter().map(String::as_str).collect();
    all.push("bob");
    app.users(&all).await;
    let (_bob, mut b) = app.login("bob", "b1").await;

    let mut tasks = Vec::new();
    for name in &names {
        let (client, events) = app.login(name, "r").await;
        tasks.push(tokio::spawn(async move {
            let _events = events;
            for i in 0..EACH {
                client
                    .send_text("bob", &i.to_string())
                    .await
                    .expect("acked");
            }
        }));
    }
    let received = collect(&mut b, SENDERS * EACH).await;
    for t in tasks {
        t.await.unwrap();
    }

    let mut per_sender: HashMap<String, Vec<usize>> = HashMap::new();
    for m in &received {
        per_sender
            .entry(m.from.clone())
            .or_default()
            .push(m.text().unwrap().parse().unwrap());
    }
    for name in &names {
        assert_eq!(
            per_sender[name],
            (0..EACH).collect::<Vec<_>>(),
            "order of {name}"
        );
    }
    let mut ids: Vec<u64> = received.iter().map(|m| m.server_id).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "IDs increase in delivery order"
    );
    ids.dedup();
    assert_eq!(ids.len(), SENDERS * EACH, "no duplicates");
    assert_quiet(&mut b).await;
}

#[tokio::test]
async fn the_senders_other_devices_get_a_copy_and_the_sending_device_does_not() {
    let app = spawn_app().await;
    app.users(&["alice", "bob"]).await;
    let (alice1, mut a1) = app.login("alice", "a1").await;
    let (_alice2, mut a2) = app.login("alice", "a2").await;

    let ack = alice1.send_text("bob", "copy me").await.unwrap();

    let copy = a2.next_message(WAIT).await.unwrap();
    assert_eq!(copy.server_id, ack.server_id);
    assert_eq!((copy.from.as_str(), copy.to.as_str()), ("alice", "bob"));
    assert_eq!(copy.from_resource.as_deref(), Some("a1"));
    assert_quiet(&mut a1).await;
}

#[tokio::test]
async fn a_returning_device_catches_up_but_a_new_device_gets_no_old_sent_messages() {
    let app = spawn_app().await;
    app.users(&["alice", "bob"]).await;
    let (alice_phone, _p) = app.login("alice", "phone").await;
    let (alice_web, mut w) = app.login("alice", "web").await;
    alice_phone.send_text("bob", "one").await.unwrap();
    assert_eq!(w.next_message(WAIT).await.unwrap().text(), Some("one"));
    alice_web.logout().await.unwrap();

    alice_phone.send_text("bob", "two").await.unwrap();
    // Let the device cursor flush (the writer flushes acknowledged cursors every 100 ms).
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (_web_again, mut w2) = app.login("alice", "web").await;
    let caught_up = collect(&mut w2, 1).await;
    assert_eq!(caught_up[0].text(), Some("two"));
    assert_quiet(&mut w2).await;

    let (_tablet, mut t) = app.login("alice", "tablet").await;
    assert_quiet(&mut t).await;
}

#[tokio::test]
async fn receipts_reach_the_original_sender() {
    let app = spawn_app().await;
    app.users(&["alice", "bob"]).await;
    let (alice, mut a) = app.login("alice", "a1").await;
    let (bob, mut b) = app.login("bob", "b1").await;
    let ack = alice.send_text("bob", "read me").await.unwrap();
    let got = b.next_message(WAIT).await.unwrap();

    bob.send_delivery_ack("alice", got.server_id).await.unwrap();
    bob.send_read_ack("alice", got.server_id).await.unwrap();

    let delivered = a
        .wait_for(WAIT, |e| match e {
            Event::DeliveryAck(r) => Some(r),
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(delivered.acked_id, ack.server_id);
    assert_eq!(delivered.from, "bob");
    let read = a
        .wait_for(WAIT, |e| match e {
            Event::ReadAck(r) => Some(r),
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(read.acked_id, ack.server_id);
}

#[tokio::test]
async fn sends_to_unknown_users_and_oversize_sends_are_refused_and_the_socket_stays_usable() {
    let app = spawn_app_with(|s| s.ws.max_message_bytes = 1024).await;
    app.users(&["alice", "bob"]).await;
    let (alice, _a) = app.login("alice", "a1").await;
    let (_bob, mut b) = app.login("bob", "b1").await;

    match alice.send_text("nobody", "hello?").await {
        Err(ClientError::SendRefused { code, reason }) => {
            assert_eq!(code, 1);
            assert!(
                reason.contains("username") && reason.contains("doesn't exist!"),
                "{reason}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    match alice.send_text("bob", &"x".repeat(2000)).await {
        Err(ClientError::SendRefused { code, reason }) => {
            assert_eq!(code, 7);
            assert_eq!(reason, "Sorry, data is too large");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Bodies that would break the receiving SDK's decoding of its whole batch.
    let chat = |contents: Vec<Content>| MessageBody {
        r#type: Some(ferrim_proto::pb::message_body::Type::Chat as i32),
        contents,
        ..MessageBody::default()
    };
    assert_refused(
        alice.send_body("bob", chat(Vec::new())).await,
        "Sorry, format is incorrect",
    );
    let mut bad_ext = chat(vec![Content::default()]);
    bad_ext.ext.push(ferrim_proto::pb::KeyValue {
        key: Some("order".into()),
        r#type: Some(ferrim_proto::pb::key_value::ValueType::JsonString as i32),
        value: Some(ferrim_proto::pb::key_value::Value::StringValue(
            "{oops".into(),
        )),
    });
    assert_refused(
        alice.send_body("bob", bad_ext).await,
        "Sorry, format is incorrect",
    );
    alice.send_text("bob", "still here").await.unwrap();
    let got = collect(&mut b, 1).await;
    assert_eq!(got[0].text(), Some("still here"));
}

#[tokio::test]
async fn custom_and_location_messages_arrive_unchanged_and_spoofed_senders_are_rewritten() {
    let app = spawn_app().await;
    app.users(&["alice", "bob"]).await;
    let (alice, _a) = app.login("alice", "a1").await;
    let (_bob, mut b) = app.login("bob", "b1").await;
    let body = MessageBody {
        r#type: Some(ferrim_proto::pb::message_body::Type::Chat as i32),
        from: Some(ferrim_proto::pb::Jid {
            name: Some("mallory".into()),
            ..Default::default()
        }),
        contents: vec![Content {
            r#type: Some(content::Type::Location as i32),
            latitude: Some(39.9),
            longitude: Some(116.3),
            address: Some("somewhere".into()),
            ..Default::default()
        }],
        ..Default::default()
    };

    alice.send_body("bob", body).await.unwrap();

    let got = collect(&mut b, 1).await;
    assert_eq!(
        got[0].from, "alice",
        "the sender is who the socket authenticated"
    );
    let c = &got[0].body.contents[0];
    assert_eq!((c.latitude, c.longitude), (Some(39.9), Some(116.3)));
    assert_eq!(c.address.as_deref(), Some("somewhere"));
}

#[tokio::test]
async fn offline_keep_count_bounds_what_a_login_gets_but_history_keeps_everything() {
    let app = spawn_app().await;
    app.users(&["alice", "bob"]).await;
    let mut settings = app.app.settings.clone();
    settings.offline_keep_count = 3;
    let app_after = app
        .accounts
        .update_settings(&app.app, settings)
        .await
        .unwrap();
    let (alice, _a) = app.login("alice", "a1").await;
    for i in 0..5 {
        alice.send_text("bob", &format!("m{i}")).await.unwrap();
    }

    let (_bob, mut b) = app.login("bob", "b1").await;
    let got = collect(&mut b, 3).await;
    assert_eq!(
        got.iter().map(|m| m.text().unwrap()).collect::<Vec<_>>(),
        ["m2", "m3", "m4"],
        "the oldest are evicted first"
    );
    assert_quiet(&mut b).await;

    let alice_user = app.accounts.user(&app_after, "alice").await.unwrap();
    let bob_user = app.accounts.user(&app_after, "bob").await.unwrap();
    let history = app
        .messaging
        .history(
            app_after.id,
            &HistoryQuery {
                a: alice_user.id,
                b: bob_user.id,
                before: None,
                after: None,
                from_ms: None,
                to_ms: None,
                limit: 50,
                descending: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(history.len(), 5, "evicted messages stay in the history");
}

fn recall_of(message_id: u64) -> MessageBody {
    MessageBody {
        r#type: Some(ferrim_proto::pb::message_body::Type::Recall as i32),
        ack_message_id: Some(message_id),
        contents: vec![Content::default()],
        ..MessageBody::default()
    }
}

fn assert_refused(outcome: Result<ferrim_client::SendAck, ClientError>, expected: &str) {
    match outcome {
        Err(ClientError::SendRefused { code, reason }) => {
            assert_eq!(code, 1, "{reason}");
            assert_eq!(reason, expected);
        }
        other => panic!("expected the refusal {expected:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn only_the_sender_may_recall_and_only_within_the_time_limit() {
    let app = spawn_app_with(|s| s.ws.recall_time_limit_secs = 1).await;
    app.users(&["alice", "bob", "carol"]).await;
    let (alice, _a) = app.login("alice", "a1").await;
    let (bob, mut b) = app.login("bob", "b1").await;
    let (carol, _c) = app.login("carol", "c1").await;
    let sent = alice.send_text("bob", "regret this").await.unwrap();
    collect(&mut b, 1).await;

    // The recipient, a third user, and the sender naming another recipient may not.
    assert_refused(
        bob.send_body("alice", recall_of(sent.server_id)).await,
        "Sorry, You do not have permission",
    );
    assert_refused(
        carol.send_body("bob", recall_of(sent.server_id)).await,
        "Sorry, You do not have permission",
    );
    assert_refused(
        alice.send_body("carol", recall_of(sent.server_id)).await,
        "Sorry, You do not have permission",
    );
    assert_refused(
        alice.send_body("bob", recall_of(sent.server_id + 1)).await,
        "Sorry, message does not exist",
    );
    // A receipt is not a message one can recall.
    let receipt = bob.send_read_ack("alice", sent.server_id).await.unwrap();
    assert_refused(
        bob.send_body("alice", recall_of(receipt.server_id)).await,
        "Sorry, message does not exist",
    );

    // The sender may, and the recipient gets the recall.
    alice
        .send_body("bob", recall_of(sent.server_id))
        .await
        .unwrap();
    let got = collect(&mut b, 1).await;
    assert_eq!(got[0].body.ack_message_id, Some(sent.server_id));

    // Past the limit, not any more.
    let late = alice.send_text("bob", "too late to regret").await.unwrap();
    collect(&mut b, 1).await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_refused(
        alice.send_body("bob", recall_of(late.server_id)).await,
        "exceed recall time limit",
    );
}

fn edit_of(message_id: u64, text: &str) -> MessageBody {
    MessageBody {
        r#type: Some(ferrim_proto::pb::message_body::Type::Edit as i32),
        edit_message_id: Some(message_id),
        edit_scope: Some(ferrim_proto::pb::message_body::EditScope::Body as i32),
        contents: vec![Content {
            r#type: Some(content::Type::Text as i32),
            text: Some(text.into()),
            ..Content::default()
        }],
        ..MessageBody::default()
    }
}

#[tokio::test]
async fn edits_carry_their_count_are_limited_and_keep_the_content_type() {
    let app = spawn_app().await;
    app.users(&["alice", "bob"]).await;
    let (alice, _a) = app.login("alice", "a1").await;
    let (_bob, mut b) = app.login("bob", "b1").await;
    let sent = alice.send_text("bob", "v0").await.unwrap();
    collect(&mut b, 1).await;
    for n in 1..=10 {
        alice
            .send_body("bob", edit_of(sent.server_id, &format!("v{n}")))
            .await
            .unwrap();
        let got = collect(&mut b, 1).await;
        let meta: serde_json::Value =
            serde_json::from_str(got[0].body.meta.as_deref().unwrap()).unwrap();
        assert_eq!(meta["edit_msg"]["count"], n);
        assert_eq!(meta["edit_msg"]["sender"], "alice");
        assert_eq!(meta["edit_msg"]["operator"], "alice");
    }
    assert_refused(
        alice.send_body("bob", edit_of(sent.server_id, "v11")).await,
        "Sorry, edit limit reached",
    );
    // The stored original is the last edit.
    let stored = app
        .messaging
        .message(app.app.id, sent.server_id)
        .await
        .unwrap()
        .unwrap();
    let body = <MessageBody as ferrim_proto::Message>::decode(stored.payload.as_slice()).unwrap();
    assert_eq!(body.contents[0].text.as_deref(), Some("v10"));

    // A custom message is not edited into a text one.
    let custom = alice
        .send_body(
            "bob",
            MessageBody {
                r#type: Some(ferrim_proto::pb::message_body::Type::Chat as i32),
                contents: vec![Content {
                    r#type: Some(content::Type::Custom as i32),
                    custom_event: Some("e".into()),
                    ..Content::default()
                }],
                ..MessageBody::default()
            },
        )
        .await
        .unwrap();
    assert_refused(
        alice
            .send_body("bob", edit_of(custom.server_id, "text"))
            .await,
        "Sorry, format is incorrect",
    );
}
