//! The logged-in client: a cheap handle, one writer task that owns the socket sink, and one
//! reader task that runs the SDK's receive logic and reports [`Event`]s.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ferrim_proto::pb::{
    m_sync::Command, message_body, meta::NameSpace, CommNotice, CommSyncDl, CommUnreadDl, Jid,
    MSync, MessageBody, Meta, StatisticsBody,
};
use ferrim_proto::Message as _;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};

use crate::connection::{Connection, Session, WsStream};
use crate::event::{DisconnectReason, Event, Events, Receipt, ReceivedMessage, UnreadQueue};
use crate::frames::{self, kick_code, now_ms, trace_id};
use crate::options::LoginOptions;
use crate::pull::{PullAction, PullState};
use crate::ClientError;

/// The server's acknowledgement of a sent meta (spec §8.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendAck {
    /// The client meta id that was sent (`CommSyncDL.metaId`).
    pub meta_id: u64,
    /// `CommSyncDL.serverId`: the server message id (0 if absent).
    pub server_id: u64,
    /// `CommSyncDL.timestamp` (epoch ms, 0 if absent).
    pub timestamp: u64,
}

/// Interprets a `CommSyncDL` that carries a `metaId` (a send acknowledgement).
pub fn ack_result(dl: &CommSyncDl) -> Result<SendAck, ClientError> {
    let Some(status) = &dl.status else {
        return Err(ClientError::Protocol(
            "send ack without status (the SDK never settles the send)".to_owned(),
        ));
    };
    let code = status.error_code.unwrap_or(0);
    if code != 0 {
        return Err(ClientError::SendRefused {
            code,
            reason: status.reason.clone().unwrap_or_default(),
        });
    }
    Ok(SendAck {
        meta_id: dl.meta_id.unwrap_or(0),
        server_id: dl.server_id.unwrap_or(0),
        timestamp: dl.timestamp.unwrap_or(0),
    })
}

/// `2010-02-01T00:00:00Z` in epoch ms: the SDK's local ids count from (about) there.
const LOCAL_ID_EPOCH_MS: u64 = 1_264_982_400_000;

type AckSender = oneshot::Sender<Result<SendAck, ClientError>>;

#[derive(Default)]
struct Pending {
    closed: bool,
    generation: u64,
    waiters: HashMap<u64, (u64, AckSender)>,
}

/// State shared by the handles and the reader task.
struct Shared {
    pending: Mutex<Pending>,
    last_local_id: AtomicU64,
    local_close: AtomicBool,
}

impl Shared {
    /// SDK-shaped local id (`now − 2010-02-01`), strictly increasing per client.
    fn next_local_id(&self) -> u64 {
        let candidate = now_ms().saturating_sub(LOCAL_ID_EPOCH_MS);
        let mut prev = self.last_local_id.load(Ordering::Relaxed);
        loop {
            let next = candidate.max(prev + 1);
            match self.last_local_id.compare_exchange_weak(
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

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Removes a waiter if the send future is dropped before its ack arrives.
struct PendingGuard<'a> {
    shared: &'a Shared,
    meta_id: u64,
    generation: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        let mut p = self.shared.pending();
        if p.waiters
            .get(&self.meta_id)
            .is_some_and(|(g, _)| *g == self.generation)
        {
            p.waiters.remove(&self.meta_id);
        }
    }
}

enum WriterCmd {
    Frame(WsMessage),
    Close(oneshot::Sender<()>),
}

#[derive(Debug, Clone, PartialEq)]
enum WriterState {
    Running,
    Closed,
    Failed(String),
}

struct Inner {
    tx: mpsc::Sender<WriterCmd>,
    shared: Arc<Shared>,
    session: Session,
    app_key: String,
    username: String,
    token: String,
    send_timeout: Duration,
    local_addr: SocketAddr,
}

/// A logged-in msync connection. Cloning is cheap; all clones use the same socket.
/// Dropping every clone closes the connection.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("username", &self.inner.username)
            .field("resource", &self.inner.session.resource)
            .field("local_addr", &self.inner.local_addr)
            .finish()
    }
}

