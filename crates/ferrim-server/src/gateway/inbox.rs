//! Messaging on the socket: sends, the inbox queue, and new-message notices.
//!
//! Each user has one inbox queue, addressed by their bare JID `{appKey, name, domain}`
//! (no resource, so it passes the SDK's own-device filter; spec §8.3). A device pulls it from
//! its cursor; every pull with `key = K` acknowledges everything up to `K`. Batches go out
//! with `isLast: false` and a strictly increasing `nextKey` (the last message ID); the cycle
//! ends with an empty `isLast: true`. Anything that arrives during a cycle is included in
//! the answer to the next `key` pull, since the SDK drops notices for a queue it is pulling.
//!
//! Once a device has caught up (it delivers from its live tail; a device with nothing
//! waiting at login is caught up from the start), new messages are pushed instead of
//! announced: an unsolicited batch with `isLast: false`, which the SDK processes
//! and acknowledges with its `nextKey` like a pulled one, without adding the queue to its
//! pull list (spec §8.3, last rule). That saves the NOTICE and the pull, a round trip, per
//! message. A pushed cycle that runs dry ends without a frame: the SDK has no pull of this
//! queue open, so an `isLast: true` would tell it nothing.

use std::sync::{Arc, Mutex};

use ferrim_core::app::App;
use ferrim_core::clock::now_ms;
use ferrim_core::messaging::{
    InboxEntry, InboxQuery, MessageKind, NewMessage, Party, StoredMessage,
};
use ferrim_core::user::{User, Username};
use ferrim_core::CoreError;
use ferrim_proto::pb::meta::{NameSpace, RouteType};
use ferrim_proto::pb::status::ErrorCode;
use ferrim_proto::pb::{CommNotice, CommSyncDl, Jid, MSync, MessageBody, Meta, MetaQueue, Status};
use ferrim_proto::Message;

use crate::gateway::frames;
use crate::gateway::session::LoggedIn;
use crate::messages;
use crate::state::AppState;

/// Why a client meta was not accepted: the status the ack carries (spec §6.4).
pub(crate) type SendRefusal = (ErrorCode, String);

/// A stored message as its ack reports it.
pub(crate) struct Accepted {
    pub(crate) server_id: u64,
    pub(crate) timestamp_ms: u64,
    /// A NOTIFY meta's JSON for the ack (an edit's `edit_msg`).
    pub(crate) notice: Option<String>,
}

/// Most messages in one pull answer.
const PULL_BATCH: u32 = 50;
/// `CommUnreadDL` counts are capped at this (the SDK only needs to know the queue is there).
const UNREAD_COUNT_CAP: u32 = 100;
const DAY_MS: u64 = 24 * 3600 * 1000;
/// A batch still unacknowledged after this long, when something new waits, is taken as
/// dropped by the SDK (see [`on_notify`]).
const STALLED_BATCH_MS: u64 = 5_000;

/// A device's position in its user's inbox. Only the connection's own task touches it; the
/// mutex is never held across an await.
#[derive(Debug)]
pub(crate) struct InboxState {
    inner: Mutex<Cursor>,
    /// Messages older than this many days are not delivered any more.
    keep_days: u32,
    /// When this device logged in (Unix ms): messages sent since then were sent while it
    /// was online, older ones reach it as offline messages.
    online_since_ms: u64,
}

