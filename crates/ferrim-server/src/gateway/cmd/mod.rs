//! One file per msync command the client sends (spec §1.3). Each has an `apply` that runs it
//! against the session and says whether the connection goes on.

pub(crate) mod logout;
pub(crate) mod provision;
pub(crate) mod sync;
pub(crate) mod unread;
