//! Online sessions and the multi-device rules.
//!
//! Each logged-in connection is a device (its resource) on a platform. The registry enforces
//! the per-platform cap atomically: one short critical section per user decides who stays,
//! so two logins racing for the last slot always leave exactly the cap online. Kicks are
//! delivered to the connection through its [`SessionHandle`]; the connection then tells the
//! client why and closes.

use std::collections::HashMap;
use std::future::poll_fn;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use futures_util::task::AtomicWaker;
use uuid::Uuid;

use crate::app::KickPolicy;

const SHARDS: usize = 64;

/// The multi-device "end" a device counts against. Ends never kick each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Platform {
    Web,
    Mobile,
    Desktop,
    Linux,
    /// A custom platform ID, 1–100 (`customOSPlatform` in the Web SDK).
    Custom(u32),
}

impl Platform {
    /// Maps msync's `Provision.osType` (and `osCustomValue` for OS_CUSTOM) to an end.
    pub fn from_os_type(os_type: i32, custom: Option<u32>) -> Self {
        match os_type {
            0 | 1 => Platform::Mobile,
            2 => Platform::Linux,
            3 | 4 => Platform::Desktop,
            5 => match custom {
                Some(n) => Platform::Custom(n),
                None => Platform::Web,
            },
            _ => Platform::Web,
        }
    }

    /// Short name used in resource listings and the console.
    pub fn name(&self) -> String {
        match self {
            Platform::Web => "web".into(),
            Platform::Mobile => "mobile".into(),
            Platform::Desktop => "desktop".into(),
            Platform::Linux => "linux".into(),
            Platform::Custom(n) => format!("custom{n}"),
        }
    }

    /// The inverse of [`Self::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "web" => Platform::Web,
            "mobile" => Platform::Mobile,
            "desktop" => Platform::Desktop,
            "linux" => Platform::Linux,
            _ => Platform::Custom(name.strip_prefix("custom")?.parse().ok()?),
        })
    }
}

/// Why a connection is being closed by the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KickReason {
    /// A newer login on the same platform took the slot (SDK 206). Carries the newcomer's
    /// login extension, if any.
    LoginAnotherDevice { ext: Option<String> },
    /// The user was deleted (SDK 207).
    UserRemoved,
    /// The password changed (SDK 216).
    PasswordChanged,
    /// Forced offline by the admin or another device, or deactivated (SDK 217).
    KickedByOther,
    /// The same device (resource) logged in again on a new connection; the old one gets
    /// 206 like any replaced device, with the newcomer's login extension.
    Replaced { ext: Option<String> },
    /// The server is shutting down.
    Shutdown,
}

/// Static facts about a device, as listed by REST and the console.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    pub resource: String,
    pub platform: Platform,
    pub device_uuid: String,
    pub device_name: String,
    pub login_ms: u64,
}

/// What a connection and the registry share: one allocation per session (a connection
/// mostly sits idle, so what it keeps allocated is what the server's memory is made of).
///
/// The connection's task is the one consumer of its signals, so a flag and one waker slot
/// do what a `Notify` would, without its lock: the connection checks both signals each time
/// it polls its inputs, which is several times per message.
#[derive(Debug, Default)]
struct Shared {
    /// Set once when the server wants the connection closed; the first reason wins.
    kick: Mutex<Option<KickReason>>,
    /// Set (after `kick`) when there is a reason, so polls need not take the lock.
    kicked: AtomicBool,
    /// Set when new messages wait for this user; cleared when the connection takes it, so
    /// wake-ups coalesce.
    new_messages: AtomicBool,
    /// The connection's task, woken when either flag is set.
    waker: AtomicWaker,
    tail: Mutex<LiveTail>,
}

/// The registry's side of one connection.
#[derive(Clone, Debug)]
pub struct SessionHandle {
    session_id: u64,
    shared: Arc<Shared>,
}

/// Messages committed for a user since a connection attached, in commit order, so the
/// connection can deliver them without reading the store. Bounded: when the connection
/// falls [`LIVE_TAIL_CAPACITY`] messages behind, the tail is emptied and marked, and the
/// connection reads the store instead until it has caught up.
#[derive(Debug, Default)]
pub struct LiveTail {
    pub messages: std::collections::VecDeque<Arc<crate::messaging::StoredMessage>>,
    /// Messages up to this ID were dropped on overflow (0: none).
    pub dropped_up_to: u64,
}

