//! UNREAD (no payload): sent right after login and as the heartbeat (~60 s idle), and also
//! accepted before login. Answered with the queues that hold messages and the server time.

use crate::gateway::connection::Overflow;
use crate::gateway::session::{Flow, Session};
use crate::gateway::{frames, inbox};

pub(crate) async fn apply(session: &mut Session) -> Result<Flow, Overflow> {
    let queues = match session.login() {
        Some(login) => inbox::unread_queues(session.state(), login).await,
        None => Vec::new(),
    };
    session.outbox().send(&frames::unread(queues))?;
    Ok(Flow::Continue)
}
