//! The client's error type.

use tokio_tungstenite::tungstenite;

/// Everything that can go wrong in the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL could not be used (`ws://host[:port]/path` only; `wss` is not supported).
    #[error("invalid url {url:?}: {detail}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        detail: String,
    },
    /// Name resolution, bind or TCP connect failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The WebSocket layer failed (handshake, framing, closed socket).
    #[error("websocket error: {0}")]
    WebSocket(#[from] Box<tungstenite::Error>),
    /// A frame could not be decoded as the expected protobuf message.
    #[error("protobuf decode error: {0}")]
    Decode(#[from] prost::DecodeError),
    /// A deadline passed; the text names what was awaited.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The server answered PROVISION with a non-OK `status` (spec §6.1).
    #[error("login refused: errorCode {code}, reason {reason:?}")]
    LoginRefused {
        /// `Status.errorCode` (e.g. 1 FAIL, 13 TOO_MANY_DEVICES).
        code: i32,
        /// `Status.reason` (empty when absent).
        reason: String,
    },
    /// The server acknowledged a send with a non-OK `status` (spec §6.4).
    #[error("send refused: errorCode {code}, reason {reason:?}")]
    SendRefused {
        /// `Status.errorCode` (e.g. 15 USER_MUTED, 1 FAIL).
        code: i32,
        /// `Status.reason` (empty when absent).
        reason: String,
    },
    /// No acknowledgement for the meta within the send timeout (the SDK's 512).
    #[error("no acknowledgement for meta {meta_id} in time")]
    SendTimeout {
        /// The client meta id that was sent.
        meta_id: u64,
    },
    /// A send with this meta id is already waiting for its acknowledgement.
    #[error("meta id {0} is already awaiting an acknowledgement")]
    DuplicateMetaId(u64),
    /// The server broke a rule of the protocol that the SDK depends on.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The connection is closed (or closed while waiting).
    #[error("connection closed")]
    Disconnected,
}

impl From<tungstenite::Error> for ClientError {
    fn from(e: tungstenite::Error) -> Self {
        ClientError::WebSocket(Box::new(e))
    }
}