/// Messages a connection may fall behind its live tail before it reads the store instead.
pub const LIVE_TAIL_CAPACITY: usize = 256;

impl LiveTail {
    fn push(&mut self, message: Arc<crate::messaging::StoredMessage>) {
        if self.messages.len() >= LIVE_TAIL_CAPACITY {
            self.dropped_up_to = message.id;
            self.messages.clear();
            return;
        }
        self.messages.push_back(message);
    }
}

/// The connection's side: it waits on these.
#[derive(Debug)]
pub struct SessionSignals {
    pub session_id: u64,
    shared: Arc<Shared>,
}

impl SessionSignals {
    /// Why the server wants this connection closed, if it does.
    pub fn kick_reason(&self) -> Option<KickReason> {
        self.shared.kick.lock().expect("kick").clone()
    }

    /// Completes once the server wants the connection closed. Cancel-safe.
    pub async fn kicked(&self) -> KickReason {
        poll_fn(|cx| {
            // Registered before the check, so a kick between the two still wakes the task.
            self.shared.waker.register(cx.waker());
            if self.shared.kicked.load(Ordering::Acquire) {
                if let Some(reason) = self.kick_reason() {
                    return Poll::Ready(reason);
                }
            }
            Poll::Pending
        })
        .await
    }

    /// Completes when new messages wait for this user (wake-ups coalesce). Cancel-safe.
    pub async fn new_messages(&self) {
        let flag = &self.shared.new_messages;
        poll_fn(|cx| {
            self.shared.waker.register(cx.waker());
            if flag.load(Ordering::Acquire) && flag.swap(false, Ordering::AcqRel) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// Messages committed for this user since the connection attached (single node).
    pub fn tail(&self) -> std::sync::MutexGuard<'_, LiveTail> {
        self.shared.tail.lock().expect("live tail")
    }
}

impl SessionHandle {
    /// A new handle and the signals its connection listens to.
    pub fn new() -> (Self, SessionSignals) {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let session_id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(Shared::default());
        (
            Self {
                session_id,
                shared: shared.clone(),
            },
            SessionSignals { session_id, shared },
        )
    }

    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// Asks the connection to close. The first reason wins.
    pub fn kick(&self, reason: KickReason) {
        let mut kick = self.shared.kick.lock().expect("kick");
        if kick.is_none() {
            *kick = Some(reason);
            drop(kick);
            self.shared.kicked.store(true, Ordering::Release);
            self.shared.waker.wake();
        }
    }

    /// Tells the connection that new messages are waiting.
    pub fn notify(&self) {
        self.shared.new_messages.store(true, Ordering::Release);
        self.shared.waker.wake();
    }

    /// Appends a committed message to the connection's live tail and wakes it.
    fn push_message(&self, message: Arc<crate::messaging::StoredMessage>) {
        self.shared.tail.lock().expect("live tail").push(message);
        self.notify();
    }
}

#[derive(Debug)]
struct Device {
    info: DeviceInfo,
    handle: SessionHandle,
}

type UserKey = (Uuid, Uuid);

/// The refusal of a login by the multi-device rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the number of devices the user is logged in to exceeds the limit")]
pub struct TooManyDevices;

/// What a successful login changed.
#[derive(Debug, Default)]
pub struct Admission {
    /// Devices kicked to make room (already signalled).
    pub kicked: Vec<DeviceInfo>,
    /// Whether the same resource was online before and was replaced.
    pub replaced: bool,
}

/// The devices online on this node, by app and user.
#[derive(Debug)]
pub struct SessionRegistry {
    shards: Vec<Mutex<HashMap<UserKey, Vec<Device>>>>,
    hasher: std::collections::hash_map::RandomState,
    connections: AtomicUsize,
    users: AtomicUsize,
}

impl Default for SessionRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl SessionRegistry {
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: Default::default(),
            connections: AtomicUsize::new(0),
            users: AtomicUsize::new(0),
        }
    }

    fn shard(&self, key: &UserKey) -> &Mutex<HashMap<UserKey, Vec<Device>>> {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }

