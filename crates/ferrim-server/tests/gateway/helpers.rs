//! A real server on port 0 with a fresh data directory, and a raw msync client built on
//! tokio-tungstenite + ferrim-proto (raw, so tests can also send what no SDK would).

use std::time::Duration;

use ferrim_core::app::{AppSettings, KickPolicy};
use ferrim_proto::pb::m_sync::Command;
use ferrim_proto::pb::{CommSyncDl, CommUnreadDl, Jid, Logout, MSync, Provision, StatisticsBody};
use ferrim_proto::Message as _;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for any single frame.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);
/// `Provision.osType` of every web instance.
pub const OS_WEB: i32 = 16;
/// `Provision.osType` OS_CUSTOM.
pub const OS_CUSTOM: i32 = 5;

pub use crate::common::{spawn_app, spawn_app_with, TestApp};

impl TestApp {
    pub fn app_key(&self) -> String {
        self.app.key.to_string()
    }

    /// Registers a user with password `secret1` and returns a fresh user token.
    pub async fn user(&self, name: &str) -> String {
        self.users(&[name]).await;
        self.token(name, None).await
    }

    /// A REST-style user token (`ttl` seconds, app default if `None`).
    pub async fn token(&self, name: &str, ttl: Option<u64>) -> String {
        self.accounts
            .issue_user_token(&self.app, name, ttl)
            .await
            .expect("token issued")
            .0
            .token
    }

    pub async fn set_devices(&self, cap: u32, policy: KickPolicy) {
        let app = self.accounts.app(&self.app.key).await.unwrap();
        let settings = AppSettings {
            device_cap_per_platform: cap,
            kick_policy: policy,
            ..app.settings.clone()
        };
        self.accounts.update_settings(&app, settings).await.unwrap();
    }

    /// Per-platform caps (`web`, `custom7`, …) over the default.
    pub async fn set_platform_caps(&self, caps: &[(&str, u32)]) {
        let app = self.accounts.app(&self.app.key).await.unwrap();
        let settings = AppSettings {
            device_caps: caps.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            ..app.settings.clone()
        };
        self.accounts.update_settings(&app, settings).await.unwrap();
    }

    pub async fn devices(&self, name: &str) -> Vec<String> {
        let app = self.accounts.app(&self.app.key).await.unwrap();
        self.accounts
            .resources(&app, name)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.resource)
            .collect()
    }

    pub async fn connect(&self) -> Ws {
        let (inner, _) = tokio_tungstenite::connect_async(self.ws_url.as_str())
            .await
            .expect("websocket connects");
        Ws { inner }
    }

    /// Connects and logs in on the web platform; returns the socket and the reply.
    pub async fn login(&self, user: &str, token: &str, resource: &str) -> (Ws, Provision) {
        self.login_with(LoginFrame::web(&self.app_key(), user, token, resource))
            .await
    }

    pub async fn login_with(&self, frame: LoginFrame) -> (Ws, Provision) {
        let mut ws = self.connect().await;
        ws.send(frame.build()).await;
        let reply = ws.provision_reply().await;
        (ws, reply)
    }

    /// Logs in and asserts success.
    pub async fn online(&self, user: &str, token: &str, resource: &str) -> Ws {
        let (ws, reply) = self.login(user, token, resource).await;
        assert_eq!(
            status_of(&reply),
            (0, String::new()),
            "login of {user}/{resource}"
        );
        ws
    }
}

/// A PROVISION frame as the Web SDK builds it (spec §3.2).
#[derive(Clone, Debug)]
pub struct LoginFrame {
    pub app_key: String,
    pub user: String,
    pub auth: Option<String>,
    pub resource: String,
    pub os_type: i32,
    pub os_custom: Option<u32>,
    pub ext: Option<String>,
}

impl LoginFrame {
    pub fn web(app_key: &str, user: &str, token: &str, resource: &str) -> Self {
        Self {
            app_key: app_key.into(),
            user: user.into(),
            auth: Some(format!("$t${token}")),
            resource: resource.into(),
            os_type: OS_WEB,
            os_custom: None,
            ext: None,
        }
    }

    pub fn build(&self) -> MSync {
        let provision = Provision {
            os_type: Some(self.os_type),
            version: Some("4.21.1".into()),
            compress_type: vec![0],
            encrypt_type: vec![0],
            device_uuid: Some(format!("uuid_{}", self.resource)),
            device_name: Some("webim".into()),
            resource: Some(self.resource.clone()),
            action_version: Some("v5.2".into()),
            auth_token: self.auth.as_ref().map(|a| format!("{{\"token\":\"{a}\"}}")),
            os_custom_value: self.os_custom,
            session_id: Some("1:".into()),
            reason: self.ext.clone(),
            protocol_compress_type: vec![2],
            ..Default::default()
        };
        MSync {
            version: Some(0),
            guid: Some(Jid {
                app_key: Some(self.app_key.clone()),
                name: Some(self.user.clone()),
                domain: Some("easemob.com".into()),
                client_resource: Some(self.resource.clone()),
            }),
            auth: self.auth.clone(),
            command: Some(Command::Provision as i32),
            payload: Some(provision.encode_to_vec()),
            encrypt_type: vec![0],
            ..Default::default()
        }
    }
}

