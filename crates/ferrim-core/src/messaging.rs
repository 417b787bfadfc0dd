//! One-to-one messaging: accept, store durably (group commit), route, and let devices pull
//! their inbox.
//!
//! A user's inbox is every message to them plus every message they sent (so their other
//! devices see it). Each device keeps a cursor into it; a device new to the server starts at
//! the user's offline cursor (what any device has already taken), so offline messages
//! arrive once, while a returning device catches up on what it missed. The message payload
//! is opaque here (the gateway stores the msync `MessageBody` bytes).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::clock::now_ms;
use crate::error::CoreError;
use crate::sessions::SessionRegistry;
use crate::store::{Store, StoreError};
use crate::user::Username;

/// Appends waiting for the writer beyond this are refused (the sender sees a busy error
/// rather than the server growing without bound).
pub const WRITE_QUEUE: usize = 16_384;
/// Most messages committed in one transaction.
pub const MAX_BATCH: usize = 512;
/// Acknowledged inbox cursors are flushed at least this often.
const ACK_FLUSH: Duration = Duration::from_millis(100);
/// Server message IDs count milliseconds from 2020-01-01 so that 41 bits last until 2089.
const ID_EPOCH_MS: u64 = 1_577_836_800_000;

/// What a stored message is, for history and conversation listings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// A chat message: shown in history and conversations.
    Chat = 0,
    /// A delivery/read receipt, a recall or an edit: routed, never listed as history.
    Signal = 1,
    /// "I have read this conversation" (the SDK's channel ack): routed like a signal, and
    /// the sender's messages from the recipient up to it no longer count as unread.
    ConversationRead = 2,
    /// A note to the user's other devices about something one of them did (a conversation
    /// deleted): routed from the user to themselves, never listed or counted as unread.
    Notice = 3,
}

impl MessageKind {
    pub fn from_i64(v: i64) -> Self {
        match v {
            1 => MessageKind::Signal,
            2 => MessageKind::ConversationRead,
            3 => MessageKind::Notice,
            _ => MessageKind::Chat,
        }
    }
}

/// One end of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Party {
    pub id: Uuid,
    pub name: Username,
}

/// A message ready to be stored; `id` and `timestamp_ms` are assigned by the writer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMessage {
    pub id: u64,
    pub app_id: Uuid,
    pub from: Party,
    pub to: Party,
    /// The sending device; empty for messages sent through REST.
    pub from_resource: String,
    /// The one device of the recipient the message is for (sent to `user/resource`); `None`
    /// for every device of the recipient.
    pub to_resource: Option<String>,
    /// The sender's own ID for the message; a resend with the same ID from the same device
    /// is stored once.
    pub client_id: Option<u64>,
    pub timestamp_ms: u64,
    pub kind: MessageKind,
    pub payload: Vec<u8>,
}

/// A stored message.
pub type StoredMessage = NewMessage;

/// One entry of a user's inbox: the message and its position in that inbox.
///
/// The cursor is backend-defined and only ever compared within one user's inbox: the
/// embedded store uses the message ID (one writer, so ID order is commit order); a
/// clustered store uses a per-user sequence assigned under a row lock, since IDs minted on
/// different nodes may commit out of order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxEntry {
    pub cursor: u64,
    pub message: StoredMessage,
}

/// The result of an append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    pub id: u64,
    pub timestamp_ms: u64,
    /// True if this was a resend of an already stored message.
    pub duplicate: bool,
}

/// Where a device starts reading its inbox.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InboxPosition {
    /// The device's own cursor, if it has been here before.
    pub device_cursor: Option<u64>,
    /// Everything up to here was taken by some device of the user.
    pub offline_cursor: u64,
    /// The newest inbox entry now (0 if none).
    pub latest: u64,
    /// Entries at or before this cursor are beyond the keep-count and are not delivered.
    pub backlog_floor: u64,
}