    /// Admits a device under the app's multi-device rules, atomically per user.
    ///
    /// The same resource logging in again replaces its old connection and never counts
    /// twice. Otherwise, if the platform is full, the policy either kicks the earliest device
    /// of that platform (206) or refuses the newcomer.
    #[allow(clippy::too_many_arguments)]
    pub fn admit(
        &self,
        app_id: Uuid,
        user_id: Uuid,
        info: DeviceInfo,
        handle: SessionHandle,
        cap: u32,
        policy: KickPolicy,
        login_ext: Option<String>,
    ) -> Result<Admission, TooManyDevices> {
        let key = (app_id, user_id);
        let mut admission = Admission::default();
        let mut shard = self.shard(&key).lock().expect("registry lock");
        let devices = shard.entry(key).or_default();
        let was_empty = devices.is_empty();

        let same = devices
            .iter()
            .position(|d| d.info.resource == info.resource);
        let on_platform = devices
            .iter()
            .filter(|d| d.info.platform == info.platform)
            .count()
            - usize::from(same.is_some_and(|i| devices[i].info.platform == info.platform));
        if same.is_none() && on_platform >= cap as usize && policy == KickPolicy::RefuseNewcomer {
            if was_empty {
                shard.remove(&key);
            }
            return Err(TooManyDevices);
        }
        if let Some(i) = same {
            let old = devices.remove(i);
            old.handle.kick(KickReason::Replaced {
                ext: login_ext.clone(),
            });
            admission.replaced = true;
            self.connections.fetch_sub(1, Ordering::Relaxed);
        }
        // Kick the earliest devices of this platform until there is room.
        let mut excess = (on_platform + 1).saturating_sub(cap as usize);
        while excess > 0 {
            let Some(i) = devices
                .iter()
                .enumerate()
                .filter(|(_, d)| d.info.platform == info.platform)
                .min_by_key(|(_, d)| (d.info.login_ms, d.handle.session_id))
                .map(|(i, _)| i)
            else {
                break;
            };
            let old = devices.remove(i);
            old.handle.kick(KickReason::LoginAnotherDevice {
                ext: login_ext.clone(),
            });
            self.connections.fetch_sub(1, Ordering::Relaxed);
            admission.kicked.push(old.info);
            excess -= 1;
        }
        devices.push(Device { info, handle });
        self.connections.fetch_add(1, Ordering::Relaxed);
        if was_empty {
            self.users.fetch_add(1, Ordering::Relaxed);
        }
        Ok(admission)
    }