impl Client {
    /// Connects to `url`, logs in with PROVISION, and starts the reader and writer tasks.
    ///
    /// Right after login it sends `UNREAD` and (with `sdk_statistics`) the statistics
    /// `SYNC`, as the SDK does. A refused login is [`ClientError::LoginRefused`].
    pub async fn connect(url: &str, opts: LoginOptions) -> Result<(Client, Events), ClientError> {
        let mut conn = Connection::connect(url, &opts.transport).await?;
        let session = conn.provision(&opts).await?;
        Self::start(conn, session, opts).await
    }

    /// Starts a client on a connection that has already completed PROVISION
    /// (see [`Connection::provision`]).
    pub async fn start(
        mut conn: Connection,
        session: Session,
        opts: LoginOptions,
    ) -> Result<(Client, Events), ClientError> {
        conn.send_binary(frames::unread_frame(trace_id())).await?;
        if opts.sdk_statistics {
            conn.send_binary(frames::statistics_frame(trace_id(), now_ms()))
                .await?;
        }
        let local_addr = conn.local_addr();
        let (sink, stream) = conn.into_inner().split();

        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            last_local_id: AtomicU64::new(0),
            local_close: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::channel(opts.commands_capacity.max(1));
        let (events_tx, events_rx) = mpsc::channel(opts.events_capacity.max(1));
        let (state_tx, state_rx) = watch::channel(WriterState::Running);
        let (done_tx, done_rx) = oneshot::channel();

        let my_resource = if session.reply.resource.is_some() {
            session.resource.clone()
        } else {
            String::new()
        };
        let reader = Reader {
            stream,
            tx: tx.downgrade(),
            events: events_tx,
            shared: shared.clone(),
            pulls: PullState::new(opts.recheck_notified_queues),
            me: opts.username.clone(),
            my_resource,
            app_key: opts.app_key.clone(),
            sdk_statistics: opts.sdk_statistics,
            auto_delivery_ack: opts.auto_delivery_ack,
            heartbeat: opts.heartbeat_interval,
            writer_state: state_rx,
            _done: done_tx,
        };
        tokio::spawn(run_writer(sink, rx, done_rx, state_tx));
        tokio::spawn(reader.run());

        let client = Client {
            inner: Arc::new(Inner {
                tx,
                shared,
                session,
                app_key: opts.app_key,
                username: opts.username,
                token: opts.token,
                send_timeout: opts.send_timeout,
                local_addr,
            }),
        };
        Ok((client, Events::new(events_rx)))
    }

    /// The login result (echoed resource, token expiry, session id, raw reply).
    pub fn session(&self) -> &Session {
        &self.inner.session
    }

    /// The logged-in user name.
    pub fn username(&self) -> &str {
        &self.inner.username
    }

    /// The app key.
    pub fn app_key(&self) -> &str {
        &self.inner.app_key
    }