/// A page request over a user's inbox.
#[derive(Clone, Debug)]
pub struct InboxQuery<'a> {
    /// Entries after this cursor.
    pub after: u64,
    /// Messages the user sent are included only after this cursor (a device new to the
    /// server does not get its user's old sent messages as "offline messages").
    pub sent_after: u64,
    /// The device reading: its own sent messages are skipped.
    pub resource: &'a str,
    /// Entries older than this are no longer delivered (retention).
    pub min_timestamp_ms: u64,
    pub limit: u32,
}

/// A page request over the chat history of two users.
#[derive(Clone, Debug)]
pub struct HistoryQuery {
    pub a: Uuid,
    pub b: Uuid,
    /// Only messages with IDs strictly below this.
    pub before: Option<u64>,
    /// Only messages with IDs strictly above this.
    pub after: Option<u64>,
    /// Only messages stamped at or after this (Unix ms).
    pub from_ms: Option<u64>,
    /// Only messages stamped at or before this (Unix ms).
    pub to_ms: Option<u64>,
    pub limit: u32,
    /// Newest first.
    pub descending: bool,
}

/// A conversation as listed for a user.
#[derive(Clone, Debug)]
pub struct Conversation {
    pub peer: Username,
    pub last: StoredMessage,
    /// Chat messages from the peer after the user's last [`MessageKind::ConversationRead`]
    /// to them, counted up to [`MAX_UNREAD_COUNTED`].
    pub unread: u32,
}

/// Unread messages counted per conversation at most (a listing stays cheap however many
/// are waiting).
pub const MAX_UNREAD_COUNTED: u32 = 1000;

/// Generates server message IDs: unique across nodes and ordered by time.
///
/// Layout: 41 bits of milliseconds since 2020, 10 bits of node ID, 12 bits of sequence.
#[derive(Debug)]
pub struct IdGenerator {
    node: u64,
    last: AtomicU64,
}

impl IdGenerator {
    pub fn new(node_id: u16) -> Self {
        Self {
            node: u64::from(node_id & 0x3ff),
            last: AtomicU64::new(0),
        }
    }

    /// The next ID; strictly greater than every earlier one from this generator.
    pub fn next(&self, now_ms: u64) -> u64 {
        let base = (now_ms.saturating_sub(ID_EPOCH_MS) << 22) | (self.node << 12);
        let mut prev = self.last.load(Ordering::Relaxed);
        loop {
            // Same millisecond (or clock went back): take the next sequence number; the
            // sequence overflowing into the node bits is avoided by moving to the next ms.
            let candidate = if base > prev {
                base
            } else if (prev & 0xfff) < 0xfff {
                prev + 1
            } else {
                ((prev >> 22) + 1) << 22 | (self.node << 12)
            };
            match self.last.compare_exchange_weak(
                prev,
                candidate,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return candidate,
                Err(actual) => prev = actual,
            }
        }
    }

    /// Makes every later ID greater than `id` (minted by any node): IDs start over from the
    /// clock at each start, and a clock set back across a restart would otherwise mint IDs
    /// below stored ones, which on the embedded store are below devices' inbox cursors too,
    /// so those messages would never be delivered. Moves to the millisecond after `id`'s,
    /// in this node's ID space.
    pub fn resume_after(&self, id: u64) {
        let floor = (id >> 22) << 22 | (self.node << 12) | 0xfff;
        self.last.fetch_max(floor, Ordering::Relaxed);
    }

    /// The millisecond timestamp an ID was minted at.
    pub fn timestamp_of(id: u64) -> u64 {
        (id >> 22) + ID_EPOCH_MS
    }

    /// The lowest ID any node can mint at millisecond `ms`. IDs minted earlier are lower,
    /// unless a node minted over 4,096 in one millisecond (those spill into the next).
    pub fn first_of(ms: u64) -> u64 {
        ms.saturating_sub(ID_EPOCH_MS) << 22
    }
}

