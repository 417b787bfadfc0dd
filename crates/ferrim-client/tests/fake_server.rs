//! The client against a scripted fake msync server: each test plays the server side step by
//! step (tokio-tungstenite on 127.0.0.1:0) and asserts on every frame the client sends.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ferrim_client::pb::{
    m_sync::Command, message_body, meta::NameSpace, CommNotice, CommSyncDl, CommSyncUl,
    CommUnreadDl, Jid, Logout, MSync, MessageBody, Meta, MetaQueue, Provision, StatisticsBody,
    Status,
};
use ferrim_client::tungstenite::Message as WsMessage;
use ferrim_client::{
    Client, ClientError, Connection, DisconnectReason, Event, Events, LoginOptions,
};
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;

const APP: &str = "org#app";
const STEP: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(200);

struct FakeServer {
    listener: TcpListener,
    url: String,
}

impl FakeServer {
    async fn bind() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/ws", listener.local_addr().unwrap());
        FakeServer { listener, url }
    }

    async fn accept(&self) -> Peer {
        let (tcp, peer_addr) = tokio::time::timeout(STEP, self.listener.accept())
            .await
            .expect("client connects")
            .unwrap();
        let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        Peer { ws, peer_addr }
    }
}

/// The server's end of one client connection.
struct Peer {
    ws: WebSocketStream<TcpStream>,
    peer_addr: SocketAddr,
}

fn ok() -> Status {
    Status {
        error_code: Some(0),
        ..Status::default()
    }
}

fn user(name: &str, resource: Option<&str>) -> Jid {
    Jid {
        app_key: Some(APP.into()),
        name: Some(name.into()),
        domain: Some("easemob.com".into()),
        client_resource: resource.map(Into::into),
    }
}

fn name_only(name: &str) -> Option<Jid> {
    Some(Jid {
        name: Some(name.into()),
        ..Jid::default()
    })
}

