//! SYNC with a `CommSyncUL`: the client either sends a meta (a message, an ack, or its
//! statistics report) or pulls a queue, optionally acknowledging up to a key (spec §8).

use ferrim_proto::pb::meta::NameSpace;
use ferrim_proto::pb::{CommSyncUl, Jid, MSync, Meta};
use ferrim_proto::Message;

use crate::gateway::connection::{Close, Overflow};
use crate::gateway::session::{Flow, Session};
use crate::gateway::{frames, inbox};

/// What a `CommSyncUL` asks for.
#[derive(Debug)]
enum Request {
    /// The SDK's statistics report (STATISTIC meta, operation INFORMATION) sent after login
    /// and after each UNREAD reply. Acking it is optional and the SDK ignores the ack.
    Statistics,
    /// A meta from `send()`: must be acked within 15 s (spec §8.2).
    Send(Box<Meta>),
    /// Pull a queue (`key` absent) or acknowledge up to `key` and continue.
    Pull { queue: Jid, key: Option<u64> },
    /// Neither meta nor queue: nothing to do.
    Empty,
}

impl Request {
    fn from_ul(ul: CommSyncUl) -> Self {
        match (ul.meta, ul.queue) {
            (Some(meta), _) if meta.ns.unwrap_or(0) == NameSpace::Statistic as i32 => {
                Request::Statistics
            }
            (Some(meta), _) => Request::Send(Box::new(meta)),
            (None, Some(queue)) => Request::Pull {
                queue,
                key: ul.key.filter(|k| *k != 0),
            },
            (None, None) => Request::Empty,
        }
    }
}

pub(crate) async fn apply(session: &mut Session, frame: MSync) -> Result<Flow, Overflow> {
    let Ok(ul) = CommSyncUl::decode(frame.payload.as_deref().unwrap_or_default()) else {
        return Ok(Flow::Close(Close::UNDECODABLE));
    };
    let Some(login) = session.login() else {
        return Ok(Flow::Close(Close::NOT_LOGGED_IN));
    };
    let reply = match Request::from_ul(ul) {
        Request::Statistics | Request::Empty => return Ok(Flow::Continue),
        Request::Send(meta) => {
            let meta_id = meta.id.unwrap_or(0);
            let result = inbox::send(session.state(), login, *meta).await;
            frames::sync_ack(meta_id, result)
        }
        Request::Pull { queue, key } => {
            match inbox::pull(session.state(), login, queue, key).await {
                Some(frame) => frame,
                None => return Ok(Flow::Continue),
            }
        }
    };
    session.outbox().send(&reply)?;
    Ok(Flow::Continue)
}
