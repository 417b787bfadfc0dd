//! Login and transport options.

use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::frames::{now_ms, OS_OTHER};

/// How the TCP/WebSocket connection is made.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    /// Bind the socket to this local address (port 0) before connecting, e.g. `127.0.0.2`
    /// so a benchmark can open more than ~28k connections to one server port.
    pub local_addr: Option<IpAddr>,
    /// Deadline for TCP connect plus WebSocket upgrade (the SDK uses 10 s).
    pub connect_timeout: Duration,
    /// `TCP_NODELAY` (browsers set it; without it small frames wait for delayed ACKs).
    pub nodelay: bool,
    /// WebSocket settings. The default uses small buffers (4 KiB read, 1 KiB write,
    /// 64 KiB write cap): tungstenite zero-fills its read buffer on every read, and idle
    /// connections keep both buffers (see performance.md).
    pub websocket: WebSocketConfig,
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            local_addr: None,
            connect_timeout: Duration::from_secs(10),
            nodelay: true,
            websocket: WebSocketConfig::default()
                .read_buffer_size(4 * 1024)
                .write_buffer_size(1024)
                .max_write_buffer_size(64 * 1024)
                .max_message_size(Some(16 << 20))
                .max_frame_size(Some(16 << 20)),
        }
    }
}

/// Everything needed to log in, plus client behaviour switches.
///
/// [`LoginOptions::new`] fills in what the Web SDK 4.21.1 would send with default settings;
/// every field is public so tests can change exactly one thing.
#[derive(Clone)]
pub struct LoginOptions {
    /// `"org#app"`.
    pub app_key: String,
    /// User name (`guid.name`).
    pub username: String,
    /// User token; sent as `auth = "$t$" + token` and inside `Provision.authToken`.
    pub token: String,
    /// Device resource (`guid.clientResource`, `Provision.resource`),
    /// the SDK's default shape is `webim_web_<ms>`.
    pub resource: String,
    /// `Provision.deviceUuid`; `None` derives it from the resource as the SDK does
    /// (`webim_web_<ms>` → `web_<ms>`, anything else → the resource itself).
    pub device_uuid: Option<String>,
    /// `Provision.deviceName` (`"webim"`).
    pub device_name: String,
    /// `Provision.osType` (16 = `OS_OTHER`), ignored when `custom_os` is set.
    pub os_type: i32,
    /// `customOSPlatform`: sends `osType 5` (`OS_CUSTOM`) and `osCustomValue`.
    pub custom_os: Option<u32>,
    /// `loginInfoCustomExt`, sent as `Provision.reason`.
    pub login_ext: Option<String>,
    /// `Provision.sessionId`; `None` uses the SDK's `"<now ms>:"`.
    pub session_id: Option<String>,
    /// Offer LZ4 protocol compression like the SDK (`protocolCompressType [COMPRESS_LZ4]`).
    /// This client does not implement LZ4: if the server accepts, login fails with
    /// [`ClientError::Protocol`](crate::ClientError::Protocol).
    pub offer_lz4: bool,
    /// Deadline for the Provision reply (the SDK uses 10 s).
    pub login_timeout: Duration,
    /// Deadline for a send acknowledgement (the SDK uses 15 s).
    pub send_timeout: Duration,
    /// Automatic heartbeat: every interval, send `UNREAD` if nothing was received during
    /// the last interval (the SDK checks every 30 s). `None`: only [`Client::heartbeat`].
    ///
    /// [`Client::heartbeat`]: crate::Client::heartbeat
    pub heartbeat_interval: Option<Duration>,
    /// Send the statistics `SYNC` frames like the SDK: one after login, then after each
    /// `CommUnreadDL` two when its list is empty, one otherwise. `false` sends none.
    pub sdk_statistics: bool,
    /// When a `NOTICE` arrives for the queue being pulled the SDK drops it. With this set
    /// (default) the client remembers it and pulls that queue once more after the current
    /// pull ends; `false` reproduces the SDK exactly.
    pub recheck_notified_queues: bool,
    /// Send a `DELIVER_ACK` for every received one-to-one `CHAT` message from another user,
    /// like the SDK with `delivery: true`. The server's ack for it is not awaited.
    pub auto_delivery_ack: bool,
    /// Capacity of the [`Events`](crate::Events) channel. When it is full the reader stops
    /// reading the socket (including send acks) until the application catches up.
    pub events_capacity: usize,
    /// Capacity of the channel from [`Client`](crate::Client) handles to the writer task.
    pub commands_capacity: usize,
    /// TCP/WebSocket settings.
    pub transport: TransportOptions,
}