#[derive(Debug, Clone, Copy)]
struct Cursor {
    /// Everything up to here was delivered and acknowledged by this device.
    acked: u64,
    /// Messages this user sent from other devices are delivered only after this (a device
    /// new to the server does not get old sent messages as offline messages).
    sent_after: u64,
    /// A pull cycle is under way (a batch went out with `isLast: false`).
    pulling: bool,
    /// The newest cursor that went out in the current cycle.
    sent_up_to: u64,
    /// The last answer held every waiting entry (it was shorter than a full batch), and no
    /// new message was announced since: the next ack can end the cycle without a read.
    drained: bool,
    /// The login UNREAD was answered; later UNREADs are heartbeats and list nothing (new
    /// traffic is announced by NOTICE, spec §8.4).
    login_unread_done: bool,
    /// Nothing was waiting at login, so the login UNREAD needs no read.
    nothing_waiting: bool,
    /// Caught up with the store: new messages are taken from the connection's live tail
    /// (single node) instead of being read back from the store.
    tail_mode: bool,
    /// The current cycle was started by a server push, not by the device's pull.
    pushed: bool,
    /// When the last batch went out (Unix ms).
    batch_sent_ms: u64,
    /// New messages were held back behind the unacknowledged batch; if no ack comes, they
    /// are announced once the batch counts as stalled (see [`recheck_at`]).
    held_back: bool,
}

impl Cursor {
    /// New messages wait behind a batch that is still unacknowledged.
    fn holds_back(&self) -> bool {
        self.held_back && self.pulling
    }

    /// Forgets what went out unacknowledged: the next batch starts after the last ack and
    /// is read from the store (the live tail no longer holds those messages).
    fn resend_from_store(&mut self) {
        self.sent_up_to = self.acked;
        self.tail_mode = false;
    }
}

impl InboxState {
    /// Where this device starts: its own cursor if it was here before, else where the
    /// user's other devices left off; never before the keep-count window.
    pub(crate) async fn open(
        state: &AppState,
        app: &App,
        user: &User,
        resource: &str,
    ) -> Result<Self, CoreError> {
        let position = state
            .messaging
            .inbox_position(user.id, resource, app.settings.offline_keep_count)
            .await?;
        let (start, sent_after) = match position.device_cursor {
            Some(cursor) => (cursor, cursor),
            None => (position.offline_cursor, position.latest),
        };
        let start = start.max(position.backlog_floor);
        let nothing_waiting = position.latest <= start;
        Ok(Self {
            inner: Mutex::new(Cursor {
                acked: start,
                sent_after: sent_after.max(start),
                pulling: false,
                sent_up_to: start,
                drained: false,
                login_unread_done: false,
                nothing_waiting,
                // The device was admitted (its live tail fills) before the position was
                // read, so with nothing stored past its cursor it is caught up already:
                // its first message is pushed like the later ones, without a NOTICE, a
                // pull and a store read.
                tail_mode: nothing_waiting && state.messaging.live_tail(),
                pushed: false,
                batch_sent_ms: 0,
                held_back: false,
            }),
            keep_days: app.settings.offline_keep_days,
            online_since_ms: now_ms(),
        })
    }

    fn cursor(&self) -> Cursor {
        *self.inner.lock().expect("inbox cursor")
    }

    fn update(&self, f: impl FnOnce(&mut Cursor)) {
        f(&mut self.inner.lock().expect("inbox cursor"));
    }
}

fn query<'a>(login: &'a LoggedIn, cursor: Cursor, limit: u32) -> InboxQuery<'a> {
    InboxQuery {
        after: cursor.acked,
        sent_after: cursor.sent_after,
        resource: &login.resource,
        min_timestamp_ms: now_ms().saturating_sub(u64::from(login.inbox.keep_days) * DAY_MS),
        limit,
    }
}

/// Up to `limit` inbox entries after `cursor`. A failed read is logged and treated as
/// empty: the device asks again at its next pull, and nothing is acknowledged meanwhile.
async fn read_inbox(
    state: &AppState,
    login: &LoggedIn,
    cursor: Cursor,
    limit: u32,
) -> Vec<InboxEntry> {
    state
        .messaging
        .inbox(login.app.id, login.user_id, query(login, cursor, limit))
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "reading the inbox failed");
            Vec::new()
        })
}

fn own_queue(login: &LoggedIn) -> Jid {
    frames::bare_jid(&login.app_key, &login.username)
}