    /// Local socket address of the connection.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.inner.tx.is_closed() || self.inner.shared.pending().closed
    }

    /// A fresh client meta id (SDK-shaped, unique for this client). Use it with the
    /// `*_with_id` methods, e.g. to send the same id twice.
    pub fn next_local_id(&self) -> u64 {
        self.inner.shared.next_local_id()
    }

    async fn write(&self, msg: WsMessage) -> Result<(), ClientError> {
        self.inner
            .tx
            .send(WriterCmd::Frame(msg))
            .await
            .map_err(|_| ClientError::Disconnected)
    }

    /// Sends a frame carrying meta `meta_id` and waits for the matching acknowledgement.
    async fn send_and_wait(&self, meta_id: u64, frame: Vec<u8>) -> Result<SendAck, ClientError> {
        let shared = &*self.inner.shared;
        let (ack_tx, ack_rx) = oneshot::channel();
        let generation = {
            let mut p = shared.pending();
            if p.closed {
                return Err(ClientError::Disconnected);
            }
            if p.waiters.contains_key(&meta_id) {
                return Err(ClientError::DuplicateMetaId(meta_id));
            }
            p.generation += 1;
            let generation = p.generation;
            p.waiters.insert(meta_id, (generation, ack_tx));
            generation
        };
        let _guard = PendingGuard {
            shared,
            meta_id,
            generation,
        };
        self.write(WsMessage::Binary(frame.into())).await?;
        match tokio::time::timeout(self.inner.send_timeout, ack_rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ClientError::Disconnected),
            Err(_) => Err(ClientError::SendTimeout { meta_id }),
        }
    }

    /// Sends a one-to-one text message to `to` (`"user"` or `"user/resource"`) exactly as
    /// the SDK does and waits for the server's acknowledgement.
    pub async fn send_text(&self, to: &str, text: &str) -> Result<SendAck, ClientError> {
        self.send_text_with_id(self.next_local_id(), to, text).await
    }

    /// [`send_text`](Self::send_text) with a chosen client meta id.
    pub async fn send_text_with_id(
        &self,
        meta_id: u64,
        to: &str,
        text: &str,
    ) -> Result<SendAck, ClientError> {
        let frame = frames::text_frame(
            trace_id(),
            meta_id,
            &self.inner.app_key,
            &self.inner.username,
            to,
            text,
        );
        self.send_and_wait(meta_id, frame).await
    }

    /// Sends a `CHAT` meta with a caller-built body (custom message, receipt, recall, ...).
    /// `from{name}` / `to{name}` are filled in if absent.
    pub async fn send_body(&self, to: &str, body: MessageBody) -> Result<SendAck, ClientError> {
        self.send_body_with_id(self.next_local_id(), to, body).await
    }

    /// [`send_body`](Self::send_body) with a chosen client meta id.
    pub async fn send_body_with_id(
        &self,
        meta_id: u64,
        to: &str,
        mut body: MessageBody,
    ) -> Result<SendAck, ClientError> {
        if body.from.is_none() {
            body.from = Some(name_jid(&self.inner.username));
        }
        if body.to.is_none() {
            let bare = to.split_once('/').map_or(to, |(name, _)| name);
            body.to = Some(name_jid(bare));
        }
        let frame = frames::body_frame(trace_id(), meta_id, &self.inner.app_key, to, &body);
        self.send_and_wait(meta_id, frame).await
    }

    /// Sends a fully caller-built meta and waits for its acknowledgement. A missing
    /// `Meta.id` is filled with [`next_local_id`](Self::next_local_id).
    pub async fn send_meta(&self, mut meta: Meta) -> Result<SendAck, ClientError> {
        let meta_id = *meta.id.get_or_insert_with(|| self.next_local_id());
        let frame = frames::meta_frame(trace_id(), &meta);
        self.send_and_wait(meta_id, frame).await
    }

    /// Sends a meta without waiting for (or tracking) its acknowledgement; returns its id.
    pub async fn send_meta_nowait(&self, mut meta: Meta) -> Result<u64, ClientError> {
        let meta_id = *meta.id.get_or_insert_with(|| self.next_local_id());
        self.write(WsMessage::Binary(
            frames::meta_frame(trace_id(), &meta).into(),
        ))
        .await?;
        Ok(meta_id)
    }

    /// Sends a delivery receipt (`DELIVER_ACK`) for server message `message_id` to `to`
    /// (spec §8.7).
    pub async fn send_delivery_ack(
        &self,
        to: &str,
        message_id: u64,
    ) -> Result<SendAck, ClientError> {
        self.send_body(to, receipt_body(message_body::Type::DeliverAck, message_id))
            .await
    }

    /// Sends a read receipt (`READ_ACK`) for server message `message_id` to `to`.
    pub async fn send_read_ack(&self, to: &str, message_id: u64) -> Result<SendAck, ClientError> {
        self.send_body(to, receipt_body(message_body::Type::ReadAck, message_id))
            .await
    }

    /// Sends an `UNREAD` (the SDK's heartbeat); the reply arrives as [`Event::Unread`].
    pub async fn heartbeat(&self) -> Result<(), ClientError> {
        self.write(WsMessage::Binary(frames::unread_frame(trace_id()).into()))
            .await
    }

    /// Sends an arbitrary `MSync`.
    pub async fn send_msync(&self, frame: &MSync) -> Result<(), ClientError> {
        self.write(WsMessage::Binary(frame.encode_to_vec().into()))
            .await
    }

    /// Sends raw bytes as one binary frame (for malformed-input tests).
    pub async fn send_raw(&self, bytes: impl Into<Bytes>) -> Result<(), ClientError> {
        self.write(WsMessage::Binary(bytes.into())).await
    }

    /// Sends a text frame (the SDK never does).
    pub async fn send_raw_text(&self, text: &str) -> Result<(), ClientError> {
        self.write(WsMessage::text(text)).await
    }

    /// Sends any WebSocket message (ping, close with a code, raw frame, ...).
    pub async fn send_ws_message(&self, msg: WsMessage) -> Result<(), ClientError> {
        self.write(msg).await
    }

    /// Logs out like `conn.close()`: sends LOGOUT (`guid`, `auth`,
    /// `Logout{sessionId, reason:"inner:logout"}`) and closes the socket at once.
    pub async fn logout(&self) -> Result<(), ClientError> {
        self.logout_with_reason(frames::LOGOUT_REASON).await
    }

    /// [`logout`](Self::logout) with another reason (the SDK also uses
    /// `"inner:token expired"`).
    pub async fn logout_with_reason(&self, reason: &str) -> Result<(), ClientError> {
        let guid = frames::guid(
            &self.inner.app_key,
            &self.inner.username,
            &self.inner.session.resource,
        );
        let frame = frames::logout_frame(
            trace_id(),
            &guid,
            &self.inner.token,
            &self.inner.session.session_id,
            reason,
        );
        self.write(WsMessage::Binary(frame.into())).await?;
        self.close().await
    }

    /// Closes the WebSocket without LOGOUT (what older SDKs do, or a page unload).
    pub async fn close(&self) -> Result<(), ClientError> {
        self.inner.shared.local_close.store(true, Ordering::Relaxed);
        let (done_tx, done_rx) = oneshot::channel();
        self.inner
            .tx
            .send(WriterCmd::Close(done_tx))
            .await
            .map_err(|_| ClientError::Disconnected)?;
        let _ = done_rx.await;
        Ok(())
    }
}

