//! Who is online, as the whole deployment sees it.
//!
//! [`SessionRegistry`] is always this node's table of live connections (the handles kicks
//! and wake-ups go through). [`Presence`] is the view every rule is decided on: the device
//! list, online status, the per-platform cap and kicks. On one node the registry is that
//! view ([`LocalPresence`]); in a cluster the shared view lives in the database and kicks
//! travel to the node that holds the connection (`ferrim-cluster`).

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use crate::app::KickPolicy;
use crate::error::CoreError;
use crate::sessions::{
    Admission, DeviceInfo, KickReason, SessionHandle, SessionRegistry, TooManyDevices,
};

/// Why a login was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    #[error(transparent)]
    TooManyDevices(#[from] TooManyDevices),
    /// The shared view could not be reached; the login should be retried.
    #[error("presence unavailable: {0}")]
    Unavailable(String),
}

/// The deployment-wide online view. Implementations decide admission atomically per user,
/// so two logins racing for the last slot (on any nodes) leave exactly the cap online.
#[async_trait]
pub trait Presence: Send + Sync + 'static {
    /// Admits a device under the app's multi-device rules (see [`SessionRegistry::admit`]);
    /// the handle is registered on this node and every device kicked to make room is
    /// signalled, wherever it is.
    #[allow(clippy::too_many_arguments)]
    async fn admit(
        &self,
        app_id: Uuid,
        user_id: Uuid,
        info: DeviceInfo,
        handle: SessionHandle,
        cap: u32,
        policy: KickPolicy,
        login_ext: Option<String>,
    ) -> Result<Admission, AdmitError>;

    /// A connection of this node ended. Never blocks; only that session's entry goes.
    fn remove(&self, app_id: Uuid, user_id: Uuid, session_id: u64);

    /// The user's online devices, oldest login first.
    async fn devices(&self, app_id: Uuid, user_id: Uuid) -> Result<Vec<DeviceInfo>, CoreError>;

    async fn is_online(&self, app_id: Uuid, user_id: Uuid) -> Result<bool, CoreError>;

    /// Kicks every device of the user; returns how many were online.
    async fn kick_user(
        &self,
        app_id: Uuid,
        user_id: Uuid,
        reason: KickReason,
    ) -> Result<usize, CoreError>;

    /// Kicks one device by resource; false if it was not online.
    async fn kick_resource(
        &self,
        app_id: Uuid,
        user_id: Uuid,
        resource: &str,
        reason: KickReason,
    ) -> Result<bool, CoreError>;
}

/// The single-node view: the registry itself.
#[derive(Clone)]
pub struct LocalPresence {
    sessions: Arc<SessionRegistry>,
}

impl LocalPresence {
    pub fn new(sessions: Arc<SessionRegistry>) -> Self {
        Self { sessions }
    }
}

#[async_trait]
impl Presence for LocalPresence {
    async fn admit(
        &self,
        app_id: Uuid,
        user_id: Uuid,
        info: DeviceInfo,
        handle: SessionHandle,
        cap: u32,
        policy: KickPolicy,
        login_ext: Option<String>,
    ) -> Result<Admission, AdmitError> {
        Ok(self
            .sessions
            .admit(app_id, user_id, info, handle, cap, policy, login_ext)?)
    }

    fn remove(&self, app_id: Uuid, user_id: Uuid, session_id: u64) {
        self.sessions.remove(app_id, user_id, session_id);
    }

    async fn devices(&self, app_id: Uuid, user_id: Uuid) -> Result<Vec<DeviceInfo>, CoreError> {
        Ok(self.sessions.devices(app_id, user_id))
    }

    async fn is_online(&self, app_id: Uuid, user_id: Uuid) -> Result<bool, CoreError> {
        Ok(self.sessions.is_online(app_id, user_id))
    }

    async fn kick_user(
        &self,
        app_id: Uuid,
        user_id: Uuid,
        reason: KickReason,
    ) -> Result<usize, CoreError> {
        Ok(self.sessions.kick_user(app_id, user_id, reason))
    }

    async fn kick_resource(
        &self,
        app_id: Uuid,
        user_id: Uuid,
        resource: &str,
        reason: KickReason,
    ) -> Result<bool, CoreError> {
        Ok(self
            .sessions
            .kick_resource(app_id, user_id, resource, reason))
    }
}