/// Queues holding messages for this device, with counts (the login UNREAD; heartbeats get
/// an empty list, new traffic is announced by NOTICE).
pub(crate) async fn unread_queues(state: &AppState, login: &LoggedIn) -> Vec<MetaQueue> {
    let cursor = login.inbox.cursor();
    login.inbox.update(|c| c.login_unread_done = true);
    if cursor.pulling || cursor.login_unread_done || cursor.nothing_waiting {
        return Vec::new();
    }
    let waiting = read_inbox(state, login, cursor, UNREAD_COUNT_CAP)
        .await
        .len();
    if waiting == 0 {
        return Vec::new();
    }
    vec![MetaQueue {
        queue: Some(own_queue(login)),
        n: Some(waiting as u32),
    }]
}

/// Accepts a client meta: checks it, stores it durably, routes it, and returns the server
/// ID and time for the ack.
pub(crate) async fn send(
    state: &AppState,
    login: &LoggedIn,
    meta: Meta,
) -> Result<Accepted, SendRefusal> {
    let limits = &state.settings.ws;
    if meta.ns.unwrap_or(0) != NameSpace::Chat as i32 {
        return Err((ErrorCode::Fail, "Sorry, format is incorrect".into()));
    }
    let payload = meta.payload.unwrap_or_default();
    if payload.len() > limits.max_message_bytes {
        return Err((
            ErrorCode::PermissionDenied,
            "Sorry, data is too large".into(),
        ));
    }
    let to = meta.to.unwrap_or_default();
    if to.domain.as_deref().is_some_and(|d| d != messages::DOMAIN) {
        return Err((ErrorCode::Fail, "group not found".into()));
    }
    // `to: "bob/res"` in the SDK: for that one device of bob (spec §8.1).
    let to_resource = to.client_resource.filter(|r| !r.is_empty());
    if to_resource
        .as_deref()
        .is_some_and(|r| !messages::is_device_resource(r))
    {
        return Err((ErrorCode::Fail, "Sorry, format is incorrect".into()));
    }
    let to_name = to.name.unwrap_or_default();
    let unknown = || {
        (
            ErrorCode::Fail,
            format!("Sorry, username {to_name} doesn't exist!"),
        )
    };
    let Ok(to_name_parsed) = Username::parse(&to_name) else {
        return Err(unknown());
    };
    let recipient = match state
        .accounts
        .user(&login.app, to_name_parsed.as_str())
        .await
    {
        Ok(user) => user,
        Err(CoreError::UserNotFound) => return Err(unknown()),
        Err(e) => {
            tracing::warn!(error = %e, "recipient lookup failed");
            return Err((ErrorCode::Fail, "Sorry, server is busy".into()));
        }
    };
    let Ok(mut body) = MessageBody::decode(payload.as_slice()) else {
        return Err((ErrorCode::Fail, "Sorry, format is incorrect".into()));
    };
    if let Err(why) = messages::check_body(&body) {
        tracing::debug!(why, "undeliverable message body refused");
        return Err((ErrorCode::Fail, "Sorry, format is incorrect".into()));
    }
    let target = messages::target_of(&body);
    let mut edit = None;
    if let Some(target) = target {
        let original = check_target(state, login, recipient.id, target).await?;
        if let messages::Target::Edit(_) = target {
            let applied = messages::edit(&mut body, &original, &login.username, now_ms())
                .map_err(|reason| (ErrorCode::Fail, reason.to_owned()))?;
            edit = Some((original.id, applied));
        }
    }
    if meta.routetype == Some(RouteType::RouteOnline as i32) {
        // `deliverOnlineOnly`: with no device of the recipient online the message is
        // acknowledged and dropped, never kept for later.
        match state.accounts.is_online(&login.app, &recipient).await {
            Ok(false) => {
                let now = now_ms();
                return Ok(Accepted {
                    server_id: state.messaging.ids().next(now),
                    timestamp_ms: now,
                    notice: None,
                });
            }
            Ok(true) => {}
            Err(e) => tracing::warn!(error = %e, "presence lookup failed; storing the message"),
        }
    }
    messages::seal_recall_ext(&mut body, meta.ext);
    let kind = messages::kind_of(&body);
    let message = NewMessage {
        id: 0,
        app_id: login.app.id,
        from: Party {
            id: login.user_id,
            name: Username::parse(&login.username).map_err(|_| unknown())?,
        },
        to: Party {
            id: recipient.id,
            name: recipient.username.clone(),
        },
        from_resource: login.resource.clone(),
        to_resource,
        client_id: meta.id.filter(|id| *id != 0),
        timestamp_ms: 0,
        kind,
        payload: messages::seal_body(body, &login.username, recipient.username.as_str()),
    };
    match state
        .messaging
        .send(message, Some(login.signals.session_id))
        .await
    {
        Ok(appended) => {
            metrics::counter!("ferrim_messages_total", "result" => if appended.duplicate { "duplicate" } else { "stored" })
                .increment(1);
            let notice = if appended.duplicate {
                // Applied to the original when it was first stored.
                edit.map(|(_, applied)| applied.notice)
            } else {
                apply_to_original(state, login, target, edit).await
            };
            Ok(Accepted {
                server_id: appended.id,
                timestamp_ms: appended.timestamp_ms,
                notice,
            })
        }
        Err(CoreError::Busy) => Err((ErrorCode::Fail, "Sorry, server is busy".into())),
        Err(e) => {
            tracing::error!(error = %e, "storing a message failed");
            Err((ErrorCode::Fail, "Sorry, server is busy".into()))
        }
    }
}