/// Carries "new messages for this user" to the user's connections, wherever they are.
///
/// Delivery is a hint: correctness rests on the store (a device that misses a hint catches
/// up at its next pull or login), so an implementation may drop under pressure.
pub trait DeliveryBus: Send + Sync + 'static {
    /// Wakes the user's devices, except the session `except` (the sender's own).
    fn new_messages(&self, app_id: Uuid, user_id: Uuid, except: Option<u64>);

    /// A message was committed. Called by the writer in commit order, once per stored
    /// (non-duplicate) message. By default it wakes the recipient's devices and the sender's
    /// other devices.
    fn committed(&self, message: &Arc<StoredMessage>, sender_session: Option<u64>) {
        wake_parties(self, message, sender_session);
    }

    /// Whether every committed message reaches each online device's live tail, in commit
    /// order and with the message ID as inbox cursor (see [`crate::sessions::LiveTail`]).
    fn live_tail(&self) -> bool {
        false
    }
}

/// The single-node bus: the session registry of this process.
///
/// With `live_tail` (the store's inbox cursor is the message ID, and this process is the only
/// writer), committed messages are also handed to each online device's live tail, in commit
/// order, so connections deliver them without reading the store again.
pub struct LocalBus {
    sessions: Arc<SessionRegistry>,
    live_tail: bool,
}

impl LocalBus {
    pub fn new(sessions: Arc<SessionRegistry>, live_tail: bool) -> Self {
        Self {
            sessions,
            live_tail,
        }
    }
}

impl DeliveryBus for LocalBus {
    fn new_messages(&self, app_id: Uuid, user_id: Uuid, except: Option<u64>) {
        self.sessions.notify_user(app_id, user_id, except);
    }

    fn live_tail(&self) -> bool {
        self.live_tail
    }

    fn committed(&self, message: &Arc<StoredMessage>, sender_session: Option<u64>) {
        if !self.live_tail {
            return wake_parties(self, message, sender_session);
        }
        self.sessions
            .push_message(message.app_id, message.to.id, message, None);
        if message.from.id != message.to.id {
            self.sessions
                .push_message(message.app_id, message.from.id, message, sender_session);
        }
    }
}

/// Wakes a message's recipient and the sender's other devices.
fn wake_parties<B: DeliveryBus + ?Sized>(
    bus: &B,
    message: &StoredMessage,
    sender_session: Option<u64>,
) {
    bus.new_messages(message.app_id, message.to.id, None);
    if message.from.id != message.to.id {
        bus.new_messages(message.app_id, message.from.id, sender_session);
    }
}

struct Append {
    message: NewMessage,
    sender_session: Option<u64>,
    reply: oneshot::Sender<Result<Appended, CoreError>>,
}

/// Acknowledged cursors not yet written, coalesced per device, plus the newest per user
/// (what a device new to the server must start after).
#[derive(Debug, Default)]
struct Pending {
    devices: HashMap<(Uuid, String), u64>,
    users: HashMap<Uuid, u64>,
}

impl Pending {
    fn add(&mut self, user: Uuid, resource: &str, cursor: u64) {
        let device = self.devices.entry((user, resource.to_owned())).or_insert(0);
        *device = (*device).max(cursor);
        let any = self.users.entry(user).or_insert(0);
        *any = (*any).max(cursor);
    }
}

type PendingAcks = Arc<Mutex<Pending>>;

/// The messaging service.
pub struct Messaging {
    store: Arc<dyn Store>,
    bus: Arc<dyn DeliveryBus>,
    ids: Arc<IdGenerator>,
    appends: mpsc::Sender<Append>,
    acks: PendingAcks,
}

