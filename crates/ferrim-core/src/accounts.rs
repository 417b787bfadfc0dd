//! Accounts: apps, credentials, tokens and users — the rules behind the REST API, the console
//! and msync login.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::app::{App, AppKey, AppSettings};
use crate::clock::now_ms;
use crate::error::CoreError;
use crate::password::PasswordHasher;
use crate::presence::{LocalPresence, Presence};
use crate::sessions::{DeviceInfo, KickReason, SessionRegistry};
use crate::store::{Store, StoreError, UserPage, UserUpdate};
use crate::token::{
    self, DynamicToken, TokenClaims, TokenError, TokenKind, UnverifiedToken, DYNAMIC_CLOCK_SKEW_MS,
};
use crate::user::{validate_nickname, validate_password, PushSettings, User, Username};

/// Most users one batch registration may carry.
pub const MAX_REGISTER_BATCH: usize = 60;
/// Failed password-grant attempts allowed per user per minute.
pub const PASSWORD_FAILURES_PER_USER_PER_MINUTE: u32 = 10;
/// Failed password-grant attempts allowed per client address per minute.
pub const PASSWORD_FAILURES_PER_ADDRESS_PER_MINUTE: u32 = 120;

/// A token just issued.
#[derive(Clone, Debug)]
pub struct IssuedToken {
    pub token: String,
    /// Validity in seconds as Easemob reports it (`expires_in`); 0 for never-expiring tokens.
    pub expires_in_secs: u64,
    pub claims: TokenClaims,
}

/// A user authenticated by a user token (REST-issued or dynamic).
#[derive(Clone, Debug)]
pub struct AuthenticatedUser {
    pub user: User,
    /// Absolute expiry (Unix ms), `None` if the token never expires.
    pub expires_ms: Option<u64>,
}

/// One user of a registration request, before validation.
#[derive(Clone, Debug)]
pub struct NewUserInput {
    pub username: String,
    pub password: Option<String>,
    pub nickname: Option<String>,
}

/// What happened to one user of a registration request.
#[derive(Clone, Debug)]
pub enum RegisterOutcome {
    Created(User),
    AlreadyExists(Username),
}

type Cached = (Arc<App>, Instant);

/// The apps known to this node, cached so token checks never wait on storage. In a
/// cluster, entries are re-read after `ttl`, so settings changed through another node apply
/// here within that time.
#[derive(Default)]
struct AppCache {
    by_key: RwLock<HashMap<AppKey, Cached>>,
    by_id: RwLock<HashMap<Uuid, Cached>>,
    ttl: Option<Duration>,
}

impl AppCache {
    fn fresh(&self, entry: Option<&Cached>) -> Option<Arc<App>> {
        let (app, at) = entry?;
        match self.ttl {
            Some(ttl) if at.elapsed() > ttl => None,
            _ => Some(app.clone()),
        }
    }
    fn get_key(&self, key: &AppKey) -> Option<Arc<App>> {
        self.fresh(self.by_key.read().expect("app cache").get(key))
    }
    fn get_id(&self, id: Uuid) -> Option<Arc<App>> {
        self.fresh(self.by_id.read().expect("app cache").get(&id))
    }
    fn put(&self, app: App) -> Arc<App> {
        let app = Arc::new(app);
        let now = Instant::now();
        self.by_key
            .write()
            .expect("app cache")
            .insert(app.key.clone(), (app.clone(), now));
        self.by_id
            .write()
            .expect("app cache")
            .insert(app.id, (app.clone(), now));
        app
    }
}

/// Guards the password grant against guessing: failed attempts are counted per user and
/// per client address in fixed one-minute windows; once either count reaches its limit,
/// every attempt for that key (even with the right password) is refused until the window
/// ends. Successful logins are not counted, so an app whose users log in by password often
/// is limited only by the per-app token quota.
struct PasswordThrottle {
    per_user: FailureWindow<(Uuid, String)>,
    per_address: FailureWindow<IpAddr>,
}

impl PasswordThrottle {
    fn new() -> Self {
        Self {
            per_user: FailureWindow::new(PASSWORD_FAILURES_PER_USER_PER_MINUTE),
            per_address: FailureWindow::new(PASSWORD_FAILURES_PER_ADDRESS_PER_MINUTE),
        }
    }

