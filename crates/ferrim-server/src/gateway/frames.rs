//! Builders for the frames the server sends. Each returns a complete `MSync` with only
//! `command` and `payload` set, which is all the SDK reads (spec §1.3, §3.3).

use std::sync::atomic::{AtomicU64, Ordering};

use ferrim_core::clock::now_ms;
use ferrim_core::sessions::KickReason;
use ferrim_proto::pb::{
    m_sync::Command, meta::NameSpace, statistics_body::Operation, status::ErrorCode, CommSyncDl,
    CommUnreadDl, Jid, Logout, MSync, Meta, MetaQueue, Provision, StatisticsBody, Status,
};
use ferrim_proto::Message;

use crate::gateway::inbox::Accepted;

/// The domain every JID of this protocol carries.
pub(crate) const DOMAIN: &str = "easemob.com";

/// A fresh, unique, non-zero id for server-originated metas: a millisecond timestamp in the
/// high bits, strictly increasing within the process. Older SDKs drop metas whose id repeats
/// one of the last 100 they saw (spec §6.2), so ids must never repeat.
pub(crate) fn fresh_id() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let candidate = now_ms() << 22;
    let prev = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(candidate.max(last + 1))
        })
        .expect("the closure never refuses");
    candidate.max(prev + 1)
}

pub(crate) fn envelope(command: Command, payload: &impl Message) -> MSync {
    MSync {
        command: Some(command as i32),
        payload: Some(payload.encode_to_vec()),
        ..Default::default()
    }
}

/// A bare JID `{appKey, name, domain}`.
pub(crate) fn bare_jid(app_key: &str, name: &str) -> Jid {
    Jid {
        app_key: Some(app_key.to_owned()),
        name: Some(name.to_owned()),
        domain: Some(DOMAIN.to_owned()),
        client_resource: None,
    }
}

fn status(code: ErrorCode, reason: Option<&str>) -> Status {
    Status {
        error_code: Some(code as i32),
        reason: reason.map(str::to_owned),
        redirect_info: Vec::new(),
    }
}

/// The successful login reply: `status{errorCode 0}`, the echoed resource and, for expiring
/// tokens, `authToken = {"expires_in": <absolute expiry ms>}` (spec §3.3). No
/// `protocolCompressType`: LZ4 is declined.
pub(crate) fn provision_ok(resource: &str, expires_ms: Option<u64>) -> MSync {
    envelope(
        Command::Provision,
        &Provision {
            status: Some(status(ErrorCode::Ok, None)),
            resource: Some(resource.to_owned()),
            auth_token: expires_ms.map(|ms| format!("{{\"expires_in\":{ms}}}")),
            ..Default::default()
        },
    )
}

/// A refused login: the status the SDK maps to its error type (spec §6.1).
pub(crate) fn provision_error(code: ErrorCode, reason: &str) -> MSync {
    envelope(
        Command::Provision,
        &Provision {
            status: Some(status(code, Some(reason))),
            ..Default::default()
        },
    )
}

/// The UNREAD reply (login and heartbeat): `status{}`, the queues holding messages, and the
/// server time in ms, which the SDK compares with the token expiry (spec §4, §8.4).
pub(crate) fn unread(queues: Vec<MetaQueue>) -> MSync {
    envelope(
        Command::Unread,
        &CommUnreadDl {
            status: Some(Status::default()),
            unread: queues,
            timestamp: Some(now_ms()),
        },
    )
}

/// The acknowledgement of a client meta (spec §8.2, §6.4): `status`, `metaId`, and on
/// success the `serverId` and the time the message was stored.
pub(crate) fn sync_ack(meta_id: u64, result: Result<Accepted, (ErrorCode, String)>) -> MSync {
    let (status, server_id, timestamp, metas) = match result {
        Ok(ok) => {
            // A NOTIFY meta with JSON bytes (an edit's `edit_msg`), which the SDK reads from
            // the ack's first meta.
            let metas = ok
                .notice
                .map(|json| Meta {
                    id: Some(ok.server_id),
                    ns: Some(NameSpace::Notify as i32),
                    payload: Some(json.into_bytes()),
                    ..Default::default()
                })
                .into_iter()
                .collect();
            (
                Status::default(),
                Some(ok.server_id),
                ok.timestamp_ms,
                metas,
            )
        }
        Err((code, reason)) => (status(code, Some(&reason)), None, now_ms(), Vec::new()),
    };
    envelope(
        Command::Sync,
        &CommSyncDl {
            status: Some(status),
            meta_id: Some(meta_id),
            server_id,
            timestamp: Some(timestamp),
            metas,
            ..Default::default()
        },
    )
}

/// The end of a queue: `status{}`, the queue and `isLast: true`, no metas (spec §8.3).
pub(crate) fn queue_end(queue: Jid) -> MSync {
    envelope(
        Command::Sync,
        &CommSyncDl {
            status: Some(Status::default()),
            queue: Some(queue),
            is_last: Some(true),
            ..Default::default()
        },
    )
}

/// A delivered meta's `meta` JSON: whether the device was online when the message was sent.
/// The SDK reports it as the message's `onlineState` (1 online, 0 offline; without it, 3,
/// "not enabled").
pub(crate) fn online_state(online: bool) -> &'static [u8] {
    if online {
        br#"{"is_online":1}"#
    } else {
        br#"{"is_online":0}"#
    }
}

