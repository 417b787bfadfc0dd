//! The per-connection state machine: waiting for PROVISION, then logged in until the client
//! logs out, goes quiet, breaks the protocol, or the server kicks it.
//!
//! One task runs [`run`]: it selects over the socket (which also writes what handlers
//! queued, see [`connection`](super::connection)), the kick signal, the new-message signal
//! and the timer (login deadline, then idle timeout). It is the connection's only task.

use std::future::pending;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::WebSocket;
use ferrim_core::app::App;
use ferrim_core::clock::now_ms;
use ferrim_core::sessions::{KickReason, SessionSignals};
use ferrim_proto::pb::m_sync::Command;
use ferrim_proto::pb::status::ErrorCode;
use ferrim_proto::pb::MSync;
use tokio::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

use super::cmd;
use super::connection::{Close, FrameSocket, Inbound, Outbox, Overflow};
use super::{frames, inbox};
use crate::state::AppState;

/// How long a closing connection waits for the client's close reply.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// An authenticated device.
#[derive(Debug)]
pub(crate) struct LoggedIn {
    pub(crate) app: Arc<App>,
    /// `org#app`, as JIDs carry it.
    pub(crate) app_key: String,
    pub(crate) user_id: Uuid,
    /// Lowercase user ID.
    pub(crate) username: String,
    pub(crate) resource: String,
    pub(crate) signals: SessionSignals,
    /// This device's position in the user's inbox.
    pub(crate) inbox: inbox::InboxState,
}

/// What a handler decided.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    /// Send this close frame (after anything already queued) and end.
    Close(Close),
    /// The client closed or the connection dropped: just end.
    PeerClosed,
}

/// How the connection ended.
#[derive(Debug)]
enum End {
    Close(Close),
    PeerClosed,
    /// Writing failed or stalled, or the client is too slow: no close frame can be sent.
    Abort,
}

/// One connection's session.
pub(crate) struct Session {
    state: AppState,
    outbox: Outbox,
    login: Option<LoggedIn>,
    in_registry: bool,
}

impl Session {
    pub(crate) fn state(&self) -> &AppState {
        &self.state
    }

    pub(crate) fn outbox(&mut self) -> &mut Outbox {
        &mut self.outbox
    }

    pub(crate) fn login(&self) -> Option<&LoggedIn> {
        self.login.as_ref()
    }

    pub(crate) fn set_login(&mut self, login: LoggedIn) {
        let span = tracing::Span::current();
        span.record("user", login.username.as_str());
        span.record("resource", login.resource.as_str());
        self.login = Some(login);
        self.in_registry = true;
    }

    /// Takes this device off the online list (idempotent). Only this session's entry is
    /// removed, never a newer connection of the same resource.
    pub(crate) fn leave_registry(&mut self) {
        if let (Some(login), true) = (&self.login, self.in_registry) {
            self.state.accounts.presence().remove(
                login.app.id,
                login.user_id,
                login.signals.session_id,
            );
            self.in_registry = false;
        }
    }

    async fn serve(&mut self, socket: &mut FrameSocket) -> End {
        let ws = &self.state.settings.ws;
        let idle = Duration::from_secs(ws.idle_timeout_secs);
        // Before login the timer is the login deadline; afterwards the idle timeout, pushed
        // back by every frame received.
        let timer = tokio::time::sleep(Duration::from_secs(ws.login_timeout_secs));
        tokio::pin!(timer);
        // Armed only while new messages wait behind an unacknowledged batch.
        let recheck = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(recheck);
        let mut recheck_armed = false;
        loop {
            let signals = self.login.as_ref().map(|l| &l.signals);
            // Every branch only borrows; handlers run after the futures are dropped.
            let step = tokio::select! {
                biased;
                reason = kicked(signals) => Step::Kick(reason),
                inbound = socket.next(&mut self.outbox) => Step::Inbound(inbound),
                () = new_messages(signals) => Step::Notify,
                () = &mut recheck, if recheck_armed => Step::Recheck,
                () = &mut timer => Step::Timeout,
            };
            let flow = match step {
                Step::Kick(reason) => self.on_kick(reason),
                Step::Inbound(Inbound::Broken) => return End::Abort,
                Step::Inbound(inbound) => {
                    let flow = self.on_inbound(inbound).await;
                    if self.login.is_some() {
                        timer.as_mut().reset(Instant::now() + idle);
                    }
                    flow
                }
                Step::Notify | Step::Recheck => {
                    let flow = self.on_notify(matches!(step, Step::Recheck)).await;
                    recheck_armed = false;
                    if let Some(at) = self.login.as_ref().and_then(inbox::recheck_at) {
                        let wait = Duration::from_millis(at.saturating_sub(now_ms()));
                        recheck.as_mut().reset(Instant::now() + wait);
                        recheck_armed = true;
                    }
                    flow
                }
                Step::Timeout => Ok(Flow::Close(if self.login.is_some() {
                    Close::IDLE
                } else {
                    Close::LOGIN_TIMEOUT
                })),
            };
            match flow {
                Ok(Flow::Continue) => {}
                Ok(Flow::Close(close)) => return End::Close(close),
                Ok(Flow::PeerClosed) => return End::PeerClosed,
                Err(Overflow) => {
                    tracing::info!("client too slow: outbound queue full");
                    return End::Abort;
                }
            }
        }
    }

