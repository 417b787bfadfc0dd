//! What the reader task reports to the application.

use std::time::Duration;

use ferrim_proto::pb::{Jid, MessageBody, Meta};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::frames::online_state;
use crate::ClientError;

/// A received message (a `CHAT`-namespace meta whose body is not a receipt).
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedMessage {
    /// `Meta.id`: the server message id.
    pub server_id: u64,
    /// Sender as the SDK shows it: `MessageBody.from.name` (falls back to `Meta.from.name`).
    pub from: String,
    /// `Meta.from.clientResource` (the sending device), if set and non-empty.
    pub from_resource: Option<String>,
    /// `MessageBody.to.name` (falls back to `Meta.to.name`).
    pub to: String,
    /// `Meta.to.clientResource`, if set and non-empty.
    pub to_resource: Option<String>,
    /// `Meta.timestamp` (epoch ms, 0 if absent).
    pub timestamp: u64,
    /// The SDK's `onlineState` derived from `Meta.meta` (0, 1, 2, or 3 = unknown).
    pub online_state: u8,
    /// The decoded payload; `body.r#type` tells CHAT / RECALL / EDIT / CHANNEL_ACK / ...
    pub body: MessageBody,
    /// The meta itself, with `payload` removed (it is decoded in `body`).
    pub meta: Meta,
}

/// A delivery or read receipt (`MessageBody.type` DELIVER_ACK / READ_ACK).
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    /// `Meta.id` of the receipt itself.
    pub server_id: u64,
    /// `MessageBody.from.name`: who received/read the message.
    pub from: String,
    /// `MessageBody.to.name`.
    pub to: String,
    /// `MessageBody.ackMessageId`: the server id of the acknowledged message.
    pub acked_id: u64,
    /// `Meta.timestamp`.
    pub timestamp: u64,
    /// The decoded payload.
    pub body: MessageBody,
    /// The meta, with `payload` removed.
    pub meta: Meta,
}

/// One queue listed in a `CommUnreadDL`.
#[derive(Debug, Clone, PartialEq)]
pub struct UnreadQueue {
    /// `MetaQueue.queue`.
    pub queue: Jid,
    /// `MetaQueue.n`.
    pub count: u32,
}

/// Why the connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// This side closed it ([`Client::logout`](crate::Client::logout),
    /// [`Client::close`](crate::Client::close), or every `Client` handle dropped).
    Local,
    /// The server sent a WebSocket close frame.
    ServerClosed {
        /// Close code, if the frame had one.
        code: Option<u16>,
        /// Close reason text.
        reason: String,
    },
    /// The TCP stream ended without a close frame.
    Eof,
    /// A transport or WebSocket error.
    Error(String),
}

/// Something the server told this client.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A chat message (any `MessageBody.type` except DELIVER_ACK and READ_ACK).
    Message(Box<ReceivedMessage>),
    /// A delivery receipt (`DELIVER_ACK`).
    DeliveryAck(Box<Receipt>),
    /// A read receipt (`READ_ACK`).
    ReadAck(Box<Receipt>),
    /// Any other meta: other namespaces (MUC, ROSTER, NOTIFY, ...) and STATISTIC
    /// operation 0.
    Meta(Box<Meta>),
    /// A STATISTIC kick meta (spec §6.2); the server closes the socket next.
    Kicked {
        /// SDK error type: 207 removed, 206 other login, 216 password changed,
        /// 217 kicked by other device / admin.
        code: u16,
        /// `StatisticsBody.operation` (1–4).
        operation: i32,
        /// `StatisticsBody.reason`, if non-empty (for 206: the new device's login ext).
        reason: Option<String>,
    },
    /// A `CommUnreadDL` (reply to the login UNREAD or to a heartbeat).
    Unread {
        /// `CommUnreadDL.timestamp` (server ms).
        timestamp: Option<u64>,
        /// The listed queues.
        queues: Vec<UnreadQueue>,
    },
    /// The first non-empty `CommUnreadDL` list of this connection (the SDK's
    /// `onOfflineMessageSyncStart`); its queues are being pulled.
    OfflineSyncStart,
    /// Every queue of that list has ended with `isLast:true` (`onOfflineMessageSyncFinish`).
    OfflineSyncFinish,
    /// The server did something the SDK cannot cope with (missing `status`, text frame,
    /// undecodable frame, same `nextKey` twice, metas with `isLast:true`, ...).
    /// The client carries on.
    ProtocolViolation(String),
    /// The connection ended. Always the last event.
    Disconnected {
        /// Why.
        reason: DisconnectReason,
    },
}

