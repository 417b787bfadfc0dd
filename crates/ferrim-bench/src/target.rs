//! What a workload needs from a server, whatever protocol it speaks: register users, log a
//! user in (optionally from a given source address), send one-to-one texts, heartbeat, and
//! be told about received messages and kicks.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::time::Instant;

use crate::{ferrim, xmpp};

/// Something a logged-in session was told by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A one-to-one text message.
    Message {
        /// The text (the workloads stamp their bookkeeping into it).
        text: String,
    },
    /// The server kicked this session (msync STATISTIC kick, XMPP `conflict` stream error).
    Kicked,
    /// The connection ended.
    Closed,
}

/// Where a session reports what it receives; called from the session's reader task.
pub type Sink = Arc<dyn Fn(Incoming) + Send + Sync>;

/// A sink that drops everything.
pub fn null_sink() -> Sink {
    Arc::new(|_| {})
}

/// The server under test.
#[derive(Clone)]
pub enum Target {
    /// ferrim: REST for setup, msync over WebSocket for sessions.
    Ferrim(Arc<ferrim::FerrimTarget>),
    /// An XMPP server (ejabberd) over client-to-server TCP.
    Xmpp(Arc<xmpp::XmppTarget>),
}

/// How one registration run went.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RegisterOutcome {
    pub requested: usize,
    pub created: usize,
    pub already_existed: usize,
    pub failed: usize,
    pub seconds: f64,
    pub users_per_sec: f64,
    /// How users were registered (e.g. "REST batch of 60, argon2 cost test").
    pub method: String,
}

impl Target {
    /// `ferrim` or `xmpp`.
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Ferrim(_) => "ferrim",
            Target::Xmpp(_) => "xmpp",
        }
    }

    /// How many server nodes sessions are spread over (1 but for a ferrim cluster).
    pub fn nodes(&self) -> usize {
        match self {
            Target::Ferrim(t) => t.nodes(),
            Target::Xmpp(_) => 1,
        }
    }

    /// The user name for index `i`.
    pub fn user(&self, i: usize) -> String {
        match self {
            Target::Ferrim(t) => t.user(i),
            Target::Xmpp(t) => t.user(i),
        }
    }

    /// Registers users `first..first + n` (W0); existing users count as such, not as errors.
    pub async fn register(&self, first: usize, n: usize) -> Result<RegisterOutcome> {
        match self {
            Target::Ferrim(t) => t.register(first, n).await,
            Target::Xmpp(t) => t.register(first, n).await,
        }
    }

    /// Whatever else is needed before users `first..first + n` can log in (ferrim: fetch
    /// their tokens).
    pub async fn prepare_logins(&self, first: usize, n: usize) -> Result<()> {
        match self {
            Target::Ferrim(t) => t.fetch_tokens(first, n).await,
            Target::Xmpp(_) => Ok(()),
        }
    }

    /// Sets the per-platform device cap (and kick-earliest policy) where the tool can;
    /// for XMPP it is `max_user_sessions` in the server's configuration.
    pub async fn set_device_cap(&self, cap: u32) -> Result<()> {
        match self {
            Target::Ferrim(t) => t.set_device_cap(cap).await,
            Target::Xmpp(_) => Ok(()),
        }
    }

    /// Logs user `i` in with a new device `resource`, reporting to `sink`. `src` binds the
    /// socket's local address. The whole login must finish within `timeout`.
    pub async fn login(
        &self,
        i: usize,
        resource: &str,
        src: Option<IpAddr>,
        sink: Sink,
        timeout: Duration,
    ) -> Result<Session> {
        let work = async {
            match self {
                Target::Ferrim(t) => t.login(i, resource, src, sink).await.map(Session::Ferrim),
                Target::Xmpp(t) => t.login(i, resource, src, sink).await.map(Session::Xmpp),
            }
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => anyhow::bail!("login timed out after {timeout:?}"),
        }
    }

    /// A login that is closed as soon as it has succeeded (W1): for ferrim TCP + WebSocket
    /// upgrade + PROVISION + reply, for XMPP TCP + stream + SASL PLAIN + bind + session +
    /// presence. Returns when the login completed.
    pub async fn login_and_drop(
        &self,
        i: usize,
        resource: &str,
        src: Option<IpAddr>,
        timeout: Duration,
    ) -> Result<Instant> {
        let work = async {
            match self {
                Target::Ferrim(t) => t.login_and_drop(i, resource, src).await,
                Target::Xmpp(t) => t.login_and_drop(i, resource, src).await,
            }
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => anyhow::bail!("login timed out after {timeout:?}"),
        }
    }
}

/// A logged-in session.
pub enum Session {
    Ferrim(ferrim::FerrimSession),
    Xmpp(xmpp::XmppSession),
}

impl Session {
    /// Index of the node this session is connected to (0 on a single server).
    pub fn node(&self) -> usize {
        match self {
            Session::Ferrim(s) => s.node(),
            Session::Xmpp(_) => 0,
        }
    }

    /// Sends a one-to-one text to `to` (a user name). For ferrim this waits for the server's
    /// acknowledgement (the message is persisted); XMPP has no acknowledgement.
    pub async fn send(&self, to: &str, text: &str) -> Result<()> {
        match self {
            Session::Ferrim(s) => s.send(to, text).await,
            Session::Xmpp(s) => s.send(to, text).await,
        }
    }

    /// Sends a heartbeat (msync UNREAD, XMPP whitespace keepalive).
    pub async fn heartbeat(&self) -> Result<()> {
        match self {
            Session::Ferrim(s) => s.heartbeat().await,
            Session::Xmpp(s) => s.heartbeat().await,
        }
    }

    /// Closes the connection.
    pub async fn close(&self) {
        match self {
            Session::Ferrim(s) => s.close().await,
            Session::Xmpp(s) => s.close().await,
        }
    }
}
