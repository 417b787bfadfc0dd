//! Protobuf types of the Easemob msync client protocol (package `easemob.pb`).
//!
//! Generated at build time from `proto/msync.proto`, the project's copy of the schema the
//! official Web SDK embeds. Field names follow prost's conventions (snake_case).

#![allow(clippy::all, missing_docs)]

/// All messages and enums of package `easemob.pb`.
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/easemob.pb.rs"));
}

pub use pb::*;
pub use prost::Message;