fn name_of(jid: Option<&Jid>) -> Option<&str> {
    jid.and_then(|j| j.name.as_deref())
}

fn resource_of(jid: Option<&Jid>) -> Option<String> {
    jid.and_then(|j| j.client_resource.as_deref())
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
}

impl ReceivedMessage {
    /// Builds the event from a CHAT meta (`payload` already decoded into `body`).
    pub fn new(mut meta: Meta, body: MessageBody) -> Self {
        meta.payload = None;
        ReceivedMessage {
            server_id: meta.id.unwrap_or(0),
            from: name_of(body.from.as_ref())
                .or(name_of(meta.from.as_ref()))
                .unwrap_or_default()
                .to_owned(),
            from_resource: resource_of(meta.from.as_ref()),
            to: name_of(body.to.as_ref())
                .or(name_of(meta.to.as_ref()))
                .unwrap_or_default()
                .to_owned(),
            to_resource: resource_of(meta.to.as_ref()),
            timestamp: meta.timestamp.unwrap_or(0),
            online_state: online_state(meta.meta.as_deref()),
            body,
            meta,
        }
    }

    /// The text of the first content, if it has one.
    pub fn text(&self) -> Option<&str> {
        self.body.contents.first().and_then(|c| c.text.as_deref())
    }
}

impl Receipt {
    /// Builds the event from a receipt meta (`payload` already decoded into `body`).
    pub fn new(mut meta: Meta, body: MessageBody) -> Self {
        meta.payload = None;
        Receipt {
            server_id: meta.id.unwrap_or(0),
            from: name_of(body.from.as_ref())
                .or(name_of(meta.from.as_ref()))
                .unwrap_or_default()
                .to_owned(),
            to: name_of(body.to.as_ref())
                .or(name_of(meta.to.as_ref()))
                .unwrap_or_default()
                .to_owned(),
            acked_id: body.ack_message_id.unwrap_or(0),
            timestamp: meta.timestamp.unwrap_or(0),
            body,
            meta,
        }
    }
}

/// The receiving end of a connection's events (a bounded channel).
///
/// Drain it concurrently with sending: when it is full the reader task waits, and so do
/// send acknowledgements. Dropping it is fine; events are then discarded.
#[derive(Debug)]
pub struct Events {
    rx: mpsc::Receiver<Event>,
}

impl Events {
    pub(crate) fn new(rx: mpsc::Receiver<Event>) -> Self {
        Events { rx }
    }

    /// The next event; `None` after [`Event::Disconnected`] has been received.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next event if one is ready.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }

    /// The next event within `timeout`: [`ClientError::Timeout`] if none came,
    /// [`ClientError::Disconnected`] if the channel is finished.
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Result<Event, ClientError> {
        match tokio::time::timeout(timeout, self.rx.recv()).await {
            Ok(Some(event)) => Ok(event),
            Ok(None) => Err(ClientError::Disconnected),
            Err(_) => Err(ClientError::Timeout("event")),
        }
    }

    /// Receives events until `select` returns `Some`, within `timeout` in total.
    /// Events it rejects are dropped.
    pub async fn wait_for<T>(
        &mut self,
        timeout: Duration,
        mut select: impl FnMut(Event) -> Option<T>,
    ) -> Result<T, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(event)) => {
                    if let Some(found) = select(event) {
                        return Ok(found);
                    }
                }
                Ok(None) => return Err(ClientError::Disconnected),
                Err(_) => return Err(ClientError::Timeout("matching event")),
            }
        }
    }

    /// The next [`Event::Message`] within `timeout`, skipping other events.
    pub async fn next_message(
        &mut self,
        timeout: Duration,
    ) -> Result<ReceivedMessage, ClientError> {
        self.wait_for(timeout, |e| match e {
            Event::Message(m) => Some(*m),
            _ => None,
        })
        .await
    }

    /// The underlying channel receiver.
    pub fn into_inner(self) -> mpsc::Receiver<Event> {
        self.rx
    }
}
