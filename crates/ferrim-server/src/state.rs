//! What every edge handler can reach.

use std::sync::Arc;

use ferrim_core::accounts::Accounts;

use crate::config::Settings;

/// Shared server state, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub accounts: Arc<Accounts>,
    pub settings: Arc<Settings>,
    /// Base URL of this server as clients reach it (no trailing slash).
    pub public_url: Arc<str>,
}
