//! The messaging hook: where the gateway asks for, and hands over, messages.
//!
//! Messaging is not implemented yet. These functions are the only places the gateway
//! touches it; the messaging work replaces their bodies (and may add state to
//! [`LoggedIn`]) without changing the session loop:
//!
//! * [`unread_queues`] fills `CommUnreadDL.unread` at login and on heartbeats (spec §8.4);
//! * [`send`] stores and routes a client meta and returns the server id to ack (spec §8.1–8.2);
//! * [`pull`] answers a queue pull or ack-and-continue (spec §8.3);
//! * [`on_notify`] runs when the registry signals new messages for this user (send NOTICEs).

use ferrim_proto::pb::status::ErrorCode;
use ferrim_proto::pb::{Jid, MSync, Meta, MetaQueue};

use crate::gateway::frames;
use crate::gateway::session::LoggedIn;
use crate::state::AppState;

/// Why a client meta was not accepted: the status the ack carries (spec §6.4).
pub(crate) type SendRefusal = (ErrorCode, &'static str);

/// Reason sent for every chat send until messaging exists. FAIL with an unlisted reason
/// makes the SDK reject the send with 503 (server error) instead of hanging or reconnecting.
pub(crate) const NOT_SUPPORTED: &str = "messaging is not supported yet";

/// Queues holding messages for this device, with counts.
pub(crate) async fn unread_queues(_state: &AppState, _login: &LoggedIn) -> Vec<MetaQueue> {
    Vec::new()
}

/// Accepts a client meta (CHAT, MUC, ROSTER, …) and returns its server id.
pub(crate) async fn send(
    _state: &AppState,
    _login: &LoggedIn,
    _meta: Meta,
) -> Result<u64, SendRefusal> {
    Err((ErrorCode::Fail, NOT_SUPPORTED))
}

/// Answers a pull of `queue`; `key` acknowledges everything up to it. Returns the frame to
/// send (a batch with `isLast: false` and a new `nextKey`, or the queue's end).
pub(crate) async fn pull(
    _state: &AppState,
    _login: &LoggedIn,
    queue: Jid,
    _key: Option<u64>,
) -> MSync {
    frames::queue_end(queue)
}

/// New messages wait for this user: the frames to push (NOTICEs).
pub(crate) async fn on_notify(_state: &AppState, _login: &LoggedIn) -> Vec<MSync> {
    Vec::new()
}
