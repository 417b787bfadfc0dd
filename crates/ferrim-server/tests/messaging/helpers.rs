//! A real server on port 0 with a fresh data directory, driven through `ferrim-client`.

use std::time::Duration;

use ferrim_client::{Client, Event, Events, LoginOptions, ReceivedMessage};

/// How long a test waits for one expected event.
pub const WAIT: Duration = Duration::from_secs(10);

pub use crate::common::{spawn_app, spawn_app_with, TestApp};

impl TestApp {
    pub async fn token(&self, name: &str) -> String {
        self.accounts
            .issue_user_token(&self.app, name, None)
            .await
            .expect("token issued")
            .0
            .token
    }

    /// Logs a device in with the given resource.
    pub async fn login(&self, name: &str, resource: &str) -> (Client, Events) {
        let opts = LoginOptions::new(self.app.key.to_string(), name, self.token(name).await)
            .with_resource(resource);
        Client::connect(&self.ws_url, opts)
            .await
            .expect("login succeeds")
    }
}

/// Collects `n` messages, failing if they do not arrive in time.
pub async fn collect(events: &mut Events, n: usize) -> Vec<ReceivedMessage> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match events.next_message(WAIT).await {
            Ok(m) => out.push(m),
            Err(e) => panic!("only {} of {n} messages arrived: {e}", out.len()),
        }
    }
    out
}

/// Asserts that no further message arrives within a short quiet period.
pub async fn assert_quiet(events: &mut Events) {
    let extra = events
        .wait_for(Duration::from_millis(500), |e| match e {
            Event::Message(m) => Some(*m),
            _ => None,
        })
        .await;
    assert!(extra.is_err(), "unexpected message: {extra:?}");
}