impl Messaging {
    /// Starts the group-commit writer on the current Tokio runtime.
    pub fn start(store: Arc<dyn Store>, bus: Arc<dyn DeliveryBus>, node_id: u16) -> Arc<Self> {
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let ids = Arc::new(IdGenerator::new(node_id));
        let acks: PendingAcks = Arc::default();
        tokio::spawn(writer(
            store.clone(),
            bus.clone(),
            ids.clone(),
            rx,
            acks.clone(),
        ));
        tokio::spawn(cursor_flusher(store.clone(), Arc::downgrade(&acks)));
        Arc::new(Self {
            store,
            bus,
            ids,
            appends: tx,
            acks,
        })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Stores a message durably and wakes the recipient's devices and the sender's other
    /// devices. Returns only after the message is committed.
    pub async fn send(
        &self,
        message: NewMessage,
        sender_session: Option<u64>,
    ) -> Result<Appended, CoreError> {
        let (reply, wait) = oneshot::channel();
        self.appends
            .try_send(Append {
                message,
                sender_session,
                reply,
            })
            .map_err(|_| CoreError::Busy)?;
        // The writer wakes the recipients, in commit order, before it answers.
        wait.await
            .map_err(|_| CoreError::Internal("message writer stopped".into()))?
    }

    /// Where a device starts reading. `keep_count` bounds the backlog a device may get.
    pub async fn inbox_position(
        &self,
        user_id: Uuid,
        resource: &str,
        keep_count: u32,
    ) -> Result<InboxPosition, CoreError> {
        // Cursors acknowledged but not flushed yet are newer than the stored ones.
        let mut position = self
            .store
            .inbox_position(user_id, resource, keep_count)
            .await?;
        let pending = self.acks.lock().expect("ack map");
        if let Some(&c) = pending.devices.get(&(user_id, resource.to_owned())) {
            position.device_cursor = Some(position.device_cursor.unwrap_or(0).max(c));
        }
        if let Some(&c) = pending.users.get(&user_id) {
            position.offline_cursor = position.offline_cursor.max(c);
        }
        Ok(position)
    }

    /// A page of a user's inbox.
    pub async fn inbox(
        &self,
        app_id: Uuid,
        user_id: Uuid,
        query: InboxQuery<'_>,
    ) -> Result<Vec<InboxEntry>, CoreError> {
        Ok(self.store.inbox_after(app_id, user_id, &query).await?)
    }

    /// Records that a device has everything up to `cursor`. Flushed in the background
    /// (losing it in a crash only means a harmless redelivery).
    pub fn ack(&self, user_id: Uuid, resource: &str, cursor: u64) {
        self.acks
            .lock()
            .expect("ack map")
            .add(user_id, resource, cursor);
    }

    /// Whether connections may deliver from their live tails (see [`DeliveryBus::live_tail`]).
    pub fn live_tail(&self) -> bool {
        self.bus.live_tail()
    }

    /// The message IDs generator (REST sends use it too through [`Self::send`]).
    pub fn ids(&self) -> &IdGenerator {
        &self.ids
    }

    /// A page of the chat history between two users.
    pub async fn history(
        &self,
        app_id: Uuid,
        query: &HistoryQuery,
    ) -> Result<Vec<StoredMessage>, CoreError> {
        Ok(self.store.history(app_id, query).await?)
    }

    /// Deletes a recalled message from the history and from inboxes that have not
    /// delivered it yet.
    pub async fn delete(&self, app_id: Uuid, id: u64) -> Result<bool, CoreError> {
        Ok(self.store.delete_message(app_id, id).await?)
    }

    /// A user deletes their conversation with `peer` (and, with `history`, their history
    /// of it): everything up to now, for that user only.
    pub async fn delete_conversation(
        &self,
        user_id: Uuid,
        peer_id: Uuid,
        history: bool,
    ) -> Result<(), CoreError> {
        // A fresh ID is above every message stored so far.
        let up_to = self.ids.next(now_ms());
        Ok(self
            .store
            .clear_conversation(user_id, peer_id, up_to, history)
            .await?)
    }

    /// A user deletes their history with `peer` before `before_ms` (the SDK's
    /// `removeHistoryMessages` by time), for themselves only: the conversation stays listed,
    /// and a time in the future deletes what is stored so far.
    pub async fn delete_history_before(
        &self,
        user_id: Uuid,
        peer_id: Uuid,
        before_ms: u64,
    ) -> Result<(), CoreError> {
        let now = now_ms();
        let up_to = if before_ms > now {
            // A fresh ID is above every message stored so far.
            self.ids.next(now)
        } else {
            IdGenerator::first_of(before_ms).saturating_sub(1)
        };
        if up_to == 0 {
            return Ok(());
        }
        Ok(self.store.clear_history(user_id, peer_id, up_to).await?)
    }

    /// Where a user's history with `peer` starts (see [`Self::delete_conversation`]).
    pub async fn history_start(&self, user_id: Uuid, peer_id: Uuid) -> Result<u64, CoreError> {
        Ok(self.store.history_start(user_id, peer_id).await?)
    }

    /// Replaces an edited message's stored payload (history shows the edit).
    pub async fn rewrite(&self, app_id: Uuid, id: u64, payload: &[u8]) -> Result<bool, CoreError> {
        Ok(self.store.replace_payload(app_id, id, payload).await?)
    }

    /// The user's conversations, most recent first; `before` continues a listing after the
    /// conversation whose last message has that ID.
    pub async fn conversations(
        &self,
        app_id: Uuid,
        user_id: Uuid,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<Conversation>, CoreError> {
        Ok(self
            .store
            .conversations(app_id, user_id, before, limit)
            .await?)
    }

    /// A message by server ID.
    pub async fn message(&self, app_id: Uuid, id: u64) -> Result<Option<StoredMessage>, CoreError> {
        Ok(self.store.message_by_id(app_id, id).await?)
    }
}

/// The group-commit writer: takes whatever appends are queued (up to [`MAX_BATCH`]),
/// assigns IDs in order, commits them in one transaction, then answers every sender. IDs are
/// assigned here, by the only writer, so commit order equals ID order on this node.
async fn writer(
    store: Arc<dyn Store>,
    bus: Arc<dyn DeliveryBus>,
    ids: Arc<IdGenerator>,
    mut rx: mpsc::Receiver<Append>,
    acks: PendingAcks,
) {
    // Before the first ID is handed out (sends wait in the queue meanwhile).
    match store.latest_message_id().await {
        Ok(Some(latest)) => ids.resume_after(latest),
        Ok(None) => {}
        Err(e) => tracing::error!(
            error = %e,
            "reading the newest message ID failed; new IDs follow the clock alone"
        ),
    }
    let mut batch: Vec<Append> = Vec::with_capacity(MAX_BATCH);
    loop {
        let n = rx.recv_many(&mut batch, MAX_BATCH).await;
        if n == 0 {
            flush_acks(&store, &acks).await;
            return;
        }
        // Let the connections that are ready run first, so their sends join this commit:
        // fewer, larger transactions under load, no added wait when idle.
        if n < MAX_BATCH {
            tokio::task::yield_now().await;
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(append) => batch.push(append),
                    Err(_) => break,
                }
            }
        }
        commit(&store, &*bus, &ids, &mut batch).await;
    }
}

