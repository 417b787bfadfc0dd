//! What every edge handler can reach.

use std::sync::Arc;

use ferrim_core::accounts::Accounts;
use ferrim_core::messaging::Messaging;

use crate::config::Settings;

/// Shared server state, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub accounts: Arc<Accounts>,
    /// One-to-one messaging (group-commit writer, inboxes, delivery bus).
    pub messaging: Arc<Messaging>,
    pub settings: Arc<Settings>,
    /// Base URL of this server as clients reach it (no trailing slash).
    pub public_url: Arc<str>,
}