/// The STATISTIC operation a kick is reported with, or `None` for closes the SDK must treat
/// as a network drop (shutdown: it reconnects to the restarted server).
pub(crate) fn kick_operation(reason: &KickReason) -> Option<(Operation, Option<&str>)> {
    match reason {
        KickReason::LoginAnotherDevice { ext } => {
            Some((Operation::UserLoginAnotherDevice, ext.as_deref()))
        }
        // The same device (resource) logged in on a new connection. If the old connection
        // is still alive it belongs to another tab or SDK instance sharing the stored device
        // ID; a quiet close would make it reconnect and evict the newcomer in turn, forever.
        // 206 stops that, as Easemob does ("a second tab kicks the first").
        KickReason::Replaced { ext } => Some((Operation::UserLoginAnotherDevice, ext.as_deref())),
        KickReason::UserRemoved => Some((Operation::UserRemoved, None)),
        KickReason::PasswordChanged => Some((Operation::UserKickedByChangePassword, None)),
        KickReason::KickedByOther => Some((Operation::UserKickedByOtherDevice, None)),
        KickReason::Shutdown => None,
    }
}

/// The kick push (spec §6.2): an unsolicited `CommSyncDL` on the user's own bare JID with one
/// STATISTIC meta from `admin`, `isLast: true` (the one allowed exception: the socket closes
/// right after).
pub(crate) fn kick(app_key: &str, user: &str, operation: Operation, reason: Option<&str>) -> MSync {
    let body = StatisticsBody {
        operation: Some(operation as i32),
        reason: Some(reason.unwrap_or_default().to_owned()),
        ..Default::default()
    };
    let meta = Meta {
        id: Some(fresh_id()),
        from: Some(bare_jid(app_key, "admin")),
        to: Some(bare_jid(app_key, user)),
        timestamp: Some(now_ms()),
        ns: Some(NameSpace::Statistic as i32),
        payload: Some(body.encode_to_vec()),
        ..Default::default()
    };
    envelope(
        Command::Sync,
        &CommSyncDl {
            status: Some(Status::default()),
            metas: vec![meta],
            queue: Some(bare_jid(app_key, user)),
            is_last: Some(true),
            ..Default::default()
        },
    )
}

/// The LOGOUT reply (optional for the SDK, which only logs it).
pub(crate) fn logout_ok() -> MSync {
    envelope(
        Command::Logout,
        &Logout {
            status: Some(Status::default()),
            ..Default::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(frame: &MSync) -> String {
        frame
            .encode_to_vec()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn provision_ok_matches_the_spec_vector() {
        // spec §3.3 minimal success reply
        assert_eq!(
            hex(&provision_ok("webim_web_1", Some(1_767_225_600_000))),
            "40034a30420208006a0b776562696d5f7765625f3192011c7b22657870697265735f696e223a313736373232353630303030307d"
        );
    }

    #[test]
    fn provision_errors_match_the_spec_vectors() {
        assert_eq!(
            hex(&provision_error(ErrorCode::Fail, "Sorry, token expired")),
            "40034a1a421808011214536f7272792c20746f6b656e2065787069726564"
        );
        let too_many = provision_error(ErrorCode::TooManyDevices, "too many devices");
        let p = Provision::decode(too_many.payload.as_deref().unwrap()).unwrap();
        assert_eq!(p.status.unwrap().error_code, Some(13));
    }

    #[test]
    fn never_expiring_tokens_get_no_auth_token() {
        let f = provision_ok("r", None);
        let p = Provision::decode(f.payload.as_deref().unwrap()).unwrap();
        assert!(p.auth_token.is_none());
        assert!(p.protocol_compress_type.is_empty());
    }

    #[test]
    fn unread_has_status_and_timestamp() {
        let f = unread(Vec::new());
        assert_eq!(f.command, Some(1));
        let d = CommUnreadDl::decode(f.payload.as_deref().unwrap()).unwrap();
        assert!(d.status.is_some());
        assert!(d.timestamp.unwrap() > 1_700_000_000_000);
    }

    #[test]
    fn kick_meta_has_from_fresh_id_and_is_last() {
        let f = kick(
            "o#a",
            "alice",
            Operation::UserLoginAnotherDevice,
            Some("ext"),
        );
        let d = CommSyncDl::decode(f.payload.as_deref().unwrap()).unwrap();
        assert!(d.status.is_some());
        assert_eq!(d.is_last, Some(true));
        assert_eq!(d.queue.unwrap().name.as_deref(), Some("alice"));
        let meta = &d.metas[0];
        assert!(meta.id.unwrap() > 0);
        assert_eq!(meta.from.as_ref().unwrap().name.as_deref(), Some("admin"));
        assert_eq!(meta.ns, Some(0));
        let body = StatisticsBody::decode(meta.payload.as_deref().unwrap()).unwrap();
        assert_eq!(body.operation, Some(2));
        assert_eq!(body.reason.as_deref(), Some("ext"));
    }

    #[test]
    fn fresh_ids_are_unique_and_increasing() {
        let a = fresh_id();
        let b = fresh_id();
        assert!(b > a && a > 0);
    }
}
