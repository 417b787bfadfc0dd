//! The msync WebSocket gateway at `/ws`: the Easemob client protocol (see `docs/msync.md`).
//!
//! * [`connection`]: frame I/O (binary WebSocket messages ⇄ `MSync`) and the bounded outbox;
//! * [`session`]: the per-connection state machine;
//! * [`cmd`]: one module per client command (PROVISION, UNREAD, SYNC, LOGOUT);
//! * [`frames`]: builders for every frame the server sends;
//! * [`inbox`]: the hook messaging plugs into.

pub(crate) mod cmd;
pub(crate) mod connection;
pub(crate) mod frames;
pub(crate) mod inbox;
pub(crate) mod session;

use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::state::AppState;

/// Size of the WebSocket library's read buffer, which every connection keeps allocated (and
/// tungstenite zero-fills on each read), and of the write buffer it fills before flushing.
/// Login frames are ~200 bytes and heartbeats ~20: 1 KiB buffers keep an idle connection
/// cheap (see `docs/benchmarks.md`); larger frames are simply read in several chunks.
pub const READ_BUFFER_BYTES: usize = 1024;
pub const WRITE_BUFFER_BYTES: usize = 1024;
/// Most bytes the WebSocket library may hold unsent (only grows while the socket is not
/// writable); beyond it writes fail and the connection ends.
pub const MAX_WRITE_BUFFER_BYTES: usize = 256 * 1024;

#[derive(Clone)]
struct Gateway {
    state: AppState,
    /// One permit per open WebSocket (`ws.max_connections`).
    permits: Arc<Semaphore>,
}

/// Routes of the gateway.
pub fn router(state: AppState) -> Router {
    let permits = Arc::new(Semaphore::new(state.settings.ws.max_connections));
    Router::new()
        .route("/ws", get(upgrade))
        .with_state(Gateway { state, permits })
}

async fn upgrade(State(gw): State<Gateway>, ws: WebSocketUpgrade) -> Response {
    let Ok(permit) = gw.permits.clone().try_acquire_owned() else {
        tracing::warn!("connection limit reached; refusing a WebSocket");
        return (StatusCode::SERVICE_UNAVAILABLE, "too many connections").into_response();
    };
    let max_frame = gw.state.settings.ws.max_frame_bytes;
    ws.read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES.max(WRITE_BUFFER_BYTES + max_frame))
        .max_message_size(max_frame)
        .max_frame_size(max_frame)
        .on_upgrade(move |socket| async move {
            let _open = OpenConnection::new(permit);
            session::run(gw.state, socket).await;
        })
}

/// Holds the connection's permit and keeps `ferrim_ws_connections` right however the
/// connection task ends.
struct OpenConnection {
    _permit: OwnedSemaphorePermit,
}

impl OpenConnection {
    fn new(permit: OwnedSemaphorePermit) -> Self {
        metrics::gauge!("ferrim_ws_connections").increment(1.0);
        Self { _permit: permit }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics::gauge!("ferrim_ws_connections").decrement(1.0);
    }
}