/// Saves acknowledged cursors every [`ACK_FLUSH`], beside the writer rather than inside its
/// loop: a cursor write that waits for the store (the embedded store's merge holds its
/// write lock) must not hold up the commits of new messages. Ends with the writer, which
/// flushes what is left.
async fn cursor_flusher(store: Arc<dyn Store>, acks: std::sync::Weak<Mutex<Pending>>) {
    let mut tick = tokio::time::interval(ACK_FLUSH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(acks) = acks.upgrade() else {
            return;
        };
        flush_acks(&store, &acks).await;
    }
}

async fn commit(
    store: &Arc<dyn Store>,
    bus: &dyn DeliveryBus,
    ids: &IdGenerator,
    batch: &mut Vec<Append>,
) {
    let now = now_ms();
    let mut messages: Vec<NewMessage> = Vec::with_capacity(batch.len());
    let mut waiting = Vec::with_capacity(batch.len());
    for append in batch.drain(..) {
        let mut m = append.message;
        m.id = ids.next(now);
        m.timestamp_ms = now;
        messages.push(m);
        waiting.push((append.sender_session, append.reply));
    }
    match store.append_messages(&messages).await {
        Ok(appended) => {
            for ((message, (sender_session, reply)), outcome) in
                messages.into_iter().zip(waiting).zip(appended)
            {
                if !outcome.duplicate {
                    bus.committed(&Arc::new(message), sender_session);
                }
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "storing a message batch failed");
            for (_, reply) in waiting {
                let _ = reply.send(Err(CoreError::Store(StoreError::Corrupt(e.to_string()))));
            }
        }
    }
}