fn name_jid(name: &str) -> Jid {
    Jid {
        name: Some(name.to_owned()),
        ..Jid::default()
    }
}

fn receipt_body(kind: message_body::Type, message_id: u64) -> MessageBody {
    MessageBody {
        r#type: Some(kind as i32),
        ack_message_id: Some(message_id),
        contents: vec![message_body::Content::default()],
        ..MessageBody::default()
    }
}

/// Most frames the writer coalesces into one flush.
const WRITE_BATCH: usize = 64;
/// How long the reader waits for the TCP stream to end once a close has started
/// (either side).
const CLOSE_GRACE: Duration = Duration::from_secs(2);

async fn run_writer(
    mut sink: SplitSink<WsStream, WsMessage>,
    mut rx: mpsc::Receiver<WriterCmd>,
    mut reader_done: oneshot::Receiver<()>,
    state: watch::Sender<WriterState>,
) {
    let outcome = write_loop(&mut sink, &mut rx, &mut reader_done).await;
    // Later sends fail at once with `Disconnected` instead of queueing.
    drop(rx);
    let new_state = match outcome {
        Ok(true) => WriterState::Closed,
        Ok(false) => return,
        Err(e) => {
            tracing::debug!(error = %e, "msync writer failed");
            WriterState::Failed(e.to_string())
        }
    };
    let _ = state.send(new_state);
    // Keep the sink (and so the socket) until the reader has finished the close.
    let _ = reader_done.await;
}

/// Writes frames until a close (`Ok(true)`), the reader's end (`Ok(false)`) or an error.
async fn write_loop(
    sink: &mut SplitSink<WsStream, WsMessage>,
    rx: &mut mpsc::Receiver<WriterCmd>,
    reader_done: &mut oneshot::Receiver<()>,
) -> Result<bool, tungstenite::Error> {
    loop {
        let cmd = tokio::select! {
            cmd = rx.recv() => cmd,
            _ = &mut *reader_done => return Ok(false),
        };
        match cmd {
            None => {
                // Every Client handle is gone.
                sink.close().await?;
                return Ok(true);
            }
            Some(WriterCmd::Close(done)) => {
                rx.close();
                sink.close().await?;
                let _ = done.send(());
                return Ok(true);
            }
            Some(WriterCmd::Frame(msg)) => {
                sink.feed(msg).await?;
                for _ in 1..WRITE_BATCH {
                    match rx.try_recv() {
                        Ok(WriterCmd::Frame(msg)) => sink.feed(msg).await?,
                        Ok(WriterCmd::Close(done)) => {
                            rx.close();
                            sink.close().await?;
                            let _ = done.send(());
                            return Ok(true);
                        }
                        Err(_) => break,
                    }
                }
                sink.flush().await?;
            }
        }
    }
}

