//! An async client for the Easemob msync protocol that behaves on the wire like the official
//! Web SDK 4.21.1 (see `shared/spec/msync-protocol.md`). It is used by ferrim's integration
//! tests and by its benchmark tool, so it stays lean: one allocation per sent frame, bounded
//! channels, small WebSocket buffers.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ferrim_client::ClientError> {
//! use ferrim_client::{Client, Event, LoginOptions};
//! use std::time::Duration;
//!
//! let opts = LoginOptions::new("org#app", "alice", "TOKEN-alice");
//! let (client, mut events) = Client::connect("ws://127.0.0.1:8080/ws", opts).await?;
//! let ack = client.send_text("bob", "hi bob").await?;
//! println!("server id {}", ack.server_id);
//! while let Some(event) = events.recv().await {
//!     if let Event::Message(m) = event {
//!         println!("{} says {:?}", m.from, m.text());
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Layers:
//! * [`frames`]: encoders for every frame the SDK sends, decoding helpers.
//! * [`Connection`]: one raw WebSocket, for sending odd frames and reading raw replies.
//! * [`Client`] + [`Events`]: the logged-in session. A writer task owns the socket sink
//!   (handles talk to it over a bounded channel); a reader task answers NOTICE with pulls,
//!   acknowledges batches, follows offline sync, completes send acks and reports [`Event`]s.

mod client;
mod connection;
mod error;
mod event;
pub mod frames;
mod options;
mod pull;

pub use client::{ack_result, Client, SendAck};
pub use connection::{interpret_provision_reply, Connection, Session, WsStream};
pub use error::ClientError;
pub use event::{DisconnectReason, Event, Events, Receipt, ReceivedMessage, UnreadQueue};
pub use options::{LoginOptions, TransportOptions};

/// The protobuf types (re-exported from `ferrim-proto`).
pub use ferrim_proto::pb;
/// The WebSocket library, for [`Client::send_ws_message`] and [`Connection::send_ws`].
pub use tokio_tungstenite::tungstenite;
