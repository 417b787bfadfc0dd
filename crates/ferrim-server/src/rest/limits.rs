//! Per-app request quotas, after Easemob's documented defaults (rest-api.md §1.8): 300
//! requests/s per app on `POST /token`, 100 requests/s per app shared by the user-system
//! APIs, and within those 30 requests/s on batch deletion. Excess gets 429 `reach_limit`.
//! Counting is in memory, per node.

use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use super::ApiError;

/// Requests per second per app on the token endpoint.
pub const TOKEN_REQUESTS_PER_SEC: u32 = 300;
/// Requests per second per app shared by registration and user management.
pub const USER_SYSTEM_REQUESTS_PER_SEC: u32 = 100;
/// Requests per second per app on `DELETE /users` (also counted as user-system requests).
pub const BATCH_DELETE_REQUESTS_PER_SEC: u32 = 30;

/// Which quota a request counts against.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Group {
    Token,
    UserSystem,
    BatchDelete,
}

pub(crate) struct RateLimits {
    token: DefaultKeyedRateLimiter<Uuid>,
    user_system: DefaultKeyedRateLimiter<Uuid>,
    batch_delete: DefaultKeyedRateLimiter<Uuid>,
}

impl RateLimits {
    pub(crate) fn new() -> Self {
        let quota = |n: u32| Quota::per_second(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        Self {
            token: RateLimiter::keyed(quota(TOKEN_REQUESTS_PER_SEC)),
            user_system: RateLimiter::keyed(quota(USER_SYSTEM_REQUESTS_PER_SEC)),
            batch_delete: RateLimiter::keyed(quota(BATCH_DELETE_REQUESTS_PER_SEC)),
        }
    }

    /// Fails with 429 once the app's quota for `group` is used up. Keyed by app, so the
    /// maps hold at most one entry per app.
    pub(crate) fn check(&self, app: Uuid, group: Group) -> Result<(), ApiError> {
        let limiter = match group {
            Group::Token => &self.token,
            Group::UserSystem => &self.user_system,
            Group::BatchDelete => &self.batch_delete,
        };
        limiter.check_key(&app).map_err(|_| ApiError::reach_limit())
    }
}