async fn flush_acks(store: &Arc<dyn Store>, acks: &PendingAcks) {
    let pending: Vec<((Uuid, String), u64)> = {
        let mut map = acks.lock().expect("ack map");
        if map.devices.is_empty() {
            return;
        }
        // `users` stays until the write lands, so a login meanwhile still sees it.
        map.devices.drain().collect()
    };
    match store.save_inbox_cursors(&pending).await {
        Ok(()) => {
            let mut map = acks.lock().expect("ack map");
            for ((user, _), cursor) in &pending {
                if map.users.get(user).is_some_and(|c| c <= cursor) {
                    map.users.remove(user);
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "saving inbox cursors failed; they will be retried");
            let mut map = acks.lock().expect("ack map");
            for ((user, resource), cursor) in pending {
                map.add(user, &resource, cursor);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_strictly_increasing_and_carry_time() {
        let ids = IdGenerator::new(3);
        let now = 1_800_000_000_000;
        let mut prev = 0;
        for _ in 0..10_000 {
            let id = ids.next(now);
            assert!(id > prev);
            prev = id;
        }
        assert!(IdGenerator::timestamp_of(prev) >= now);
        // A clock going backwards never produces a smaller ID.
        assert!(ids.next(now - 5_000) > prev);
        // Fits a signed 64-bit integer (SQL columns, JavaScript Long).
        assert!(ids.next(3_700_000_000_000) < i64::MAX as u64);
    }

    #[test]
    fn the_first_id_of_a_millisecond_is_above_every_earlier_id_of_any_node() {
        let ms = 1_800_000_000_000;
        let earlier = [IdGenerator::new(0), IdGenerator::new(1023)]
            .iter()
            .map(|ids| (0..4_096).map(|_| ids.next(ms - 1)).max().unwrap())
            .max()
            .unwrap();
        let first = IdGenerator::first_of(ms);
        assert!(earlier < first);
        assert!(first <= IdGenerator::new(0).next(ms));
        assert_eq!(IdGenerator::timestamp_of(first), ms);
        // Before the ID epoch nothing can have been minted.
        assert_eq!(IdGenerator::first_of(0), 0);
    }

    #[test]
    fn ids_resume_after_a_stored_id_from_the_future_in_this_nodes_space() {
        let ids = IdGenerator::new(3);
        let now = ID_EPOCH_MS + 1_000_000;
        // Minted by node 9 an hour ahead of this clock, with a high sequence number.
        let stored = (1_000_000 + 3_600_000) << 22 | 9 << 12 | 0xffe;
        ids.resume_after(stored);
        let next = ids.next(now);
        assert!(next > stored);
        assert_eq!((next >> 12) & 0x3ff, 3, "node bits");
        assert!(ids.next(now) > next);
        // An older stored ID changes nothing.
        ids.resume_after(1);
        assert!(ids.next(now) > next);
    }

    #[test]
    fn different_nodes_never_collide_in_the_same_millisecond() {
        let (a, b) = (IdGenerator::new(1), IdGenerator::new(2));
        let now = 1_800_000_000_000;
        let xs: std::collections::HashSet<u64> = (0..100).map(|_| a.next(now)).collect();
        assert!((0..100).all(|_| !xs.contains(&b.next(now))));
    }
}