/// Once a recall or an edit is stored and on its way, the original changes: a recalled one
/// leaves the history and the inboxes that have not delivered it, an edited one is
/// rewritten. A failure here is logged; the recall or edit itself stands. Returns the
/// edit's notice for the ack.
async fn apply_to_original(
    state: &AppState,
    login: &LoggedIn,
    target: Option<messages::Target>,
    edit: Option<(u64, messages::Edit)>,
) -> Option<String> {
    match (target, edit) {
        (Some(messages::Target::Recall(original)), _) => {
            if let Err(e) = state.messaging.delete(login.app.id, original).await {
                tracing::warn!(error = %e, "deleting a recalled message failed");
            }
            None
        }
        (_, Some((original, applied))) => {
            if let Err(e) = state
                .messaging
                .rewrite(login.app.id, original, &applied.original_payload)
                .await
            {
                tracing::warn!(error = %e, "storing an edited message failed");
            }
            Some(applied.notice)
        }
        _ => None,
    }
}

/// A recall or an edit may only name a chat message its sender sent to this recipient; a
/// recall only within `ws.recall_time_limit_secs` of the original.
async fn check_target(
    state: &AppState,
    login: &LoggedIn,
    recipient: uuid::Uuid,
    target: messages::Target,
) -> Result<StoredMessage, SendRefusal> {
    let (id, recall) = match target {
        messages::Target::Recall(id) => (id, true),
        messages::Target::Edit(id) => (id, false),
    };
    let original = match state.messaging.message(login.app.id, id).await {
        Ok(Some(m)) if m.kind == MessageKind::Chat => m,
        Ok(_) => return Err((ErrorCode::Fail, "Sorry, message does not exist".into())),
        Err(e) => {
            tracing::warn!(error = %e, "looking up a recalled or edited message failed");
            return Err((ErrorCode::Fail, "Sorry, server is busy".into()));
        }
    };
    if original.from.id != login.user_id || original.to.id != recipient {
        return Err((ErrorCode::Fail, "Sorry, You do not have permission".into()));
    }
    let limit_ms = state
        .settings
        .ws
        .recall_time_limit_secs
        .saturating_mul(1000);
    if recall && now_ms().saturating_sub(original.timestamp_ms) > limit_ms {
        return Err((ErrorCode::Fail, "exceed recall time limit".into()));
    }
    Ok(original)
}