static LAST_RESOURCE_MS: AtomicU64 = AtomicU64::new(0);

/// A process-unique `<ms>` stamp (never repeats, even for logins in the same millisecond).
fn unique_stamp() -> u64 {
    let now = now_ms();
    let mut prev = LAST_RESOURCE_MS.load(Ordering::Relaxed);
    loop {
        let next = now.max(prev + 1);
        match LAST_RESOURCE_MS.compare_exchange_weak(
            prev,
            next,
            Ordering::Relaxed,
            Ordering::Relaxed,
        ) {
            Ok(_) => return next,
            Err(p) => prev = p,
        }
    }
}

impl LoginOptions {
    /// Options for a token login of `username`, with an SDK-shaped resource
    /// `webim_web_<ms>` that is unique within this process.
    pub fn new(
        app_key: impl Into<String>,
        username: impl Into<String>,
        token: impl Into<String>,
    ) -> Self {
        LoginOptions {
            app_key: app_key.into(),
            username: username.into(),
            token: token.into(),
            resource: format!("webim_web_{}", unique_stamp()),
            device_uuid: None,
            device_name: "webim".to_owned(),
            os_type: OS_OTHER,
            custom_os: None,
            login_ext: None,
            session_id: None,
            offer_lz4: true,
            login_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(15),
            heartbeat_interval: None,
            sdk_statistics: true,
            recheck_notified_queues: true,
            auto_delivery_ack: false,
            events_capacity: 1024,
            commands_capacity: 256,
            transport: TransportOptions::default(),
        }
    }

    /// Sets the device resource.
    pub fn with_resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = resource.into();
        self
    }

    /// Binds the TCP socket to `ip` before connecting.
    pub fn with_local_addr(mut self, ip: IpAddr) -> Self {
        self.transport.local_addr = Some(ip);
        self
    }

    /// The `Provision.deviceUuid` that will be sent.
    pub fn device_uuid(&self) -> String {
        match &self.device_uuid {
            Some(uuid) => uuid.clone(),
            None => self
                .resource
                .strip_prefix("webim_")
                .unwrap_or(&self.resource)
                .to_owned(),
        }
    }
}

impl fmt::Debug for LoginOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginOptions")
            .field("app_key", &self.app_key)
            .field("username", &self.username)
            .field("token", &"<redacted>")
            .field("resource", &self.resource)
            .field("device_uuid", &self.device_uuid)
            .field("device_name", &self.device_name)
            .field("os_type", &self.os_type)
            .field("custom_os", &self.custom_os)
            .field("login_ext", &self.login_ext)
            .field("session_id", &self.session_id)
            .field("offer_lz4", &self.offer_lz4)
            .field("login_timeout", &self.login_timeout)
            .field("send_timeout", &self.send_timeout)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("sdk_statistics", &self.sdk_statistics)
            .field("recheck_notified_queues", &self.recheck_notified_queues)
            .field("auto_delivery_ack", &self.auto_delivery_ack)
            .field("events_capacity", &self.events_capacity)
            .field("commands_capacity", &self.commands_capacity)
            .field("transport", &self.transport)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_resource_is_sdk_shaped_and_unique() {
        let a = LoginOptions::new("org#app", "alice", "t");
        let b = LoginOptions::new("org#app", "alice", "t");
        assert!(a.resource.starts_with("webim_web_"));
        assert_ne!(a.resource, b.resource);
        assert_eq!(
            a.device_uuid(),
            a.resource.trim_start_matches("webim_").to_owned()
        );
        assert_eq!(a.clone().with_resource("phone").device_uuid(), "phone");
    }

    #[test]
    fn debug_redacts_token() {
        let o = LoginOptions::new("org#app", "alice", "s3cret-token");
        let text = format!("{o:?}");
        assert!(!text.contains("s3cret-token"));
        assert!(text.contains("alice"));
    }
}
