//! Ferrim's domain core.
//!
//! Everything here is independent of HTTP, WebSocket and protobuf: the REST API, the msync
//! gateway and the console are edges that translate their wire formats into calls on
//! [`accounts::Accounts`] and [`sessions::SessionRegistry`], and storage sits behind the
//! [`store::Store`] trait.

pub mod accounts;
pub mod app;
pub mod clock;
pub mod error;
pub mod messaging;
pub mod password;
pub mod presence;
pub mod sessions;
pub mod store;
pub mod token;
pub mod user;

pub use error::CoreError;