pub fn status_of(p: &Provision) -> (i32, String) {
    let s = p
        .status
        .clone()
        .expect("Provision.status is always present");
    (s.error_code.unwrap_or(0), s.reason.unwrap_or_default())
}

/// What the server sent.
#[derive(Debug)]
pub enum Received {
    Frame(Box<MSync>),
    /// A close frame (code, reason), or `None` for a drop without one.
    Closed(Option<(u16, String)>),
}

pub struct Ws {
    inner: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    pub async fn send(&mut self, frame: MSync) {
        self.send_raw(Message::Binary(frame.encode_to_vec().into()))
            .await;
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.inner.send(message).await.expect("send");
    }

    pub async fn unread(&mut self) {
        self.send(MSync {
            command: Some(Command::Unread as i32),
            ..Default::default()
        })
        .await;
    }

    pub async fn logout(&mut self) {
        self.send(MSync {
            command: Some(Command::Logout as i32),
            payload: Some(
                Logout {
                    reason: Some("inner:logout".into()),
                    ..Default::default()
                }
                .encode_to_vec(),
            ),
            ..Default::default()
        })
        .await;
    }

    /// The next frame or close, skipping pings/pongs; panics after [`RECV_TIMEOUT`].
    pub async fn recv(&mut self) -> Received {
        self.recv_within(RECV_TIMEOUT)
            .await
            .expect("server answered in time")
    }

    pub async fn recv_within(&mut self, limit: Duration) -> Option<Received> {
        tokio::time::timeout(limit, async {
            loop {
                match self.inner.next().await {
                    Some(Ok(Message::Binary(b))) => {
                        return Received::Frame(Box::new(
                            MSync::decode(b).expect("server frames decode"),
                        ))
                    }
                    Some(Ok(Message::Text(t))) => panic!("server sent a text frame: {t}"),
                    Some(Ok(Message::Close(c))) => {
                        return Received::Closed(
                            c.map(|c| (u16::from(c.code), c.reason.to_string())),
                        )
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => return Received::Closed(None),
                }
            }
        })
        .await
        .ok()
    }

    pub async fn frame(&mut self) -> MSync {
        match self.recv().await {
            Received::Frame(f) => *f,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// Expects a close frame and returns its code and reason.
    pub async fn closed(&mut self) -> (u16, String) {
        match self.recv().await {
            Received::Closed(Some(c)) => c,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }

    pub async fn provision_reply(&mut self) -> Provision {
        let f = self.frame().await;
        assert_eq!(f.command, Some(Command::Provision as i32));
        Provision::decode(f.payload.as_deref().unwrap_or_default()).unwrap()
    }

    pub async fn unread_reply(&mut self) -> CommUnreadDl {
        let f = self.frame().await;
        assert_eq!(f.command, Some(Command::Unread as i32));
        CommUnreadDl::decode(f.payload.as_deref().unwrap_or_default()).unwrap()
    }

    pub async fn sync_reply(&mut self) -> CommSyncDl {
        let f = self.frame().await;
        assert_eq!(f.command, Some(Command::Sync as i32));
        CommSyncDl::decode(f.payload.as_deref().unwrap_or_default()).unwrap()
    }

    /// Expects the kick push then the close; returns (operation, reason).
    pub async fn kicked(&mut self) -> (i32, String) {
        let dl = self.sync_reply().await;
        assert!(dl.status.is_some());
        assert_eq!(dl.is_last, Some(true));
        let meta = dl.metas.first().expect("one kick meta");
        assert!(meta.id.unwrap_or(0) > 0, "kick meta has a non-zero id");
        assert!(meta.from.is_some(), "kick meta has a from");
        assert_eq!(meta.ns, Some(0), "kick meta is STATISTIC");
        let body = StatisticsBody::decode(meta.payload.as_deref().unwrap()).unwrap();
        let (code, _) = self.closed().await;
        assert_eq!(code, 1000);
        (body.operation.unwrap_or(0), body.reason.unwrap_or_default())
    }

    /// Asserts nothing arrives for a short while.
    pub async fn quiet(&mut self) {
        if let Some(r) = self.recv_within(Duration::from_millis(300)).await {
            panic!("expected silence, got {r:?}");
        }
    }
}