fn chat_meta(id: u64, from: &str, to: &str, text: &str) -> Meta {
    let body = MessageBody {
        r#type: Some(message_body::Type::Chat as i32),
        from: name_only(from),
        to: name_only(to),
        contents: vec![message_body::Content {
            r#type: Some(0),
            text: Some(text.into()),
            ..Default::default()
        }],
        ..MessageBody::default()
    };
    Meta {
        id: Some(id),
        from: Some(user(from, Some("webim_web_2"))),
        to: Some(user(to, None)),
        timestamp: Some(1_767_225_600_000),
        ns: Some(NameSpace::Chat as i32),
        payload: Some(body.encode_to_vec()),
        meta: Some(br#"{"is_online":1}"#.to_vec()),
        ..Meta::default()
    }
}

fn receipt_meta(id: u64, kind: message_body::Type, from: &str, to: &str, acked: u64) -> Meta {
    let body = MessageBody {
        r#type: Some(kind as i32),
        from: name_only(from),
        to: name_only(to),
        ack_message_id: Some(acked),
        contents: vec![message_body::Content::default()],
        ..MessageBody::default()
    };
    Meta {
        id: Some(id),
        from: Some(user(from, Some("webim_web_2"))),
        to: Some(user(to, None)),
        timestamp: Some(1_767_225_600_001),
        ns: Some(NameSpace::Chat as i32),
        payload: Some(body.encode_to_vec()),
        ..Meta::default()
    }
}

fn kick_meta(id: u64, operation: i32, reason: &str) -> Meta {
    Meta {
        id: Some(id),
        from: Some(user("alice", None)),
        timestamp: Some(1_767_225_600_002),
        ns: Some(NameSpace::Statistic as i32),
        payload: Some(
            StatisticsBody {
                operation: Some(operation),
                reason: Some(reason.into()),
                ..StatisticsBody::default()
            }
            .encode_to_vec(),
        ),
        ..Meta::default()
    }
}

fn is_statistics(frame: &MSync) -> bool {
    frame.command == Some(Command::Sync as i32)
        && CommSyncUl::decode(frame.payload.as_deref().unwrap_or_default())
            .ok()
            .and_then(|ul| ul.meta)
            .is_some_and(|m| m.ns == Some(NameSpace::Statistic as i32))
}

impl Peer {
    async fn recv_ws(&mut self) -> Option<WsMessage> {
        match tokio::time::timeout(STEP, self.ws.next()).await {
            Ok(Some(Ok(m))) => Some(m),
            Ok(Some(Err(_))) | Ok(None) => None,
            Err(_) => panic!("no frame from the client within {STEP:?}"),
        }
    }

    /// Next MSync frame (ping/pong skipped). Panics on close or timeout.
    async fn recv(&mut self) -> MSync {
        loop {
            match self.recv_ws().await {
                Some(WsMessage::Binary(b)) => return MSync::decode(b).unwrap(),
                Some(WsMessage::Ping(_) | WsMessage::Pong(_)) => {}
                other => panic!("expected a binary frame, got {other:?}"),
            }
        }
    }

    /// Next frame that is not a statistics SYNC.
    async fn recv_skip_stats(&mut self) -> MSync {
        loop {
            let frame = self.recv().await;
            if !is_statistics(&frame) {
                return frame;
            }
        }
    }

    /// Next frame, which must be a SYNC; returns its CommSyncUL.
    async fn recv_sync_ul(&mut self) -> CommSyncUl {
        let frame = self.recv_skip_stats().await;
        assert_eq!(frame.command, Some(Command::Sync as i32), "{frame:?}");
        CommSyncUl::decode(frame.payload.as_deref().unwrap()).unwrap()
    }

    async fn expect_statistics(&mut self, n: usize) {
        for i in 0..n {
            let frame = self.recv().await;
            assert!(is_statistics(&frame), "statistics frame {i}: {frame:?}");
        }
    }

    async fn expect_silence(&mut self) {
        if let Ok(m) = tokio::time::timeout(QUIET, self.ws.next()).await {
            panic!("expected no frame, got {m:?}");
        }
    }

    async fn send(&mut self, command: Command, payload: &impl prost::Message) {
        let frame = MSync {
            command: Some(command as i32),
            payload: Some(payload.encode_to_vec()),
            ..MSync::default()
        };
        self.ws
            .send(WsMessage::Binary(frame.encode_to_vec().into()))
            .await
            .unwrap();
    }

    async fn send_dl(&mut self, dl: CommSyncDl) {
        self.send(Command::Sync, &dl).await;
    }

    async fn reply_provision(&mut self, reply: Provision) {
        self.send(Command::Provision, &reply).await;
    }

    async fn reply_unread(&mut self, queues: &[(&str, u32)]) {
        let dl = CommUnreadDl {
            status: Some(ok()),
            unread: queues
                .iter()
                .map(|(name, n)| MetaQueue {
                    queue: Some(user(name, None)),
                    n: Some(*n),
                })
                .collect(),
            timestamp: Some(1_767_225_600_000),
        };
        self.send(Command::Unread, &dl).await;
    }

    async fn end_of_queue(&mut self, queue: &str) {
        self.send_dl(CommSyncDl {
            status: Some(ok()),
            queue: Some(user(queue, None)),
            is_last: Some(true),
            ..CommSyncDl::default()
        })
        .await;
    }

    async fn batch(&mut self, queue: &str, metas: Vec<Meta>, next_key: u64) {
        self.send_dl(CommSyncDl {
            status: Some(ok()),
            queue: Some(user(queue, None)),
            metas,
            next_key: Some(next_key),
            is_last: Some(false),
            timestamp: Some(1_767_225_600_000),
            ..CommSyncDl::default()
        })
        .await;
    }

    async fn close(&mut self) {
        self.ws.close(None).await.unwrap();
    }
}

fn opts(user: &str) -> LoginOptions {
    let mut o = LoginOptions::new(APP, user, format!("TOKEN-{user}"));
    o.login_timeout = STEP;
    o
}

fn provision_ok(resource: &str) -> Provision {
    Provision {
        status: Some(ok()),
        resource: Some(resource.into()),
        auth_token: Some(r#"{"expires_in":4102444800000}"#.into()),
        ..Provision::default()
    }
}

type Login = JoinHandle<Result<(Client, Events), ClientError>>;

fn spawn_connect(url: &str, o: LoginOptions) -> Login {
    let url = url.to_owned();
    tokio::spawn(async move { Client::connect(&url, o).await })
}

/// Logs in; returns after the client's UNREAD and statistics SYNC (the UNREAD is unanswered).
async fn login_raw(server: &FakeServer, o: LoginOptions) -> (Client, Events, Peer) {
    let resource = o.resource.clone();
    let login = spawn_connect(&server.url, o);
    let mut peer = server.accept().await;
    let frame = peer.recv().await;
    assert_eq!(frame.command, Some(Command::Provision as i32));
    peer.reply_provision(provision_ok(&resource)).await;
    let (client, events) = login.await.unwrap().unwrap();
    let unread = peer.recv().await;
    assert_eq!(unread.command, Some(Command::Unread as i32));
    assert_eq!(unread.payload, None);
    peer.expect_statistics(1).await;
    (client, events, peer)
}

/// Logs in and answers the login UNREAD with an empty list.
async fn login(server: &FakeServer, o: LoginOptions) -> (Client, Events, Peer) {
    let (client, mut events, mut peer) = login_raw(server, o).await;
    peer.reply_unread(&[]).await;
    match events.recv_timeout(STEP).await.unwrap() {
        Event::Unread { queues, timestamp } => {
            assert!(queues.is_empty());
            assert_eq!(timestamp, Some(1_767_225_600_000));
        }
        other => panic!("expected Unread, got {other:?}"),
    }
    peer.expect_statistics(2).await;
    (client, events, peer)
}

#[tokio::test]
async fn login_sends_sdk_provision_and_after_login_frames() {
    let server = FakeServer::bind().await;
    let mut o = opts("alice");
    o.resource = "webim_web_1795637182662".into();
    o.login_ext = Some("ext-1".into());
    let login = spawn_connect(&server.url, o);
    let mut peer = server.accept().await;

    let frame = peer.recv().await;
    assert_eq!(frame.command, Some(Command::Provision as i32));
    assert_eq!(frame.version, Some(0));
    assert_eq!(frame.auth.as_deref(), Some("$t$TOKEN-alice"));
    assert_eq!(frame.device_id, Some(0));
    assert_eq!(frame.encrypt_type, vec![0]);
    assert_eq!(
        frame.guid,
        Some(user("alice", Some("webim_web_1795637182662")))
    );
    let prov = Provision::decode(frame.payload.as_deref().unwrap()).unwrap();
    assert_eq!(prov.os_type, Some(16));
    assert_eq!(prov.version.as_deref(), Some("4.21.1"));
    assert_eq!(prov.resource.as_deref(), Some("webim_web_1795637182662"));
    assert_eq!(prov.device_uuid.as_deref(), Some("web_1795637182662"));
    assert_eq!(prov.device_name.as_deref(), Some("webim"));
    assert_eq!(prov.action_version.as_deref(), Some("v5.2"));
    assert_eq!(
        prov.auth_token.as_deref(),
        Some(r#"{"token":"$t$TOKEN-alice"}"#)
    );
    assert_eq!(prov.reason.as_deref(), Some("ext-1"));
    assert_eq!(prov.protocol_compress_type, vec![2]);
    let session_id = prov.session_id.clone().unwrap();
    assert!(session_id.ends_with(':'), "{session_id}");

    // The server echoes another resource; the client adopts it.
    let mut reply = provision_ok("server-chosen");
    reply.auth_token = Some(r#"{"expires_in":1767225600000}"#.into());
    peer.reply_provision(reply).await;
    let (client, mut events) = login.await.unwrap().unwrap();
    assert_eq!(client.session().resource, "server-chosen");
    assert_eq!(client.session().expires_at_ms, Some(1_767_225_600_000));
    assert_eq!(client.session().session_id, session_id);
    assert_eq!(client.username(), "alice");

    let unread = peer.recv().await;
    assert_eq!(unread.command, Some(Command::Unread as i32));
    assert_eq!(unread.payload, None);
    assert_eq!(unread.guid, None);
    assert_eq!(unread.auth, None);
    let stats = peer.recv().await;
    let ul = CommSyncUl::decode(stats.payload.as_deref().unwrap()).unwrap();
    let meta = ul.meta.unwrap();
    assert_eq!(meta.ns, Some(NameSpace::Statistic as i32));
    assert!(meta.id.unwrap() > 1_700_000_000_000, "Date.now() id");
    let body = StatisticsBody::decode(meta.payload.as_deref().unwrap()).unwrap();
    assert_eq!(body.operation, Some(0));

    // Empty UNREAD reply: Unread event, two more statistics frames, no offline sync.
    peer.reply_unread(&[]).await;
    assert!(matches!(
        events.recv_timeout(STEP).await.unwrap(),
        Event::Unread { ref queues, .. } if queues.is_empty()
    ));
    peer.expect_statistics(2).await;
    peer.expect_silence().await;
    assert!(events.try_recv().is_none());
}

#[tokio::test]
async fn login_refused_reports_code_and_reason() {
    let server = FakeServer::bind().await;
    for (code, reason) in [(1, "Sorry, token expired"), (13, "")] {
        let login = spawn_connect(&server.url, opts("alice"));
        let mut peer = server.accept().await;
        peer.recv().await;
        peer.reply_provision(Provision {
            status: Some(Status {
                error_code: Some(code),
                reason: (!reason.is_empty()).then(|| reason.to_owned()),
                ..Status::default()
            }),
            ..Provision::default()
        })
        .await;
        match login.await.unwrap() {
            Err(ClientError::LoginRefused { code: c, reason: r }) => {
                assert_eq!(c, code);
                assert_eq!(r, reason);
            }
            other => panic!("expected LoginRefused, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn login_without_status_or_reply_fails() {
    let server = FakeServer::bind().await;
    let login = spawn_connect(&server.url, opts("alice"));
    let mut peer = server.accept().await;
    peer.recv().await;
    peer.reply_provision(Provision::default()).await;
    assert!(matches!(
        login.await.unwrap(),
        Err(ClientError::Protocol(_))
    ));

    let mut o = opts("alice");
    o.login_timeout = Duration::from_millis(200);
    let login = spawn_connect(&server.url, o);
    let mut peer = server.accept().await;
    peer.recv().await;
    assert!(matches!(
        login.await.unwrap(),
        Err(ClientError::Timeout("provision reply"))
    ));
}

#[tokio::test]
async fn connection_sends_provision_and_reads_raw_reply() {
    let server = FakeServer::bind().await;
    let o = opts("alice");
    let url = server.url.clone();
    let o2 = o.clone();
    let client = tokio::spawn(async move {
        let mut conn = Connection::connect(&url, &o2.transport).await.unwrap();
        let session_id = conn.send_provision(&o2).await.unwrap();
        let reply = conn.recv_msync().await.unwrap().unwrap();
        (session_id, reply)
    });
    let mut peer = server.accept().await;
    let frame = peer.recv().await;
    assert_eq!(frame.command, Some(Command::Provision as i32));
    peer.reply_provision(Provision {
        status: Some(Status {
            error_code: Some(12),
            reason: Some("forbidden".into()),
            ..Status::default()
        }),
        ..Provision::default()
    })
    .await;
    let (session_id, reply) = client.await.unwrap();
    assert!(session_id.ends_with(':'));
    assert_eq!(reply.command, Some(Command::Provision as i32));
    let prov = Provision::decode(reply.payload.as_deref().unwrap()).unwrap();
    assert_eq!(prov.status.unwrap().error_code, Some(12));
}

#[tokio::test]
async fn send_text_waits_for_matching_ack() {
    let server = FakeServer::bind().await;
    let (client, _events, mut peer) = login(&server, opts("alice")).await;

    let c = client.clone();
    let send = tokio::spawn(async move { c.send_text("bob", "hi bob").await });
    let frame = peer.recv().await;
    assert_eq!(frame.command, Some(Command::Sync as i32));
    assert_eq!(frame.guid, None);
    let meta = CommSyncUl::decode(frame.payload.as_deref().unwrap())
        .unwrap()
        .meta
        .unwrap();
    assert_eq!(meta.to, Some(user("bob", None)));
    assert_eq!(meta.ns, Some(NameSpace::Chat as i32));
    assert_eq!(meta.routetype, Some(0));
    assert_eq!(meta.from, None);
    assert_eq!(meta.timestamp, None);
    let body = MessageBody::decode(meta.payload.as_deref().unwrap()).unwrap();
    assert_eq!(body.r#type, Some(message_body::Type::Chat as i32));
    assert_eq!(body.from, name_only("alice"));
    assert_eq!(body.to, name_only("bob"));
    assert_eq!(body.contents[0].r#type, Some(0));
    assert_eq!(body.contents[0].text.as_deref(), Some("hi bob"));
    let meta_id = meta.id.unwrap();

    // An ack for another id must not complete the send.
    peer.send_dl(CommSyncDl {
        status: Some(ok()),
        meta_id: Some(meta_id + 1000),
        server_id: Some(1),
        ..CommSyncDl::default()
    })
    .await;
    peer.send_dl(CommSyncDl {
        status: Some(ok()),
        meta_id: Some(meta_id),
        server_id: Some(1_234_567_890_123_456_789),
        timestamp: Some(1_767_225_600_000),
        ..CommSyncDl::default()
    })
    .await;
    let ack = send.await.unwrap().unwrap();
    assert_eq!(ack.meta_id, meta_id);
    assert_eq!(ack.server_id, 1_234_567_890_123_456_789);
    assert_eq!(ack.timestamp, 1_767_225_600_000);
}

#[tokio::test]
async fn send_errors_refused_timeout_duplicate_and_resend() {
    let server = FakeServer::bind().await;
    let mut o = opts("alice");
    o.send_timeout = Duration::from_millis(300);
    let (client, _events, mut peer) = login(&server, o).await;

    // Refused.
    let c = client.clone();
    let send = tokio::spawn(async move { c.send_text("bob", "x").await });
    let id = peer.recv_sync_ul().await.meta.unwrap().id.unwrap();
    peer.send_dl(CommSyncDl {
        status: Some(Status {
            error_code: Some(15),
            reason: Some("you were muted".into()),
            ..Status::default()
        }),
        meta_id: Some(id),
        ..CommSyncDl::default()
    })
    .await;
    match send.await.unwrap() {
        Err(ClientError::SendRefused { code, reason }) => {
            assert_eq!(code, 15);
            assert_eq!(reason, "you were muted");
        }
        other => panic!("expected SendRefused, got {other:?}"),
    }

    // Ack without status.
    let c = client.clone();
    let send = tokio::spawn(async move { c.send_text("bob", "y").await });
    let id = peer.recv_sync_ul().await.meta.unwrap().id.unwrap();
    peer.send_dl(CommSyncDl {
        meta_id: Some(id),
        server_id: Some(5),
        ..CommSyncDl::default()
    })
    .await;
    assert!(matches!(send.await.unwrap(), Err(ClientError::Protocol(_))));

    // No ack at all.
    let c = client.clone();
    let send = tokio::spawn(async move { c.send_text("bob", "z").await });
    let id = peer.recv_sync_ul().await.meta.unwrap().id.unwrap();
    match send.await.unwrap() {
        Err(ClientError::SendTimeout { meta_id }) => assert_eq!(meta_id, id),
        other => panic!("expected SendTimeout, got {other:?}"),
    }

    // The same client id twice: concurrently refused, sequentially allowed.
    let fixed = client.next_local_id();
    let c = client.clone();
    let first = tokio::spawn(async move { c.send_text_with_id(fixed, "bob", "once").await });
    assert_eq!(peer.recv_sync_ul().await.meta.unwrap().id, Some(fixed));
    assert!(matches!(
        client.send_text_with_id(fixed, "bob", "once").await,
        Err(ClientError::DuplicateMetaId(id)) if id == fixed
    ));
    let ack = |server_id| CommSyncDl {
        status: Some(ok()),
        meta_id: Some(fixed),
        server_id: Some(server_id),
        timestamp: Some(7),
        ..CommSyncDl::default()
    };
    peer.send_dl(ack(77)).await;
    assert_eq!(first.await.unwrap().unwrap().server_id, 77);
    let c = client.clone();
    let again = tokio::spawn(async move { c.send_text_with_id(fixed, "bob", "once").await });
    assert_eq!(peer.recv_sync_ul().await.meta.unwrap().id, Some(fixed));
    peer.send_dl(ack(77)).await;
    assert_eq!(again.await.unwrap().unwrap().server_id, 77);
}

#[tokio::test]
async fn concurrent_sends_complete_out_of_order() {
    let server = FakeServer::bind().await;
    let (client, _events, mut peer) = login(&server, opts("alice")).await;
    let mut sends = Vec::new();
    for i in 0..20 {
        let c = client.clone();
        sends.push(tokio::spawn(async move {
            c.send_text("bob", &format!("m{i}")).await
        }));
    }
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(peer.recv_sync_ul().await.meta.unwrap().id.unwrap());
    }
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 20, "local ids are unique");
    for id in ids.iter().rev() {
        peer.send_dl(CommSyncDl {
            status: Some(ok()),
            meta_id: Some(*id),
            server_id: Some(id + 1),
            ..CommSyncDl::default()
        })
        .await;
    }
    for send in sends {
        let ack = send.await.unwrap().unwrap();
        assert_eq!(ack.server_id, ack.meta_id + 1);
    }
}

#[tokio::test]
async fn receipts_and_custom_bodies_are_sent_as_chat_metas() {
    let server = FakeServer::bind().await;
    let (client, _events, mut peer) = login(&server, opts("alice")).await;
    let c = client.clone();
    let send = tokio::spawn(async move { c.send_read_ack("bob/phone", 4242).await });
    let meta = peer.recv_sync_ul().await.meta.unwrap();
    assert_eq!(meta.to, Some(user("bob", Some("phone"))));
    let body = MessageBody::decode(meta.payload.as_deref().unwrap()).unwrap();
    assert_eq!(body.r#type, Some(message_body::Type::ReadAck as i32));
    assert_eq!(body.ack_message_id, Some(4242));
    assert_eq!(body.from, name_only("alice"));
    assert_eq!(body.to, name_only("bob"));
    assert_eq!(body.contents.len(), 1);
    peer.send_dl(CommSyncDl {
        status: Some(ok()),
        meta_id: meta.id,
        server_id: Some(9),
        ..CommSyncDl::default()
    })
    .await;
    assert_eq!(send.await.unwrap().unwrap().server_id, 9);

    // A fully custom meta keeps the caller's id and fields.
    let c = client.clone();
    let custom = Meta {
        id: Some(31337),
        to: Some(user("bob", None)),
        ns: Some(NameSpace::Chat as i32),
        routetype: Some(1),
        payload: Some(vec![1, 2, 3]),
        ..Meta::default()
    };
    let expected = custom.clone();
    let send = tokio::spawn(async move { c.send_meta(custom).await });
    assert_eq!(peer.recv_sync_ul().await.meta, Some(expected));
    peer.send_dl(CommSyncDl {
        status: Some(ok()),
        meta_id: Some(31337),
        server_id: Some(10),
        ..CommSyncDl::default()
    })
    .await;
    assert_eq!(send.await.unwrap().unwrap().meta_id, 31337);
}

#[tokio::test]
async fn notice_pull_ack_cycle() {
    let server = FakeServer::bind().await;
    let (_client, mut events, mut peer) = login(&server, opts("alice")).await;

    peer.send(
        Command::Notice,
        &CommNotice {
            queue: Some(user("bob", None)),
        },
    )
    .await;
    let pull = peer.recv_sync_ul().await;
    assert_eq!(pull.queue, Some(user("bob", None)));
    assert_eq!(pull.key, None);
    assert_eq!(pull.meta, None);

    // A notice for the queue being pulled is not answered now.
    peer.send(
        Command::Notice,
        &CommNotice {
            queue: Some(user("bob", None)),
        },
    )
    .await;
    peer.expect_silence().await;

    peer.batch(
        "bob",
        vec![
            chat_meta(100, "bob", "alice", "hello"),
            receipt_meta(101, message_body::Type::DeliverAck, "bob", "alice", 55),
            receipt_meta(102, message_body::Type::ReadAck, "bob", "alice", 55),
        ],
        102,
    )
    .await;
    match events.recv_timeout(STEP).await.unwrap() {
        Event::Message(m) => {
            assert_eq!(m.server_id, 100);
            assert_eq!(m.from, "bob");
            assert_eq!(m.from_resource.as_deref(), Some("webim_web_2"));
            assert_eq!(m.to, "alice");
            assert_eq!(m.timestamp, 1_767_225_600_000);
            assert_eq!(m.online_state, 1);
            assert_eq!(m.text(), Some("hello"));
        }
        other => panic!("expected Message, got {other:?}"),
    }
    match events.recv_timeout(STEP).await.unwrap() {
        Event::DeliveryAck(r) => {
            assert_eq!((r.server_id, r.acked_id), (101, 55));
            assert_eq!((r.from.as_str(), r.to.as_str()), ("bob", "alice"));
        }
        other => panic!("expected DeliveryAck, got {other:?}"),
    }
    match events.recv_timeout(STEP).await.unwrap() {
        Event::ReadAck(r) => assert_eq!((r.server_id, r.acked_id), (102, 55)),
        other => panic!("expected ReadAck, got {other:?}"),
    }
    let ack = peer.recv_sync_ul().await;
    assert_eq!(ack.queue, Some(user("bob", None)));
    assert_eq!(ack.key, Some(102));

    peer.batch("bob", vec![chat_meta(103, "bob", "alice", "more")], 103)
        .await;
    assert_eq!(events.next_message(STEP).await.unwrap().server_id, 103);
    assert_eq!(peer.recv_sync_ul().await.key, Some(103));
    peer.end_of_queue("bob").await;

    // The notice received during the pull is re-checked once.
    let again = peer.recv_sync_ul().await;
    assert_eq!((again.queue, again.key), (Some(user("bob", None)), None));
    peer.end_of_queue("bob").await;
    peer.expect_silence().await;
    assert!(events.try_recv().is_none());
}

#[tokio::test]
async fn sdk_exact_mode_drops_notice_during_pull_and_pulls_one_queue_at_a_time() {
    let server = FakeServer::bind().await;
    let mut o = opts("alice");
    o.recheck_notified_queues = false;
    let (_client, _events, mut peer) = login(&server, o).await;
    for q in ["bob", "carol", "bob"] {
        peer.send(
            Command::Notice,
            &CommNotice {
                queue: Some(user(q, None)),
            },
        )
        .await;
    }
    assert_eq!(peer.recv_sync_ul().await.queue, Some(user("bob", None)));
    peer.expect_silence().await;
    peer.end_of_queue("bob").await;
    assert_eq!(peer.recv_sync_ul().await.queue, Some(user("carol", None)));
    peer.end_of_queue("carol").await;
    peer.expect_silence().await;
}

#[tokio::test]
async fn unsolicited_push_is_reported_and_acked() {
    let server = FakeServer::bind().await;
    let (_client, mut events, mut peer) = login(&server, opts("alice")).await;
    peer.batch("dave", vec![chat_meta(7, "dave", "alice", "push")], 7)
        .await;
    let m = events.next_message(STEP).await.unwrap();
    assert_eq!((m.server_id, m.from.as_str()), (7, "dave"));
    let ack = peer.recv_sync_ul().await;
    assert_eq!((ack.queue, ack.key), (Some(user("dave", None)), Some(7)));
}

#[tokio::test]
async fn offline_sync_via_login_unread() {
    let server = FakeServer::bind().await;
    let (_client, mut events, mut peer) = login_raw(&server, opts("alice")).await;
    peer.reply_unread(&[("bob", 2), ("carol", 1)]).await;

    match events.recv_timeout(STEP).await.unwrap() {
        Event::Unread { queues, .. } => {
            assert_eq!(queues.len(), 2);
            assert_eq!(queues[0].queue, user("bob", None));
            assert_eq!(queues[0].count, 2);
        }
        other => panic!("expected Unread, got {other:?}"),
    }
    assert_eq!(
        events.recv_timeout(STEP).await.unwrap(),
        Event::OfflineSyncStart
    );
    // First queue pulled, then one statistics frame; carol waits.
    let pull = peer.recv().await;
    let ul = CommSyncUl::decode(pull.payload.as_deref().unwrap()).unwrap();
    assert_eq!((ul.queue, ul.key), (Some(user("bob", None)), None));
    peer.expect_statistics(1).await;
    peer.expect_silence().await;

    peer.batch(
        "bob",
        vec![
            chat_meta(1, "bob", "alice", "one"),
            chat_meta(2, "bob", "alice", "two"),
        ],
        2,
    )
    .await;
    assert_eq!(events.next_message(STEP).await.unwrap().text(), Some("one"));
    assert_eq!(events.next_message(STEP).await.unwrap().text(), Some("two"));
    assert_eq!(peer.recv_sync_ul().await.key, Some(2));
    peer.end_of_queue("bob").await;

    let pull = peer.recv_sync_ul().await;
    assert_eq!((pull.queue, pull.key), (Some(user("carol", None)), None));
    peer.batch("carol", vec![chat_meta(3, "carol", "alice", "three")], 3)
        .await;
    assert_eq!(events.next_message(STEP).await.unwrap().from, "carol");
    assert_eq!(peer.recv_sync_ul().await.key, Some(3));
    assert!(events.try_recv().is_none(), "not finished before isLast");
    peer.end_of_queue("carol").await;
    assert_eq!(
        events.recv_timeout(STEP).await.unwrap(),
        Event::OfflineSyncFinish
    );
    peer.expect_silence().await;
}

#[tokio::test]
async fn kick_is_reported_then_disconnect() {
    let server = FakeServer::bind().await;
    let (client, mut events, mut peer) = login(&server, opts("alice")).await;
    peer.send_dl(CommSyncDl {
        status: Some(ok()),
        queue: Some(user("alice", None)),
        metas: vec![kick_meta(9, 2, "new-device-ext")],
        is_last: Some(true),
        ..CommSyncDl::default()
    })
    .await;
    assert_eq!(
        events.recv_timeout(STEP).await.unwrap(),
        Event::Kicked {
            code: 206,
            operation: 2,
            reason: Some("new-device-ext".into())
        }
    );
    peer.close().await;
    match events.recv_timeout(STEP).await.unwrap() {
        Event::Disconnected {
            reason: DisconnectReason::ServerClosed { .. },
        } => {}
        other => panic!("expected Disconnected, got {other:?}"),
    }
    assert!(events.recv().await.is_none());
    assert!(client.is_closed());
    assert!(matches!(
        client.send_text("bob", "late").await,
        Err(ClientError::Disconnected)
    ));

    // The other operations map to their SDK codes, without a reason.
    for (op, code) in [(1, 207), (3, 216), (4, 217)] {
        let (_client, mut events, mut peer) = login(&server, opts("alice")).await;
        peer.send_dl(CommSyncDl {
            status: Some(ok()),
            queue: Some(user("alice", None)),
            metas: vec![kick_meta(10, op, "")],
            is_last: Some(true),
            ..CommSyncDl::default()
        })
        .await;
        assert_eq!(
            events.recv_timeout(STEP).await.unwrap(),
            Event::Kicked {
                code,
                operation: op,
                reason: None
            }
        );
        peer.expect_silence().await;
    }
}

#[tokio::test]
async fn logout_sends_sdk_logout_then_closes() {
    let server = FakeServer::bind().await;
    let (client, mut events, mut peer) = login(&server, opts("alice")).await;
    let session = client.session().clone();
    client.logout().await.unwrap();
    // Sends after logout fail at once.
    assert!(matches!(
        tokio::time::timeout(Duration::from_millis(100), client.send_text("bob", "late")).await,
        Ok(Err(ClientError::Disconnected))
    ));

    let frame = peer.recv().await;
    assert_eq!(frame.command, Some(Command::Logout as i32));
    assert_eq!(frame.auth.as_deref(), Some("$t$TOKEN-alice"));
    assert_eq!(frame.guid, Some(user("alice", Some(&session.resource))));
    assert_eq!(frame.device_id, Some(0));
    let logout = Logout::decode(frame.payload.as_deref().unwrap()).unwrap();
    assert_eq!(logout.session_id, Some(session.session_id.clone()));
    assert_eq!(logout.reason.as_deref(), Some("inner:logout"));
    assert!(matches!(peer.recv_ws().await, Some(WsMessage::Close(_))));
    assert_eq!(
        events.recv_timeout(STEP).await.unwrap(),
        Event::Disconnected {
            reason: DisconnectReason::Local
        }
    );
    assert!(client.is_closed());
}

#[tokio::test]
async fn dropping_every_handle_closes_the_socket() {
    let server = FakeServer::bind().await;
    let (client, mut events, mut peer) = login(&server, opts("alice")).await;
    let other = client.clone();
    drop(client);
    peer.expect_silence().await;
    drop(other);
    assert!(matches!(peer.recv_ws().await, Some(WsMessage::Close(_))));
    assert_eq!(
        events.recv_timeout(STEP).await.unwrap(),
        Event::Disconnected {
            reason: DisconnectReason::Local
        }
    );
}

#[tokio::test]
async fn raw_frames_reach_the_server_verbatim() {
    let server = FakeServer::bind().await;
    let (client, _events, mut peer) = login(&server, opts("alice")).await;
    client.send_raw(vec![0xff, 0x00, 0x13]).await.unwrap();
    match peer.recv_ws().await {
        Some(WsMessage::Binary(b)) => assert_eq!(&b[..], &[0xff, 0x00, 0x13]),
        other => panic!("expected binary, got {other:?}"),
    }
    client.send_raw_text("not protobuf").await.unwrap();
    match peer.recv_ws().await {
        Some(WsMessage::Text(t)) => assert_eq!(t.as_str(), "not protobuf"),
        other => panic!("expected text, got {other:?}"),
    }
    client
        .send_msync(&MSync {
            command: Some(7),
            ..MSync::default()
        })
        .await
        .unwrap();
    assert_eq!(peer.recv().await.command, Some(7));
}

#[tokio::test]
async fn server_protocol_violations_are_reported() {
    let server = FakeServer::bind().await;
    let (_client, mut events, mut peer) = login(&server, opts("alice")).await;

    peer.ws.send(WsMessage::text("hello")).await.unwrap();
    assert!(matches!(
        events.recv_timeout(STEP).await.unwrap(),
        Event::ProtocolViolation(v) if v.contains("text frame")
    ));
    peer.ws
        .send(WsMessage::Binary(vec![0xff, 0xff, 0xff].into()))
        .await
        .unwrap();
    assert!(matches!(
        events.recv_timeout(STEP).await.unwrap(),
        Event::ProtocolViolation(v) if v.contains("undecodable")
    ));

    // Same nextKey twice: the SDK abandons the queue.
    peer.send(
        Command::Notice,
        &CommNotice {
            queue: Some(user("bob", None)),
        },
    )
    .await;
    peer.recv_sync_ul().await;
    peer.batch("bob", vec![chat_meta(1, "bob", "alice", "a")], 1)
        .await;
    assert_eq!(peer.recv_sync_ul().await.key, Some(1));
    peer.batch("bob", vec![chat_meta(2, "bob", "alice", "b")], 1)
        .await;
    let violation = events
        .wait_for(STEP, |e| match e {
            Event::ProtocolViolation(v) => Some(v),
            _ => None,
        })
        .await
        .unwrap();
    assert!(violation.contains("same nextKey"), "{violation}");
    peer.expect_silence().await;
}

#[tokio::test]
async fn heartbeat_manual_and_automatic() {
    let server = FakeServer::bind().await;
    let mut o = opts("alice");
    o.heartbeat_interval = Some(Duration::from_millis(300));
    let (client, mut events, mut peer) = login(&server, o).await;

    client.heartbeat().await.unwrap();
    let frame = peer.recv().await;
    assert_eq!(frame.command, Some(Command::Unread as i32));
    peer.reply_unread(&[]).await;
    assert!(matches!(
        events.recv_timeout(STEP).await.unwrap(),
        Event::Unread { .. }
    ));
    peer.expect_statistics(2).await;

    // Automatic: nothing received for an interval → UNREAD.
    let started = tokio::time::Instant::now();
    let frame = peer.recv().await;
    assert_eq!(frame.command, Some(Command::Unread as i32));
    assert!(started.elapsed() >= Duration::from_millis(100));
}

#[tokio::test]
async fn auto_delivery_ack_like_sdk_delivery_option() {
    let server = FakeServer::bind().await;
    let mut o = opts("alice");
    o.auto_delivery_ack = true;
    let (_client, mut events, mut peer) = login(&server, o).await;
    peer.batch("bob", vec![chat_meta(500, "bob", "alice", "hi")], 500)
        .await;
    assert_eq!(events.next_message(STEP).await.unwrap().server_id, 500);
    let receipt = peer.recv_sync_ul().await.meta.unwrap();
    assert_eq!(receipt.to, Some(user("bob", None)));
    let body = MessageBody::decode(receipt.payload.as_deref().unwrap()).unwrap();
    assert_eq!(body.r#type, Some(message_body::Type::DeliverAck as i32));
    assert_eq!(body.ack_message_id, Some(500));
    assert_eq!(body.from, name_only("alice"));
    assert_eq!(body.to, name_only("bob"));
    assert_eq!(peer.recv_sync_ul().await.key, Some(500));
}

#[tokio::test]
async fn binds_the_chosen_local_source_address() {
    let server = FakeServer::bind().await;
    let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let o = opts("alice").with_local_addr(ip);
    let login = spawn_connect(&server.url, o.clone());
    let mut peer = server.accept().await;
    assert_eq!(peer.peer_addr.ip(), ip);
    peer.recv().await;
    peer.reply_provision(provision_ok(&o.resource)).await;
    let (client, _events) = login.await.unwrap().unwrap();
    assert_eq!(client.local_addr().ip(), ip);
    assert_eq!(client.local_addr(), peer.peer_addr);
}

#[tokio::test]
async fn bad_urls_are_rejected() {
    let o = opts("alice");
    assert!(matches!(
        Client::connect("wss://127.0.0.1:1/ws", o.clone()).await,
        Err(ClientError::InvalidUrl { .. })
    ));
    assert!(matches!(
        Client::connect("not a url", o).await,
        Err(ClientError::InvalidUrl { .. })
    ));
}