    /// Adds a connection without applying any rule: a cluster decides admission in the
    /// shared store and keeps only this node's connections here.
    pub fn insert(&self, app_id: Uuid, user_id: Uuid, info: DeviceInfo, handle: SessionHandle) {
        let key = (app_id, user_id);
        let mut shard = self.shard(&key).lock().expect("registry lock");
        let devices = shard.entry(key).or_default();
        if devices.is_empty() {
            self.users.fetch_add(1, Ordering::Relaxed);
        }
        devices.push(Device { info, handle });
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    /// Kicks one connection by session ID (removing it first); false if it is gone.
    pub fn kick_session(
        &self,
        app_id: Uuid,
        user_id: Uuid,
        session_id: u64,
        reason: KickReason,
    ) -> bool {
        self.kick_first(app_id, user_id, reason, |d| {
            d.handle.session_id == session_id
        })
    }

    /// Removes the user's first device that `matches` and kicks it (outside the lock);
    /// false if none matched.
    fn kick_first(
        &self,
        app_id: Uuid,
        user_id: Uuid,
        reason: KickReason,
        matches: impl Fn(&Device) -> bool,
    ) -> bool {
        let key = (app_id, user_id);
        let mut shard = self.shard(&key).lock().expect("registry lock");
        let Some(devices) = shard.get_mut(&key) else {
            return false;
        };
        let Some(i) = devices.iter().position(matches) else {
            return false;
        };
        let old = devices.remove(i);
        self.connections.fetch_sub(1, Ordering::Relaxed);
        if devices.is_empty() {
            shard.remove(&key);
            self.users.fetch_sub(1, Ordering::Relaxed);
        }
        drop(shard);
        old.handle.kick(reason);
        true
    }

    /// The session IDs of every connection on this node.
    pub fn session_ids(&self) -> std::collections::HashSet<u64> {
        let mut ids = std::collections::HashSet::new();
        for shard in &self.shards {
            let shard = shard.lock().expect("registry lock");
            ids.extend(shard.values().flatten().map(|d| d.handle.session_id));
        }
        ids
    }

    /// Wakes every connection on this node (after the cluster bus was unreachable, so
    /// hints may have been missed: each device checks its inbox once).
    pub fn notify_everyone(&self) {
        for shard in &self.shards {
            let shard = shard.lock().expect("registry lock");
            for d in shard.values().flatten() {
                d.handle.notify();
            }
        }
    }

    /// Removes a connection that ended. Only the session that owns the entry removes it, so
    /// a replaced connection closing late never removes its successor.
    pub fn remove(&self, app_id: Uuid, user_id: Uuid, session_id: u64) -> bool {
        let key = (app_id, user_id);
        let mut shard = self.shard(&key).lock().expect("registry lock");
        let Some(devices) = shard.get_mut(&key) else {
            return false;
        };
        let Some(i) = devices
            .iter()
            .position(|d| d.handle.session_id == session_id)
        else {
            return false;
        };
        devices.remove(i);
        self.connections.fetch_sub(1, Ordering::Relaxed);
        if devices.is_empty() {
            shard.remove(&key);
            self.users.fetch_sub(1, Ordering::Relaxed);
        }
        true
    }

    /// The user's online devices, oldest login first.
    pub fn devices(&self, app_id: Uuid, user_id: Uuid) -> Vec<DeviceInfo> {
        let key = (app_id, user_id);
        let shard = self.shard(&key).lock().expect("registry lock");
        let mut list: Vec<DeviceInfo> = shard
            .get(&key)
            .map(|ds| ds.iter().map(|d| d.info.clone()).collect())
            .unwrap_or_default();
        list.sort_by_key(|d| d.login_ms);
        list
    }

    pub fn is_online(&self, app_id: Uuid, user_id: Uuid) -> bool {
        let key = (app_id, user_id);
        self.shard(&key)
            .lock()
            .expect("registry lock")
            .get(&key)
            .is_some_and(|ds| !ds.is_empty())
    }

    /// Kicks every device of a user; returns how many were online. The entries are removed
    /// at once, so the user shows offline immediately.
    pub fn kick_user(&self, app_id: Uuid, user_id: Uuid, reason: KickReason) -> usize {
        let key = (app_id, user_id);
        let removed = self
            .shard(&key)
            .lock()
            .expect("registry lock")
            .remove(&key)
            .unwrap_or_default();
        if !removed.is_empty() {
            self.connections.fetch_sub(removed.len(), Ordering::Relaxed);
            self.users.fetch_sub(1, Ordering::Relaxed);
        }
        for d in &removed {
            d.handle.kick(reason.clone());
        }
        removed.len()
    }

    /// Kicks one device by resource; false if it was not online.
    pub fn kick_resource(
        &self,
        app_id: Uuid,
        user_id: Uuid,
        resource: &str,
        reason: KickReason,
    ) -> bool {
        self.kick_first(app_id, user_id, reason, |d| d.info.resource == resource)
    }

    /// Wakes every online device of a user (new messages), optionally skipping one session.
    pub fn notify_user(&self, app_id: Uuid, user_id: Uuid, except_session: Option<u64>) {
        let key = (app_id, user_id);
        let shard = self.shard(&key).lock().expect("registry lock");
        if let Some(devices) = shard.get(&key) {
            for d in devices {
                if Some(d.handle.session_id) != except_session {
                    d.handle.notify();
                }
            }
        }
    }

    /// Hands a committed message to every online device of a user (their live tails) and
    /// wakes them, optionally skipping one session (the sender's own device).
    pub fn push_message(
        &self,
        app_id: Uuid,
        user_id: Uuid,
        message: &Arc<crate::messaging::StoredMessage>,
        except_session: Option<u64>,
    ) {
        let key = (app_id, user_id);
        let shard = self.shard(&key).lock().expect("registry lock");
        if let Some(devices) = shard.get(&key) {
            for d in devices {
                if Some(d.handle.session_id) != except_session {
                    d.handle.push_message(message.clone());
                }
            }
        }
    }

    /// Kicks everything (server shutdown).
    pub fn kick_everyone(&self, reason: KickReason) {
        for shard in &self.shards {
            let drained: Vec<_> = shard.lock().expect("registry lock").drain().collect();
            for (_, devices) in drained {
                self.users.fetch_sub(1, Ordering::Relaxed);
                self.connections.fetch_sub(devices.len(), Ordering::Relaxed);
                for d in devices {
                    d.handle.kick(reason.clone());
                }
            }
        }
    }

    /// Connections online on this node.
    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Users with at least one device online on this node.
    pub fn user_count(&self) -> usize {
        self.users.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(resource: &str, platform: Platform, login_ms: u64) -> DeviceInfo {
        DeviceInfo {
            resource: resource.into(),
            platform,
            device_uuid: resource.into(),
            device_name: "test".into(),
            login_ms,
        }
    }

    #[test]
    fn fifth_login_kicks_the_earliest_of_the_same_platform() {
        let reg = SessionRegistry::new();
        let (app, user) = (Uuid::new_v4(), Uuid::new_v4());
        let mut signals = Vec::new();
        for i in 0..4 {
            let (h, s) = SessionHandle::new();
            reg.admit(
                app,
                user,
                device(&format!("w{i}"), Platform::Web, i),
                h,
                4,
                KickPolicy::KickEarliest,
                None,
            )
            .unwrap();
            signals.push(s);
        }
        let (h, _s) = SessionHandle::new();
        reg.admit(
            app,
            user,
            device("m0", Platform::Mobile, 10),
            h,
            4,
            KickPolicy::KickEarliest,
            None,
        )
        .unwrap();
        assert!(
            signals[0].kick_reason().is_none(),
            "other platforms never kick"
        );
        let (h, _s) = SessionHandle::new();
        let adm = reg
            .admit(
                app,
                user,
                device("w4", Platform::Web, 11),
                h,
                4,
                KickPolicy::KickEarliest,
                Some("ext".into()),
            )
            .unwrap();
        assert_eq!(adm.kicked.len(), 1);
        assert_eq!(adm.kicked[0].resource, "w0");
        assert_eq!(
            signals[0].kick_reason(),
            Some(KickReason::LoginAnotherDevice {
                ext: Some("ext".into())
            })
        );
        assert_eq!(reg.devices(app, user).len(), 5);
        assert_eq!(reg.connection_count(), 5);
    }

    #[test]
    fn refuse_policy_refuses_the_newcomer() {
        let reg = SessionRegistry::new();
        let (app, user) = (Uuid::new_v4(), Uuid::new_v4());
        for i in 0..2 {
            let (h, _s) = SessionHandle::new();
            reg.admit(
                app,
                user,
                device(&format!("w{i}"), Platform::Web, i),
                h,
                2,
                KickPolicy::RefuseNewcomer,
                None,
            )
            .unwrap();
        }
        let (h, _s) = SessionHandle::new();
        assert_eq!(
            reg.admit(
                app,
                user,
                device("w9", Platform::Web, 9),
                h,
                2,
                KickPolicy::RefuseNewcomer,
                None
            )
            .unwrap_err(),
            TooManyDevices
        );
        // The same resource may always come back.
        let (h, _s) = SessionHandle::new();
        let adm = reg
            .admit(
                app,
                user,
                device("w1", Platform::Web, 9),
                h,
                2,
                KickPolicy::RefuseNewcomer,
                None,
            )
            .unwrap();
        assert!(adm.replaced);
        assert_eq!(reg.devices(app, user).len(), 2);
    }

    #[test]
    fn reconnecting_resource_replaces_itself() {
        let reg = SessionRegistry::new();
        let (app, user) = (Uuid::new_v4(), Uuid::new_v4());
        let (h1, s1) = SessionHandle::new();
        reg.admit(
            app,
            user,
            device("w", Platform::Web, 1),
            h1,
            1,
            KickPolicy::KickEarliest,
            None,
        )
        .unwrap();
        let (h2, s2) = SessionHandle::new();
        let adm = reg
            .admit(
                app,
                user,
                device("w", Platform::Web, 2),
                h2,
                1,
                KickPolicy::KickEarliest,
                None,
            )
            .unwrap();
        assert!(adm.replaced && adm.kicked.is_empty());
        assert_eq!(s1.kick_reason(), Some(KickReason::Replaced { ext: None }));
        // The old session's late removal does not remove the new one.
        assert!(!reg.remove(app, user, s1.session_id));
        assert!(reg.is_online(app, user));
        assert!(reg.remove(app, user, s2.session_id));
        assert!(!reg.is_online(app, user));
        assert_eq!(reg.user_count(), 0);
        assert_eq!(reg.connection_count(), 0);
    }

    #[test]
    fn racing_logins_leave_exactly_the_cap() {
        let reg = Arc::new(SessionRegistry::new());
        let (app, user) = (Uuid::new_v4(), Uuid::new_v4());
        let threads: Vec<_> = (0..16)
            .map(|i| {
                let reg = reg.clone();
                std::thread::spawn(move || {
                    let (h, s) = SessionHandle::new();
                    let r = reg.admit(
                        app,
                        user,
                        device(&format!("w{i}"), Platform::Web, i),
                        h,
                        3,
                        KickPolicy::RefuseNewcomer,
                        None,
                    );
                    (r.is_ok(), s)
                })
            })
            .collect();
        let admitted = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|(ok, _)| *ok)
            .count();
        assert_eq!(admitted, 3);
        assert_eq!(reg.devices(app, user).len(), 3);
    }

    #[test]
    fn kick_user_and_resource() {
        let reg = SessionRegistry::new();
        let (app, user) = (Uuid::new_v4(), Uuid::new_v4());
        let (h1, s1) = SessionHandle::new();
        let (h2, s2) = SessionHandle::new();
        reg.admit(
            app,
            user,
            device("a", Platform::Web, 1),
            h1,
            4,
            KickPolicy::KickEarliest,
            None,
        )
        .unwrap();
        reg.admit(
            app,
            user,
            device("b", Platform::Web, 2),
            h2,
            4,
            KickPolicy::KickEarliest,
            None,
        )
        .unwrap();
        assert!(reg.kick_resource(app, user, "a", KickReason::KickedByOther));
        assert!(!reg.kick_resource(app, user, "a", KickReason::KickedByOther));
        assert_eq!(s1.kick_reason(), Some(KickReason::KickedByOther));
        assert!(s2.kick_reason().is_none());
        assert_eq!(reg.kick_user(app, user, KickReason::PasswordChanged), 1);
        assert_eq!(s2.kick_reason(), Some(KickReason::PasswordChanged));
        assert!(!reg.is_online(app, user));
    }

    #[test]
    fn os_types_map_to_ends() {
        assert_eq!(Platform::from_os_type(16, None), Platform::Web);
        assert_eq!(Platform::from_os_type(1, None), Platform::Mobile);
        assert_eq!(Platform::from_os_type(0, None), Platform::Mobile);
        assert_eq!(Platform::from_os_type(4, None), Platform::Desktop);
        assert_eq!(Platform::from_os_type(2, None), Platform::Linux);
        assert_eq!(Platform::from_os_type(5, Some(7)), Platform::Custom(7));
    }

    #[tokio::test]
    async fn a_waiting_connection_is_woken_once_for_messages_that_arrive_together() {
        let (handle, signals) = SessionHandle::new();
        let signals = Arc::new(signals);
        let waiter = tokio::spawn({
            let signals = signals.clone();
            async move { signals.new_messages().await }
        });
        tokio::task::yield_now().await;
        handle.notify();
        handle.notify();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("the waiting task was woken")
            .unwrap();
        // Both notifications were taken by that one wake-up.
        let again =
            tokio::time::timeout(std::time::Duration::from_millis(50), signals.new_messages());
        assert!(again.await.is_err(), "wake-ups coalesce");
        // One that comes while nobody waits is kept for the next wait.
        handle.notify();
        signals.new_messages().await;
    }

    #[tokio::test]
    async fn a_kick_wakes_the_connection_and_the_first_reason_wins() {
        let (handle, signals) = SessionHandle::new();
        let waiter = tokio::spawn(async move { signals.kicked().await });
        tokio::task::yield_now().await;
        handle.kick(KickReason::UserRemoved);
        handle.kick(KickReason::KickedByOther);
        let reason = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("the waiting task was woken")
            .unwrap();
        assert_eq!(reason, KickReason::UserRemoved);
    }
}
