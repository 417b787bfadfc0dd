//! LOGOUT: the user logged out on purpose (`conn.close()`), or the SDK's token timers did.
//! The device leaves the online list at once; the reply is optional for the SDK, which
//! closes its socket without waiting for it (spec §5.3).

use ferrim_proto::pb::{Logout, MSync};
use ferrim_proto::Message;

use crate::gateway::connection::{Close, Overflow};
use crate::gateway::frames;
use crate::gateway::session::{Flow, Session};

pub(crate) fn apply(session: &mut Session, frame: MSync) -> Result<Flow, Overflow> {
    let reason = frame
        .payload
        .as_deref()
        .and_then(|p| Logout::decode(p).ok())
        .and_then(|l| l.reason)
        .unwrap_or_default();
    tracing::debug!(%reason, "logout");
    session.leave_registry();
    session.outbox().send(&frames::logout_ok())?;
    Ok(Flow::Close(Close::LOGOUT))
}