    fn check(&self, app_id: Uuid, username: &str, addr: IpAddr) -> Result<(), CoreError> {
        let now = Instant::now();
        if self.per_address.exhausted(&addr, now)
            || self.per_user.exhausted(&(app_id, username.to_owned()), now)
        {
            return Err(CoreError::Throttled);
        }
        Ok(())
    }

    fn failed(&self, app_id: Uuid, username: &str, addr: IpAddr) {
        let now = Instant::now();
        self.per_address.record(addr, now);
        self.per_user.record((app_id, username.to_owned()), now);
    }
}

/// Failures per key in fixed windows of [`FAILURE_WINDOW`].
struct FailureWindow<K> {
    limit: u32,
    counts: Mutex<HashMap<K, (Instant, u32)>>,
}

const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Keys tracked before expired windows are swept out.
const FAILURE_KEYS_SWEEP_AT: usize = 100_000;

impl<K: std::hash::Hash + Eq> FailureWindow<K> {
    fn new(limit: u32) -> Self {
        Self {
            limit,
            counts: Mutex::new(HashMap::new()),
        }
    }

    fn exhausted(&self, key: &K, now: Instant) -> bool {
        let counts = self.counts.lock().expect("failure counts");
        counts.get(key).is_some_and(|&(start, failures)| {
            now.duration_since(start) < FAILURE_WINDOW && failures >= self.limit
        })
    }

    fn record(&self, key: K, now: Instant) {
        let mut counts = self.counts.lock().expect("failure counts");
        if counts.len() >= FAILURE_KEYS_SWEEP_AT {
            counts.retain(|_, (start, _)| now.duration_since(*start) < FAILURE_WINDOW);
        }
        let (start, failures) = counts.entry(key).or_insert((now, 0));
        if now.duration_since(*start) >= FAILURE_WINDOW {
            *start = now;
            *failures = 0;
        }
        *failures += 1;
    }
}

/// The accounts service.
pub struct Accounts {
    store: Arc<dyn Store>,
    apps: AppCache,
    hasher: PasswordHasher,
    sessions: Arc<SessionRegistry>,
    presence: Arc<dyn Presence>,
    throttle: PasswordThrottle,
}

impl Accounts {
    pub fn new(
        store: Arc<dyn Store>,
        hasher: PasswordHasher,
        sessions: Arc<SessionRegistry>,
    ) -> Self {
        Self {
            store,
            apps: AppCache::default(),
            hasher,
            presence: Arc::new(LocalPresence::new(sessions.clone())),
            sessions,
            throttle: PasswordThrottle::new(),
        }
    }

    /// Decides online status, the device cap and kicks through `presence` (a cluster's
    /// shared view) instead of this node's registry alone.
    pub fn with_presence(mut self, presence: Arc<dyn Presence>) -> Self {
        self.presence = presence;
        self
    }