struct Reader {
    stream: SplitStream<WsStream>,
    tx: mpsc::WeakSender<WriterCmd>,
    events: mpsc::Sender<Event>,
    shared: Arc<Shared>,
    pulls: PullState,
    me: String,
    my_resource: String,
    app_key: String,
    sdk_statistics: bool,
    auto_delivery_ack: bool,
    heartbeat: Option<Duration>,
    writer_state: watch::Receiver<WriterState>,
    /// Dropped when the reader ends, which stops the writer.
    _done: oneshot::Sender<()>,
}

impl Reader {
    async fn run(mut self) {
        let reason = self.read_loop().await;
        {
            let mut p = self.shared.pending();
            p.closed = true;
            p.waiters.clear();
        }
        tracing::debug!(user = %self.me, ?reason, "msync connection ended");
        let _ = self.events.send(Event::Disconnected { reason }).await;
    }

    async fn read_loop(&mut self) -> DisconnectReason {
        let mut last_rx = Instant::now();
        let mut heartbeat = self.heartbeat.map(|d| {
            let mut i = tokio::time::interval_at(Instant::now() + d, d);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        let mut close_frame: Option<DisconnectReason> = None;
        let mut watch_writer = true;
        let mut grace: Option<Instant> = None;
        let shared = self.shared.clone();
        let local = || shared.local_close.load(Ordering::Relaxed);
        loop {
            tokio::select! {
                msg = self.stream.next() => {
                    last_rx = Instant::now();
                    match msg {
                        Some(Ok(WsMessage::Binary(bytes))) => self.handle_frame(&bytes).await,
                        Some(Ok(WsMessage::Text(text))) => {
                            self.violation(format!("text frame from server: {:?}", text.as_str())).await;
                        }
                        Some(Ok(WsMessage::Close(frame))) => {
                            // tungstenite sends the close reply on the next read; then wait
                            // (bounded) for the server to end the TCP stream.
                            grace.get_or_insert(Instant::now() + CLOSE_GRACE);
                            close_frame = Some(DisconnectReason::ServerClosed {
                                code: frame.as_ref().map(|f| u16::from(f.code)),
                                reason: frame.map(|f| f.reason.as_str().to_owned()).unwrap_or_default(),
                            });
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            return if local() {
                                DisconnectReason::Local
                            } else {
                                close_frame.unwrap_or(DisconnectReason::Error(e.to_string()))
                            };
                        }
                        None => {
                            return if local() {
                                DisconnectReason::Local
                            } else {
                                close_frame.unwrap_or(DisconnectReason::Eof)
                            };
                        }
                    }
                }
                _ = async { heartbeat.as_mut().expect("guarded").tick().await }, if heartbeat.is_some() => {
                    let period = self.heartbeat.expect("set with heartbeat");
                    if last_rx.elapsed() >= period {
                        self.write(frames::unread_frame(trace_id())).await;
                    }
                }
                changed = self.writer_state.changed(), if watch_writer => {
                    if changed.is_err() {
                        watch_writer = false;
                        continue;
                    }
                    let state = self.writer_state.borrow_and_update().clone();
                    match state {
                        WriterState::Running => {}
                        WriterState::Closed => {
                            // This side closed (close/logout or every handle dropped).
                            self.shared.local_close.store(true, Ordering::Relaxed);
                            watch_writer = false;
                            grace = Some(Instant::now() + CLOSE_GRACE);
                        }
                        WriterState::Failed(e) => {
                            return if local() { DisconnectReason::Local } else { DisconnectReason::Error(e) };
                        }
                    }
                }
                _ = async { tokio::time::sleep_until(grace.expect("guarded")).await }, if grace.is_some() => {
                    return if local() {
                        DisconnectReason::Local
                    } else {
                        close_frame.unwrap_or(DisconnectReason::Eof)
                    };
                }
            }
        }
    }

    async fn emit(&self, event: Event) {
        // A dropped Events receiver just means nobody listens.
        let _ = self.events.send(event).await;
    }

    async fn violation(&self, detail: String) {
        tracing::warn!(user = %self.me, %detail, "msync protocol violation");
        self.emit(Event::ProtocolViolation(detail)).await;
    }

    async fn write(&self, frame: Vec<u8>) {
        if let Some(tx) = self.tx.upgrade() {
            let _ = tx
                .send(WriterCmd::Frame(WsMessage::Binary(frame.into())))
                .await;
        }
    }

    async fn do_pull(&self, action: Option<PullAction>) {
        match action {
            Some(PullAction::Pull(queue)) => {
                self.write(frames::pull_frame(trace_id(), &queue, None))
                    .await;
            }
            Some(PullAction::Ack(queue, key)) => {
                self.write(frames::pull_frame(trace_id(), &queue, Some(key)))
                    .await;
            }
            None => {}
        }
    }

    async fn handle_frame(&mut self, bytes: &[u8]) {
        let frame = match MSync::decode(bytes) {
            Ok(f) => f,
            Err(e) => return self.violation(format!("undecodable MSync: {e}")).await,
        };
        let payload = frame.payload.as_deref().unwrap_or_default();
        match Command::try_from(frame.command.unwrap_or(0)) {
            Ok(Command::Sync) => match CommSyncDl::decode(payload) {
                Ok(dl) => self.handle_sync(dl).await,
                Err(e) => self.violation(format!("undecodable CommSyncDL: {e}")).await,
            },
            Ok(Command::Unread) => match CommUnreadDl::decode(payload) {
                Ok(dl) => self.handle_unread(dl).await,
                Err(e) => {
                    self.violation(format!("undecodable CommUnreadDL: {e}"))
                        .await
                }
            },
            Ok(Command::Notice) => match CommNotice::decode(payload) {
                Ok(CommNotice { queue: Some(queue) }) => {
                    let action = self.pulls.notice(queue, &self.me, &self.my_resource);
                    self.do_pull(action).await;
                }
                Ok(CommNotice { queue: None }) => {
                    self.violation("NOTICE without queue".to_owned()).await;
                }
                Err(e) => self.violation(format!("undecodable CommNotice: {e}")).await,
            },
            Ok(Command::Logout) => tracing::debug!(user = %self.me, "LOGOUT reply"),
            Ok(Command::Provision) => {
                tracing::debug!(user = %self.me, "PROVISION frame after login ignored");
            }
            Err(_) => {
                self.violation(format!("unexpected msync command {:?}", frame.command))
                    .await;
            }
        }
    }

    async fn handle_sync(&mut self, dl: CommSyncDl) {
        if dl.meta_id.unwrap_or(0) > 0 {
            let meta_id = dl.meta_id.unwrap_or(0);
            let waiter = self.shared.pending().waiters.remove(&meta_id);
            match waiter {
                Some((_, tx)) => {
                    let _ = tx.send(ack_result(&dl));
                }
                None => tracing::trace!(meta_id, "ack for a meta nobody waits for"),
            }
            return;
        }
        if dl.status.is_none() {
            self.violation(
                "CommSyncDL without status (the SDK throws and loses the metas)".to_owned(),
            )
            .await;
        }
        let has_metas = !dl.metas.is_empty();
        let mut kicked = false;
        for meta in dl.metas {
            kicked |= self.handle_meta(meta).await;
        }
        let out = self.pulls.dl(
            dl.queue,
            has_metas,
            dl.is_last.unwrap_or(false),
            dl.next_key,
            kicked,
        );
        if let Some(v) = out.violation {
            self.violation(v).await;
        }
        if kicked {
            // The server closes the socket next; the SDK pulls nothing more.
            return;
        }
        self.do_pull(out.action).await;
        if out.offline_finished {
            self.emit(Event::OfflineSyncFinish).await;
        }
    }

    /// Reports one meta; returns whether it was a kick.
    async fn handle_meta(&mut self, meta: Meta) -> bool {
        if meta.id.unwrap_or(0) == 0 {
            self.violation("meta without id".to_owned()).await;
        }
        if meta.from.is_none() {
            self.violation(format!("meta {:?} without from", meta.id))
                .await;
        }
        let payload = meta.payload.as_deref().unwrap_or_default();
        match NameSpace::try_from(meta.ns.unwrap_or(0)) {
            Ok(NameSpace::Statistic) => {
                let stats = match StatisticsBody::decode(payload) {
                    Ok(s) => s,
                    Err(e) => {
                        self.violation(format!("undecodable StatisticsBody: {e}"))
                            .await;
                        return false;
                    }
                };
                let operation = stats.operation.unwrap_or(0);
                if let Some(code) = kick_code(operation) {
                    self.emit(Event::Kicked {
                        code,
                        operation,
                        reason: stats.reason.filter(|r| !r.is_empty()),
                    })
                    .await;
                    return true;
                }
                self.emit(Event::Meta(Box::new(meta))).await;
            }
            Ok(NameSpace::Chat) => {
                let body = match MessageBody::decode(payload) {
                    Ok(b) => b,
                    Err(e) => {
                        self.violation(format!(
                            "undecodable MessageBody in meta {:?}: {e}",
                            meta.id
                        ))
                        .await;
                        return false;
                    }
                };
                if body.contents.is_empty() {
                    self.violation(format!(
                        "MessageBody without contents in meta {:?}",
                        meta.id
                    ))
                    .await;
                }
                match message_body::Type::try_from(body.r#type.unwrap_or(0)) {
                    Ok(message_body::Type::DeliverAck) => {
                        self.emit(Event::DeliveryAck(Box::new(Receipt::new(meta, body))))
                            .await;
                    }
                    Ok(message_body::Type::ReadAck) => {
                        self.emit(Event::ReadAck(Box::new(Receipt::new(meta, body))))
                            .await;
                    }
                    kind => {
                        let msg = ReceivedMessage::new(meta, body);
                        if self.auto_delivery_ack
                            && kind == Ok(message_body::Type::Chat)
                            && msg.from != self.me
                        {
                            self.send_delivery_ack(&msg).await;
                        }
                        self.emit(Event::Message(Box::new(msg))).await;
                    }
                }
            }
            _ => self.emit(Event::Meta(Box::new(meta))).await,
        }
        false
    }

    async fn send_delivery_ack(&self, msg: &ReceivedMessage) {
        let body = MessageBody {
            from: Some(name_jid(&self.me)),
            to: Some(name_jid(&msg.from)),
            ..receipt_body(message_body::Type::DeliverAck, msg.server_id)
        };
        let frame = frames::body_frame(
            trace_id(),
            self.shared.next_local_id(),
            &self.app_key,
            &msg.from,
            &body,
        );
        self.write(frame).await;
    }

    async fn handle_unread(&mut self, dl: CommUnreadDl) {
        if dl.status.is_none() {
            self.violation("CommUnreadDL without status".to_owned())
                .await;
        }
        let queues: Vec<UnreadQueue> = dl
            .unread
            .into_iter()
            .filter_map(|mq| {
                mq.queue.map(|queue| UnreadQueue {
                    queue,
                    count: mq.n.unwrap_or(0),
                })
            })
            .collect();
        let jids: Vec<Jid> = queues.iter().map(|q| q.queue.clone()).collect();
        let empty = jids.is_empty();
        self.emit(Event::Unread {
            timestamp: dl.timestamp,
            queues,
        })
        .await;
        let (action, started) = self.pulls.unread(jids);
        if started {
            self.emit(Event::OfflineSyncStart).await;
        }
        self.do_pull(action).await;
        if self.sdk_statistics {
            let times = if empty { 2 } else { 1 };
            for _ in 0..times {
                self.write(frames::statistics_frame(trace_id(), now_ms()))
                    .await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrim_proto::pb::Status;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn sync_dl(hexstr: &str) -> CommSyncDl {
        let frame = MSync::decode(hex(hexstr).as_slice()).unwrap();
        assert_eq!(frame.command, Some(Command::Sync as i32));
        CommSyncDl::decode(frame.payload.as_deref().unwrap()).unwrap()
    }

    #[test]
    fn send_ack_vector() {
        let dl = sync_dl("40004a1a0a0010bda7d4ebb80f189582a6efc79e8491114080d0eab6b733");
        let ack = ack_result(&dl).unwrap();
        assert_eq!(
            ack,
            SendAck {
                meta_id: 530_654_237_629,
                server_id: 1_234_567_890_123_456_789,
                timestamp: 1_767_225_600_000,
            }
        );
    }

    #[test]
    fn ack_without_status_or_refused() {
        let dl = CommSyncDl {
            meta_id: Some(1),
            ..CommSyncDl::default()
        };
        assert!(matches!(ack_result(&dl), Err(ClientError::Protocol(_))));
        let dl = CommSyncDl {
            meta_id: Some(1),
            status: Some(Status {
                error_code: Some(15),
                reason: Some("you were muted".into()),
                ..Status::default()
            }),
            ..CommSyncDl::default()
        };
        match ack_result(&dl) {
            Err(ClientError::SendRefused { code, reason }) => {
                assert_eq!(code, 15);
                assert_eq!(reason, "you were muted");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn pull_result_vector_decodes_to_message() {
        let mut dl = sync_dl("40004aa8010a00227b089682a6efc79e84911112280a076f7267236170701203626f621a0b656173656d6f622e636f6d220b776562696d5f7765625f321a1d0a076f7267236170701205616c6963651a0b656173656d6f622e636f6d2080d0eab6b7332801321d080112051203626f621a071205616c69636522090800120568656c6c6f289682a6efc79e849111321b0a076f7267236170701203626f621a0b656173656d6f622e636f6d3800");
        assert_eq!(dl.is_last, Some(false));
        assert_eq!(dl.next_key, Some(1_234_567_890_123_456_790));
        assert_eq!(dl.queue.as_ref().unwrap().name.as_deref(), Some("bob"));
        assert_eq!(dl.metas.len(), 1);
        let meta = dl.metas.remove(0);
        let body = MessageBody::decode(meta.payload.as_deref().unwrap()).unwrap();
        let msg = ReceivedMessage::new(meta, body);
        assert_eq!(msg.server_id, 1_234_567_890_123_456_790);
        assert_eq!(msg.from, "bob");
        assert_eq!(msg.from_resource.as_deref(), Some("webim_web_2"));
        assert_eq!(msg.to, "alice");
        assert_eq!(msg.to_resource, None);
        assert_eq!(msg.timestamp, 1_767_225_600_000);
        assert_eq!(msg.text(), Some("hello"));
        assert_eq!(msg.online_state, 3);
        assert_eq!(msg.meta.payload, None);
    }

    #[test]
    fn kick_vector() {
        let dl = sync_dl("40004a3e0a002219089782a6efc79e8491112080d0eab6b7332800320408025200321d0a076f7267236170701205616c6963651a0b656173656d6f622e636f6d3801");
        assert_eq!(dl.is_last, Some(true));
        let meta = &dl.metas[0];
        assert_eq!(meta.ns, Some(NameSpace::Statistic as i32));
        let stats = StatisticsBody::decode(meta.payload.as_deref().unwrap()).unwrap();
        assert_eq!(stats.operation, Some(2));
        assert_eq!(kick_code(stats.operation.unwrap()), Some(206));
        assert_eq!(stats.reason.as_deref(), Some(""));
    }

    #[test]
    fn notice_and_end_of_queue_vectors() {
        let frame = MSync::decode(
            hex("40024a1d0a1b0a076f7267236170701203626f621a0b656173656d6f622e636f6d").as_slice(),
        )
        .unwrap();
        assert_eq!(frame.command, Some(Command::Notice as i32));
        let notice = CommNotice::decode(frame.payload.as_deref().unwrap()).unwrap();
        assert_eq!(notice.queue.unwrap().name.as_deref(), Some("bob"));
        let end =
            sync_dl("40004a210a00321b0a076f7267236170701203626f621a0b656173656d6f622e636f6d3801");
        assert_eq!(end.is_last, Some(true));
        assert!(end.metas.is_empty());
        assert!(end.status.is_some());
    }

    #[test]
    fn unread_vector() {
        let frame = MSync::decode(hex("40014a090a001880d0eab6b733").as_slice()).unwrap();
        assert_eq!(frame.command, Some(Command::Unread as i32));
        let dl = CommUnreadDl::decode(frame.payload.as_deref().unwrap()).unwrap();
        assert!(dl.unread.is_empty());
        assert_eq!(dl.timestamp, Some(1_767_225_600_000));
        assert!(dl.status.is_some());
    }

    #[test]
    fn local_ids_are_sdk_shaped_and_increasing() {
        let shared = Shared {
            pending: Mutex::new(Pending::default()),
            last_local_id: AtomicU64::new(0),
            local_close: AtomicBool::new(false),
        };
        let a = shared.next_local_id();
        let b = shared.next_local_id();
        assert!(b > a);
        assert!(a > 500_000_000_000, "about 12 digits like the SDK: {a}");
    }
}