/// Answers a pull of the inbox queue; `key` acknowledges everything up to it. `None` when
/// a pushed cycle ends (nothing to say).
pub(crate) async fn pull(
    state: &AppState,
    login: &LoggedIn,
    queue: Jid,
    key: Option<u64>,
) -> Option<MSync> {
    // Whatever was held back goes out in this answer.
    login.inbox.update(|c| c.held_back = false);
    match key {
        Some(key) => {
            let cursor = login.inbox.cursor();
            // Only what was actually sent can be acknowledged.
            let key = key.min(cursor.sent_up_to);
            if key > cursor.acked {
                login.inbox.update(|c| c.acked = key);
                state.messaging.ack(login.user_id, &login.resource, key);
            }
        }
        // A fresh pull while a batch is unacknowledged: send it again, from the store.
        None => login.inbox.update(|c| {
            c.pushed = false;
            if c.sent_up_to > c.acked {
                c.resend_from_store();
            }
        }),
    }
    let cursor = login.inbox.cursor();
    let batch = if cursor.tail_mode {
        match from_tail(login, cursor) {
            Some(batch) => batch,
            None => from_store(state, login).await,
        }
    } else {
        if key.is_some() && cursor.pulling && cursor.drained {
            // Everything waiting went out in the last answer and nothing arrived since.
            return end_cycle(login, queue);
        }
        from_store(state, login).await
    };
    if batch.is_empty() {
        return end_cycle(login, queue);
    }
    Some(batch_frame(login, queue, &batch))
}

/// Ends the current cycle: an empty `isLast: true` if the device pulled, nothing if it was
/// pushed.
fn end_cycle(login: &LoggedIn, queue: Jid) -> Option<MSync> {
    let mut pushed = false;
    login.inbox.update(|c| {
        pushed = c.pushed;
        c.pulling = false;
        c.pushed = false;
    });
    (!pushed).then(|| frames::queue_end(queue))
}

/// A non-empty batch going out with `isLast: false` (the cycle goes on until it is
/// acknowledged).
fn batch_frame(login: &LoggedIn, queue: Jid, batch: &Batch) -> MSync {
    let last = batch.last().map_or(0, |(cursor, _)| *cursor);
    let drained = batch.len() < PULL_BATCH as usize;
    login.inbox.update(|c| {
        c.pulling = true;
        c.sent_up_to = last;
        c.drained = drained;
        c.batch_sent_ms = now_ms();
    });
    let metas = batch
        .iter()
        .map(|(_, m)| {
            let mut meta = messages::meta_of(&login.app_key, m);
            let online = m.timestamp_ms >= login.inbox.online_since_ms;
            meta.meta = Some(frames::online_state(online).to_vec());
            meta
        })
        .collect();
    frames::envelope(
        ferrim_proto::pb::m_sync::Command::Sync,
        &CommSyncDl {
            status: Some(Status::default()),
            queue: Some(queue),
            metas,
            next_key: Some(last),
            is_last: Some(false),
            timestamp: Some(now_ms()),
            ..Default::default()
        },
    )
}

type Batch = Vec<(u64, Arc<StoredMessage>)>;