    /// Re-reads cached apps older than `ttl` (several nodes share the store, and another
    /// node may have changed an app's settings).
    pub fn with_app_cache_ttl(mut self, ttl: Duration) -> Self {
        self.apps.ttl = Some(ttl);
        self
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// This node's live connections.
    pub fn sessions(&self) -> &Arc<SessionRegistry> {
        &self.sessions
    }

    /// Kicks a user's devices after a committed change (delete, password, deactivation).
    /// The change stands even if the kick cannot be sent: tokens are already revoked.
    async fn kick_after_change(&self, app_id: Uuid, user_id: Uuid, reason: KickReason) {
        if let Err(e) = self.presence.kick_user(app_id, user_id, reason).await {
            tracing::warn!(error = %e, %user_id, "kicking the devices of a changed user failed");
        }
    }

    /// The deployment-wide online view (equal to [`Self::sessions`] on one node).
    pub fn presence(&self) -> &Arc<dyn Presence> {
        &self.presence
    }

    // ----- apps -----------------------------------------------------------------------

    /// Makes sure an app exists. Returns it and whether it was just created; existing
    /// credentials are never changed.
    pub async fn ensure_app(
        &self,
        key: &AppKey,
        client_id: Option<String>,
        client_secret: Option<String>,
    ) -> Result<(Arc<App>, bool), CoreError> {
        if let Some(app) = self.store.app_by_key(key).await? {
            return Ok((self.apps.put(app), false));
        }
        match self.create_app(key, client_id, client_secret).await {
            Ok(app) => Ok((app, true)),
            // Lost a race with another node creating it.
            Err(CoreError::AppExists) => Ok((self.app(key).await?, false)),
            Err(e) => Err(e),
        }
    }

    /// Creates an app; `AppExists` if the appKey is taken.
    pub async fn create_app(
        &self,
        key: &AppKey,
        client_id: Option<String>,
        client_secret: Option<String>,
    ) -> Result<Arc<App>, CoreError> {
        let app = App::new(key.clone(), client_id, client_secret, now_ms());
        match self.store.insert_app(&app).await {
            Ok(()) => Ok(self.apps.put(app)),
            Err(StoreError::Conflict) => Err(CoreError::AppExists),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn list_apps(&self) -> Result<Vec<App>, CoreError> {
        Ok(self.store.list_apps().await?)
    }

    /// An app by key, from the cache when possible.
    pub async fn app(&self, key: &AppKey) -> Result<Arc<App>, CoreError> {
        if let Some(app) = self.apps.get_key(key) {
            return Ok(app);
        }
        match self.store.app_by_key(key).await? {
            Some(app) => Ok(self.apps.put(app)),
            None => Err(CoreError::AppNotFound),
        }
    }

    /// An app by ID, from the cache when possible.
    pub async fn app_by_id(&self, id: Uuid) -> Result<Arc<App>, CoreError> {
        if let Some(app) = self.apps.get_id(id) {
            return Ok(app);
        }
        match self.store.app_by_id(id).await? {
            Some(app) => Ok(self.apps.put(app)),
            None => Err(CoreError::AppNotFound),
        }
    }

    /// Replaces an app's settings; effective for the next request or login.
    pub async fn update_settings(
        &self,
        app: &App,
        settings: AppSettings,
    ) -> Result<Arc<App>, CoreError> {
        settings.validate()?;
        if !self.store.update_app_settings(app.id, &settings).await? {
            return Err(CoreError::AppNotFound);
        }
        let mut updated = app.clone();
        updated.settings = settings;
        Ok(self.apps.put(updated))
    }

    // ----- tokens ---------------------------------------------------------------------

    fn ttl_or_default(app: &App, ttl: Option<u64>) -> u64 {
        ttl.unwrap_or(app.settings.token_ttl_secs)
    }

    fn issue(
        app: &App,
        kind: TokenKind,
        principal: Uuid,
        generation: u32,
        ttl: u64,
    ) -> IssuedToken {
        let (token, claims) = token::issue(app, kind, principal, generation, now_ms(), ttl);
        IssuedToken {
            token,
            expires_in_secs: ttl,
            claims,
        }
    }

    /// `grant_type=client_credentials`.
    pub fn issue_app_token(
        &self,
        app: &App,
        client_id: &str,
        client_secret: &str,
        ttl: Option<u64>,
    ) -> Result<IssuedToken, CoreError> {
        use subtle::ConstantTimeEq;
        if !bool::from(client_id.as_bytes().ct_eq(app.client_id.as_bytes())) {
            return Err(CoreError::ClientIdMismatch);
        }
        if !bool::from(client_secret.as_bytes().ct_eq(app.client_secret.as_bytes())) {
            return Err(CoreError::ClientSecretMismatch);
        }
        let ttl = Self::ttl_or_default(app, ttl);
        Ok(Self::issue(app, TokenKind::App, app.id, 0, ttl))
    }

    /// Checks an app token for the admin API: signature, app, kind and expiry, all in memory.
    /// Another app's token is `WrongTokenKind` (it may not be used here), not a bad signature.
    pub fn authenticate_app(&self, app: &App, token: &str) -> Result<TokenClaims, CoreError> {
        let unverified = UnverifiedToken::parse(token)?;
        if unverified.app_id() != app.id {
            return Err(CoreError::WrongTokenKind);
        }
        let claims = unverified.verify(app)?;
        if claims.kind != TokenKind::App {
            return Err(CoreError::WrongTokenKind);
        }
        claims.check_expiry(now_ms())?;
        Ok(claims)
    }

    /// Checks a user token (REST-issued or dynamic) of this app and loads its user, who must
    /// exist and be activated, and must not have revoked the token.
    pub async fn authenticate_user(
        &self,
        app: &App,
        token: &str,
    ) -> Result<AuthenticatedUser, CoreError> {
        let now = now_ms();
        if DynamicToken::is_dynamic(token) {
            let dynamic = DynamicToken::parse(token)?;
            // Another app's token is one that may not be used here, not a forgery.
            if dynamic.appkey != app.key.to_string() {
                return Err(CoreError::WrongTokenKind);
            }
            dynamic.verify(app, now)?;
            let name = Username::parse(&dynamic.user_id).map_err(|_| CoreError::UserNotFound)?;
            let user = self
                .store
                .user_by_name(app.id, &name)
                .await?
                .ok_or(CoreError::UserNotFound)?;
            let minted_ms = dynamic.cur_time.saturating_mul(1000);
            if minted_ms < user.tokens_revoked_ms.div_ceil(1000) * 1000 {
                return Err(TokenError::Revoked.into());
            }
            // Minted long before this account existed: for an earlier, deleted account of
            // the same name. Minting shortly before registering is fine.
            if minted_ms.saturating_add(DYNAMIC_CLOCK_SKEW_MS) < user.created_ms {
                return Err(TokenError::Revoked.into());
            }
            if !user.activated {
                return Err(CoreError::UserNotActivated);
            }
            return Ok(AuthenticatedUser {
                user,
                expires_ms: Some(dynamic.expires_ms()),
            });
        }
        let unverified = UnverifiedToken::parse(token)?;
        if unverified.app_id() != app.id {
            return Err(CoreError::WrongTokenKind);
        }
        let claims = unverified.verify(app)?;
        if claims.kind != TokenKind::User {
            return Err(CoreError::WrongTokenKind);
        }
        claims.check_expiry(now)?;
        let user = self
            .store
            .user_by_id(app.id, claims.principal_id)
            .await?
            .ok_or(CoreError::UserNotFound)?;
        if user.token_generation != claims.generation {
            return Err(TokenError::Revoked.into());
        }
        if !user.activated {
            return Err(CoreError::UserNotActivated);
        }
        Ok(AuthenticatedUser {
            user,
            expires_ms: claims.expires_ms,
        })
    }

    /// `grant_type=inherit`: a user token on the app's authority, optionally creating the user.
    pub async fn token_inherit(
        &self,
        app: &App,
        username: &str,
        auto_create: bool,
        ttl: Option<u64>,
    ) -> Result<(IssuedToken, User), CoreError> {
        // An ID that could never have been registered names no user: without auto-creation
        // that is "user not found", not a complaint about the ID (spec §3.1).
        let name = match Username::parse(username) {
            Ok(name) => name,
            Err(_) if !auto_create => return Err(CoreError::UserNotFound),
            Err(e) => return Err(e),
        };
        let user = match self.store.user_by_name(app.id, &name).await? {
            Some(user) => user,
            None if auto_create => {
                let user = User::new(app.id, name.clone(), None, None, now_ms());
                let inserted = self.store.insert_users(std::slice::from_ref(&user)).await?;
                if inserted.first() == Some(&true) {
                    user
                } else {
                    // Created concurrently by another request: use that one.
                    self.store
                        .user_by_name(app.id, &name)
                        .await?
                        .ok_or(CoreError::UserNotFound)?
                }
            }
            None => return Err(CoreError::UserNotFound),
        };
        if !user.activated {
            return Err(CoreError::UserNotActivated);
        }
        let ttl = Self::ttl_or_default(app, ttl);
        let issued = Self::issue(app, TokenKind::User, user.id, user.token_generation, ttl);
        Ok((issued, user))
    }

    /// `grant_type=password`; failed attempts are throttled per user and per client address.
    pub async fn token_password(
        &self,
        app: &App,
        username: &str,
        password: &str,
        ttl: Option<u64>,
        client: IpAddr,
    ) -> Result<(IssuedToken, User), CoreError> {
        let name = Username::parse(username).map_err(|_| CoreError::UserNotFound)?;
        self.throttle.check(app.id, name.as_str(), client)?;
        let failed = |e: CoreError| {
            self.throttle.failed(app.id, name.as_str(), client);
            e
        };
        let user = self
            .store
            .user_by_name(app.id, &name)
            .await?
            .ok_or_else(|| failed(CoreError::UserNotFound))?;
        let Some(hash) = user.password_hash.clone() else {
            return Err(failed(CoreError::InvalidPassword));
        };
        if !self.hasher.verify(password.to_owned(), hash).await {
            return Err(failed(CoreError::InvalidPassword));
        }
        if !user.activated {
            return Err(CoreError::UserNotActivated);
        }
        let ttl = Self::ttl_or_default(app, ttl);
        let issued = Self::issue(app, TokenKind::User, user.id, user.token_generation, ttl);
        Ok((issued, user))
    }

    /// Issues a user token directly (operator CLI and console "test environment" flow).
    pub async fn issue_user_token(
        &self,
        app: &App,
        username: &str,
        ttl: Option<u64>,
    ) -> Result<(IssuedToken, User), CoreError> {
        self.token_inherit(app, username, false, ttl).await
    }

    // ----- users ----------------------------------------------------------------------

    /// Registers users (one or a batch of at most [`MAX_REGISTER_BATCH`]). Every input is
    /// validated before anything is written, so a bad entry creates nobody; duplicates of
    /// existing users are reported per user while the rest are created.
    pub async fn register(
        &self,
        app: &App,
        inputs: Vec<NewUserInput>,
    ) -> Result<Vec<RegisterOutcome>, CoreError> {
        if inputs.len() > MAX_REGISTER_BATCH {
            return Err(CoreError::BatchTooLarge {
                size: inputs.len(),
                max: MAX_REGISTER_BATCH,
            });
        }
        // Validate everything first.
        let mut seen: HashMap<Username, Option<String>> = HashMap::new();
        let mut order: Vec<(Username, String, Option<String>)> = Vec::new();
        for input in inputs {
            let name = Username::parse(&input.username)?;
            let password = input.password.unwrap_or_default();
            validate_password(&password)?;
            if let Some(nick) = &input.nickname {
                validate_nickname(nick)?;
            }
            match seen.get(&name) {
                Some(Some(prev)) if *prev != password => {
                    return Err(CoreError::ConflictingDuplicate {
                        username: name.to_string(),
                    })
                }
                Some(_) => continue,
                None => {
                    seen.insert(name.clone(), Some(password.clone()));
                    order.push((name, password, input.nickname));
                }
            }
        }
        // Skip hashing for users that already exist.
        let mut existing = HashSet::new();
        for (name, _, _) in &order {
            if self.store.user_by_name(app.id, name).await?.is_some() {
                existing.insert(name.clone());
            }
        }
        let fresh: Vec<&(Username, String, Option<String>)> = order
            .iter()
            .filter(|(n, _, _)| !existing.contains(n))
            .collect();
        let hashes = self
            .hasher
            .hash_many(fresh.iter().map(|(_, p, _)| p.clone()).collect())
            .await?;
        let now = now_ms();
        let users: Vec<User> = fresh
            .iter()
            .zip(hashes)
            .map(|((name, _, nick), hash)| {
                User::new(app.id, name.clone(), Some(hash), nick.clone(), now)
            })
            .collect();
        let inserted = if users.is_empty() {
            Vec::new()
        } else {
            self.store.insert_users(&users).await?
        };
        let mut created: HashMap<Username, User> = users
            .into_iter()
            .zip(inserted)
            .filter(|(_, ok)| *ok)
            .map(|(u, _)| (u.username.clone(), u))
            .collect();
        Ok(order
            .into_iter()
            .map(|(name, _, _)| match created.remove(&name) {
                Some(user) => RegisterOutcome::Created(user),
                None => RegisterOutcome::AlreadyExists(name),
            })
            .collect())
    }

    /// One user by name; `UserNotFound` also for names that could not exist.
    pub async fn user(&self, app: &App, name: &str) -> Result<User, CoreError> {
        let name = Username::parse(name).map_err(|_| CoreError::UserNotFound)?;
        self.store
            .user_by_name(app.id, &name)
            .await?
            .ok_or(CoreError::UserNotFound)
    }

    pub async fn list_users(
        &self,
        app: &App,
        after: Option<u64>,
        limit: u32,
    ) -> Result<UserPage, CoreError> {
        Ok(self.store.list_users(app.id, after, limit).await?)
    }

    /// Deletes a user; their devices are told (207) and disconnected.
    pub async fn delete_user(&self, app: &App, name: &str) -> Result<User, CoreError> {
        let name = Username::parse(name).map_err(|_| CoreError::UserNotFound)?;
        let user = self
            .store
            .delete_user(app.id, &name)
            .await?
            .ok_or(CoreError::UserNotFound)?;
        self.kick_after_change(app.id, user.id, KickReason::UserRemoved)
            .await;
        Ok(user)
    }

    /// Deletes the app's earliest-created users.
    pub async fn delete_oldest_users(&self, app: &App, limit: u32) -> Result<Vec<User>, CoreError> {
        let users = self.store.delete_oldest_users(app.id, limit).await?;
        for user in &users {
            self.kick_after_change(app.id, user.id, KickReason::UserRemoved)
                .await;
        }
        Ok(users)
    }

    /// Sets a new password: every token issued before dies and every device is kicked (216).
    pub async fn change_password(
        &self,
        app: &App,
        name: &str,
        new_password: &str,
    ) -> Result<User, CoreError> {
        validate_password(new_password)?;
        let name = Username::parse(name).map_err(|_| CoreError::UserNotFound)?;
        if self.store.user_by_name(app.id, &name).await?.is_none() {
            return Err(CoreError::UserNotFound);
        }
        let hash = self.hasher.hash(new_password.to_owned()).await?;
        let user = self
            .store
            .update_user(app.id, &name, UserUpdate::Password { hash }, now_ms())
            .await?
            .ok_or(CoreError::UserNotFound)?;
        self.kick_after_change(app.id, user.id, KickReason::PasswordChanged)
            .await;
        Ok(user)
    }

    /// Deactivates (kicks every device, revokes tokens) or re-activates a user.
    pub async fn set_activated(
        &self,
        app: &App,
        name: &str,
        activated: bool,
    ) -> Result<User, CoreError> {
        let name = Username::parse(name).map_err(|_| CoreError::UserNotFound)?;
        let user = self
            .store
            .update_user(app.id, &name, UserUpdate::Activated(activated), now_ms())
            .await?
            .ok_or(CoreError::UserNotFound)?;
        if !activated {
            self.kick_after_change(app.id, user.id, KickReason::KickedByOther)
                .await;
        }
        Ok(user)
    }

    /// Sets or clears the push nickname (`Some(None)` clears it, `None` keeps it) and sets
    /// the push preferences given in `push` (the others are kept).
    pub async fn update_profile(
        &self,
        app: &App,
        name: &str,
        nickname: Option<Option<String>>,
        push: PushSettings,
    ) -> Result<User, CoreError> {
        if let Some(Some(n)) = &nickname {
            validate_nickname(n)?;
        }
        let user = self.user(app, name).await?;
        let nickname = nickname.unwrap_or(user.nickname);
        let mut merged = user.push;
        merged.merge(push);
        self.store
            .update_user(
                app.id,
                &user.username,
                UserUpdate::Profile {
                    nickname,
                    push: merged,
                },
                now_ms(),
            )
            .await?
            .ok_or(CoreError::UserNotFound)
    }

    /// Forces every device of a user offline (217). Returns how many were online.
    pub async fn disconnect_all(&self, app: &App, name: &str) -> Result<usize, CoreError> {
        let user = self.user(app, name).await?;
        self.presence
            .kick_user(app.id, user.id, KickReason::KickedByOther)
            .await
    }

    /// Forces one device offline (217). False if that resource was not online.
    pub async fn disconnect_resource(
        &self,
        app: &App,
        name: &str,
        resource: &str,
    ) -> Result<bool, CoreError> {
        let user = self.user(app, name).await?;
        self.presence
            .kick_resource(app.id, user.id, resource, KickReason::KickedByOther)
            .await
    }

    /// The user's online devices.
    pub async fn resources(&self, app: &App, name: &str) -> Result<Vec<DeviceInfo>, CoreError> {
        let user = self.user(app, name).await?;
        self.presence.devices(app.id, user.id).await
    }

    /// Whether any device of the user is online.
    pub async fn is_online(&self, app: &App, user: &User) -> Result<bool, CoreError> {
        self.presence.is_online(app.id, user.id).await
    }

    /// Online status of many names; unknown names are simply offline.
    pub async fn statuses(&self, app: &App, names: &[String]) -> Result<Vec<bool>, CoreError> {
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let online = match Username::parse(name) {
                Ok(n) => match self.store.user_by_name(app.id, &n).await? {
                    Some(user) => self.presence.is_online(app.id, user.id).await?,
                    None => false,
                },
                Err(_) => false,
            };
            out.push(online);
        }
        Ok(out)
    }
}