    fn on_kick(&mut self, reason: KickReason) -> Result<Flow, Overflow> {
        metrics::counter!("ferrim_kicks_total", "reason" => kick_label(&reason)).increment(1);
        tracing::info!(?reason, "kicked");
        // The registry removed the entry before signalling.
        self.in_registry = false;
        let Some(login) = &self.login else {
            return Ok(Flow::Close(Close::KICKED));
        };
        match frames::kick_operation(&reason) {
            Some((operation, ext)) => {
                let frame = frames::kick(&login.app_key, &login.username, operation, ext);
                self.outbox.send(&frame)?;
                Ok(Flow::Close(Close::KICKED))
            }
            None => Ok(Flow::Close(Close::SHUTDOWN)),
        }
    }

    async fn on_notify(&mut self, recheck: bool) -> Result<Flow, Overflow> {
        if let Some(login) = &self.login {
            let frame = if recheck {
                inbox::on_recheck(login)
            } else {
                inbox::on_notify(login)
            };
            if let Some(frame) = frame {
                self.outbox.send(&frame)?;
            }
        }
        Ok(Flow::Continue)
    }

    async fn on_inbound(&mut self, inbound: Inbound) -> Result<Flow, Overflow> {
        match inbound {
            Inbound::Frame(frame) => self.on_frame(*frame).await,
            Inbound::Activity => Ok(Flow::Continue),
            Inbound::Closed | Inbound::Broken => Ok(Flow::PeerClosed),
            Inbound::Fault(close) => {
                tracing::debug!(?close, "protocol fault");
                Ok(Flow::Close(close))
            }
        }
    }

    async fn on_frame(&mut self, frame: MSync) -> Result<Flow, Overflow> {
        // A missing enum reads as its first value, SYNC, as in every protobuf decoder.
        let command = Command::try_from(frame.command.unwrap_or(0)).ok();
        let logged_in = self.login.is_some();
        match command {
            // Handlers are boxed so that their (large) state lives on the heap only while
            // they run; an idle connection's task then holds just this loop's state.
            Some(Command::Provision) if !logged_in => {
                Box::pin(cmd::provision::apply(self, frame)).await
            }
            Some(Command::Provision) => {
                let reply = frames::provision_error(ErrorCode::WrongParameter, "already logged in");
                self.outbox.send(&reply)?;
                Ok(Flow::Close(Close::DOUBLE_LOGIN))
            }
            Some(Command::Unread) => Box::pin(cmd::unread::apply(self)).await,
            Some(Command::Sync) if logged_in => Box::pin(cmd::sync::apply(self, frame)).await,
            Some(Command::Sync) => Ok(Flow::Close(Close::NOT_LOGGED_IN)),
            Some(Command::Logout) => cmd::logout::apply(self, frame),
            Some(Command::Notice) | None => Ok(Flow::Close(Close::UNEXPECTED)),
        }
    }
}

enum Step {
    Kick(KickReason),
    Inbound(Inbound),
    Notify,
    /// Messages held back behind an unacknowledged batch are due another look.
    Recheck,
    Timeout,
}

/// Resolves with the kick reason once the registry signals one; pends forever when not
/// logged in or when the registry dropped the handle without a kick.
async fn kicked(signals: Option<&SessionSignals>) -> KickReason {
    match signals {
        Some(s) => s.kicked().await,
        None => pending().await,
    }
}

async fn new_messages(signals: Option<&SessionSignals>) {
    match signals {
        Some(s) => s.new_messages().await,
        None => pending().await,
    }
}

fn kick_label(reason: &KickReason) -> &'static str {
    match reason {
        KickReason::LoginAnotherDevice { .. } => "login_another_device",
        KickReason::UserRemoved => "user_removed",
        KickReason::PasswordChanged => "password_changed",
        KickReason::KickedByOther => "kicked_by_other",
        KickReason::Replaced { .. } => "replaced",
        KickReason::Shutdown => "shutdown",
    }
}

/// Runs one upgraded connection to its end.
pub(crate) async fn run(state: AppState, socket: WebSocket) {
    let span = tracing::info_span!(
        "ws",
        user = tracing::field::Empty,
        resource = tracing::field::Empty
    );
    async move {
        let mut socket = FrameSocket::new(socket);
        let mut session = Session {
            state,
            outbox: Outbox::default(),
            login: None,
            in_registry: false,
        };
        let end = session.serve(&mut socket).await;
        // Offline at once, before the goodbye is flushed.
        session.leave_registry();
        tracing::debug!(?end, "connection ends");
        let Session { mut outbox, .. } = session;
        match end {
            End::Close(close) => {
                let replied = outbox.close(close).is_ok();
                socket.finish(&mut outbox, CLOSE_LINGER, replied).await;
            }
            End::PeerClosed => socket.finish(&mut outbox, CLOSE_LINGER, false).await,
            End::Abort => {}
        }
    }
    .instrument(span)
    .await
}