/// The next batch from the live tail, or `None` if the tail overflowed (then the store
/// must be read). Messages already sent, this device's own sends, the user's sends older
/// than this device, and messages for another of the user's devices are skipped, as the
/// store query would.
fn from_tail(login: &LoggedIn, cursor: Cursor) -> Option<Batch> {
    let mut tail = login.signals.tail();
    if tail.dropped_up_to != 0 {
        drop(tail);
        login.inbox.update(|c| c.tail_mode = false);
        return None;
    }
    let seen = cursor.sent_up_to.max(cursor.acked);
    let mut batch = Vec::new();
    while batch.len() < PULL_BATCH as usize {
        let Some(m) = tail.messages.pop_front() else {
            break;
        };
        let own = m.from.id == login.user_id;
        if m.id <= seen
            || (own && m.from_resource == login.resource)
            || (own && m.to.id != login.user_id && m.id <= cursor.sent_after)
            || (m.to.id == login.user_id
                && m.to_resource
                    .as_deref()
                    .is_some_and(|r| r != login.resource))
        {
            continue;
        }
        batch.push((m.id, m));
    }
    Some(batch)
}

/// The next batch from the store. When it holds everything waiting and live tails are on,
/// later batches come from the tail.
async fn from_store(state: &AppState, login: &LoggedIn) -> Batch {
    let live = state.messaging.live_tail();
    if live {
        // This read starts after any earlier overflow, so it covers what was dropped.
        login.signals.tail().dropped_up_to = 0;
    }
    let entries = read_inbox(state, login, login.inbox.cursor(), PULL_BATCH).await;
    if live && entries.len() < PULL_BATCH as usize {
        let clean = login.signals.tail().dropped_up_to == 0;
        if clean {
            login.inbox.update(|c| c.tail_mode = true);
        }
    }
    entries
        .into_iter()
        .map(|e| (e.cursor, Arc::new(e.message)))
        .collect()
}

/// When to look again at messages held back behind an unacknowledged batch (Unix ms):
/// the moment that batch counts as stalled. `None` when nothing is held back.
pub(crate) fn recheck_at(login: &LoggedIn) -> Option<u64> {
    let cursor = login.inbox.cursor();
    cursor
        .holds_back()
        .then(|| cursor.batch_sent_ms + STALLED_BATCH_MS)
}

/// The recheck of [`recheck_at`] came due: what [`on_notify`] says now, if messages are
/// still held back (an ack since then has answered with them).
pub(crate) fn on_recheck(login: &LoggedIn) -> Option<MSync> {
    if login.inbox.cursor().holds_back() {
        on_notify(login)
    } else {
        None
    }
}

/// New messages wait for this user. Nothing to send while a cycle is under way (its next
/// answer includes them); else a push from the live tail, or a NOTICE for the inbox queue
/// when the device reads from the store.
pub(crate) fn on_notify(login: &LoggedIn) -> Option<MSync> {
    let mut cursor = login.inbox.cursor();
    login.inbox.update(|c| {
        // The next ack must read the store again.
        c.drained = false;
    });
    if cursor.pulling {
        if now_ms().saturating_sub(cursor.batch_sent_ms) < STALLED_BATCH_MS {
            login.inbox.update(|c| c.held_back = true);
            return None;
        }
        // The device never acknowledged the last batch. The SDK silently drops a batch
        // whose nextKey equals the last one it saw (a resend after an ack lost in a
        // reconnect or a crash; spec §8.3), and would then wait forever. Start over from
        // the store with a NOTICE: the next batch ends with the new message, a new key.
        login.inbox.update(|c| {
            c.pulling = false;
            c.pushed = false;
            c.resend_from_store();
        });
        cursor = login.inbox.cursor();
    }
    if cursor.tail_mode {
        match from_tail(login, cursor) {
            // Only this device's own sends (or nothing new): nothing to say.
            Some(batch) if batch.is_empty() => return None,
            Some(batch) => {
                let frame = batch_frame(login, own_queue(login), &batch);
                login.inbox.update(|c| c.pushed = true);
                return Some(frame);
            }
            // The tail overflowed: the device pulls from the store.
            None => cursor = login.inbox.cursor(),
        }
    }
    debug_assert!(!cursor.tail_mode);
    Some(frames::envelope(
        ferrim_proto::pb::m_sync::Command::Notice,
        &CommNotice {
            queue: Some(own_queue(login)),
        },
    ))
}
