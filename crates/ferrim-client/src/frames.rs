//! Encoders for the frames the Web SDK sends, and small decoding helpers for server frames.
//!
//! Every function here returns one complete WebSocket binary message (one `MSync`, no length
//! prefix). The hot-path frames (text send, pull/ack, UNREAD, statistics) are written by hand
//! into a single exactly-sized buffer, in the same field order as the SDK's protobufjs
//! encoder, so a frame costs one allocation and is byte-identical to what the SDK sends for
//! the same ids (see the spec §12 vectors in the tests below). PROVISION and LOGOUT are rare
//! and go through the prost types.

use ferrim_proto::pb::{
    m_sync::Command, message_body, meta::NameSpace, provision::CompressType, Jid, Logout, MSync,
    MessageBody, Meta, Provision,
};
use ferrim_proto::Message as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::options::LoginOptions;

/// `JID.domain` the SDK uses for users (`"conference.easemob.com"` is for groups and rooms).
pub const DOMAIN: &str = "easemob.com";
/// `Provision.version`: the Web SDK version this client imitates.
pub const SDK_VERSION: &str = "4.21.1";
/// `Provision.actionVersion` sent by that SDK.
pub const ACTION_VERSION: &str = "v5.2";
/// `Logout.reason` of a user-initiated logout.
pub const LOGOUT_REASON: &str = "inner:logout";
/// `Provision.osType` the Web SDK sends by default (`OS_OTHER`).
pub const OS_OTHER: i32 = 16;
/// `Provision.osType` for a custom platform (`OS_CUSTOM`, with `osCustomValue`).
pub const OS_CUSTOM: i32 = 5;

/// Milliseconds since the Unix epoch (wall clock).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

static TRACE_SEQ: AtomicU64 = AtomicU64::new(0);

/// A fresh `MSync.traceId` shaped like the SDK's snowflake: `ms << 22 | 1 << 12 | seq`.
/// Informational only; servers must not rely on it.
pub fn trace_id() -> u64 {
    let seq = TRACE_SEQ.fetch_add(1, Ordering::Relaxed) & 0xfff;
    (now_ms() << 22) | (1 << 12) | seq
}

/// A borrowed JID, used to encode `Meta.to` without building a [`Jid`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JidRef<'a> {
    /// `"org#app"`.
    pub app_key: &'a str,
    /// User name.
    pub name: &'a str,
    /// Usually [`DOMAIN`].
    pub domain: &'a str,
    /// `clientResource`, set only when addressing one device (`"user/resource"`).
    pub resource: Option<&'a str>,
}

impl<'a> JidRef<'a> {
    /// Parses `"user"` or `"user/resource"` into a user JID of `app_key` in [`DOMAIN`].
    pub fn user(app_key: &'a str, to: &'a str) -> Self {
        let (name, resource) = match to.split_once('/') {
            Some((name, res)) => (name, Some(res)),
            None => (to, None),
        };
        JidRef {
            app_key,
            name,
            domain: DOMAIN,
            resource,
        }
    }

    /// An owned copy.
    pub fn to_jid(&self) -> Jid {
        Jid {
            app_key: Some(self.app_key.to_owned()),
            name: Some(self.name.to_owned()),
            domain: Some(self.domain.to_owned()),
            client_resource: self.resource.map(str::to_owned),
        }
    }

    fn encoded_len(&self) -> usize {
        wire::str_len(1, self.app_key)
            + wire::str_len(2, self.name)
            + wire::str_len(3, self.domain)
            + self.resource.map_or(0, |r| wire::str_len(4, r))
    }

    fn encode(&self, buf: &mut Vec<u8>) {
        wire::put_str(buf, 1, self.app_key);
        wire::put_str(buf, 2, self.name);
        wire::put_str(buf, 3, self.domain);
        if let Some(r) = self.resource {
            wire::put_str(buf, 4, r);
        }
    }
}

/// Minimal protobuf writer: varints, keys and length-delimited fields into a `Vec<u8>`.
mod wire {
    pub const VARINT: u32 = 0;
    pub const LEN: u32 = 2;

    pub fn varint_len(v: u64) -> usize {
        (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
    }

    pub fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        buf.push(v as u8);
    }

    pub fn key_len(tag: u32) -> usize {
        varint_len(u64::from(tag << 3))
    }

    pub fn put_key(buf: &mut Vec<u8>, tag: u32, wire_type: u32) {
        put_varint(buf, u64::from((tag << 3) | wire_type));
    }

    /// Length of a varint field (`uint64`, `bool`, non-negative enum).
    pub fn uint_len(tag: u32, v: u64) -> usize {
        key_len(tag) + varint_len(v)
    }

    pub fn put_uint(buf: &mut Vec<u8>, tag: u32, v: u64) {
        put_key(buf, tag, VARINT);
        put_varint(buf, v);
    }

    /// Length of a length-delimited field whose body is `n` bytes.
    pub fn ld_len(tag: u32, n: usize) -> usize {
        key_len(tag) + varint_len(n as u64) + n
    }

    pub fn put_ld_head(buf: &mut Vec<u8>, tag: u32, n: usize) {
        put_key(buf, tag, LEN);
        put_varint(buf, n as u64);
    }

    pub fn str_len(tag: u32, s: &str) -> usize {
        ld_len(tag, s.len())
    }

    pub fn put_str(buf: &mut Vec<u8>, tag: u32, s: &str) {
        put_ld_head(buf, tag, s.len());
        buf.extend_from_slice(s.as_bytes());
    }
}

/// Appends a payload of a known length to a frame being written.
type PayloadWriter<'a> = (usize, &'a mut dyn FnMut(&mut Vec<u8>));

/// Writes an uplink envelope `MSync{version:0, command, payload, encryptType:[0], traceId}`
/// (field order 1, 8, 9, 11, 20 as protobufjs writes it). `write` must append exactly
/// `payload_len` bytes.
fn envelope(command: Command, trace_id: u64, payload: Option<PayloadWriter<'_>>) -> Vec<u8> {
    let command = command as u64;
    let mut len = wire::uint_len(1, 0)
        + wire::uint_len(8, command)
        + wire::uint_len(11, 0)
        + wire::uint_len(20, trace_id);
    if let Some((n, _)) = &payload {
        len += wire::ld_len(9, *n);
    }
    let mut buf = Vec::with_capacity(len);
    wire::put_uint(&mut buf, 1, 0);
    wire::put_uint(&mut buf, 8, command);
    if let Some((n, write)) = payload {
        wire::put_ld_head(&mut buf, 9, n);
        write(&mut buf);
    }
    wire::put_uint(&mut buf, 11, 0);
    wire::put_uint(&mut buf, 20, trace_id);
    debug_assert_eq!(buf.len(), len);
    buf
}

/// `SYNC` + `CommSyncUL{meta: Meta{id, to, ns, payload, routetype}}` where the payload is
/// written by `write_body` (exactly `body_len` bytes).
fn meta_frame_with(
    trace_id: u64,
    meta_id: u64,
    to: &JidRef<'_>,
    ns: NameSpace,
    routetype: i32,
    body_len: usize,
    write_body: &mut dyn FnMut(&mut Vec<u8>),
) -> Vec<u8> {
    let to_len = to.encoded_len();
    let meta_len = wire::uint_len(1, meta_id)
        + wire::ld_len(3, to_len)
        + wire::uint_len(5, ns as u64)
        + wire::ld_len(6, body_len)
        + wire::uint_len(7, routetype as u64);
    let ul_len = wire::ld_len(1, meta_len);
    envelope(
        Command::Sync,
        trace_id,
        Some((ul_len, &mut |buf: &mut Vec<u8>| {
            wire::put_ld_head(buf, 1, meta_len);
            wire::put_uint(buf, 1, meta_id);
            wire::put_ld_head(buf, 3, to_len);
            to.encode(buf);
            wire::put_uint(buf, 5, ns as u64);
            wire::put_ld_head(buf, 6, body_len);
            write_body(buf);
            wire::put_uint(buf, 7, routetype as u64);
        })),
    )
}

/// The text-message frame of `conn.send()` for a one-to-one `txt` message (spec §8.1):
/// `Meta{id, to, ns:CHAT, payload: MessageBody{CHAT, from{name}, to{name}, [TEXT]}, routetype:0}`.
///
/// `to` may be `"user/resource"`: then `Meta.to.clientResource` is set and
/// `MessageBody.to.name` is the bare user.
pub fn text_frame(
    trace_id: u64,
    meta_id: u64,
    app_key: &str,
    from: &str,
    to: &str,
    text: &str,
) -> Vec<u8> {
    let to = JidRef::user(app_key, to);
    let content_len = wire::uint_len(1, 0) + wire::str_len(2, text);
    let from_len = wire::str_len(2, from);
    let to_name_len = wire::str_len(2, to.name);
    let body_len = wire::uint_len(1, message_body::Type::Chat as u64)
        + wire::ld_len(2, from_len)
        + wire::ld_len(3, to_name_len)
        + wire::ld_len(4, content_len);
    meta_frame_with(
        trace_id,
        meta_id,
        &to,
        NameSpace::Chat,
        0,
        body_len,
        &mut |buf: &mut Vec<u8>| {
            wire::put_uint(buf, 1, message_body::Type::Chat as u64);
            wire::put_ld_head(buf, 2, from_len);
            wire::put_str(buf, 2, from);
            wire::put_ld_head(buf, 3, to_name_len);
            wire::put_str(buf, 2, to.name);
            wire::put_ld_head(buf, 4, content_len);
            wire::put_uint(buf, 1, 0);
            wire::put_str(buf, 2, text);
        },
    )
}

/// A `CHAT`-namespace meta carrying an arbitrary [`MessageBody`] (custom messages, receipts,
/// recall, ...), `routetype` 0, addressed to `to` (`"user"` or `"user/resource"`).
pub fn body_frame(
    trace_id: u64,
    meta_id: u64,
    app_key: &str,
    to: &str,
    body: &MessageBody,
) -> Vec<u8> {
    let to = JidRef::user(app_key, to);
    let body_len = body.encoded_len();
    meta_frame_with(
        trace_id,
        meta_id,
        &to,
        NameSpace::Chat,
        0,
        body_len,
        &mut |buf: &mut Vec<u8>| body.encode(buf).expect("Vec grows on demand"),
    )
}

/// `SYNC` + `CommSyncUL{meta}` for a fully caller-built [`Meta`].
pub fn meta_frame(trace_id: u64, meta: &Meta) -> Vec<u8> {
    let meta_len = meta.encoded_len();
    envelope(
        Command::Sync,
        trace_id,
        Some((wire::ld_len(1, meta_len), &mut |buf: &mut Vec<u8>| {
            wire::put_ld_head(buf, 1, meta_len);
            meta.encode(buf).expect("Vec grows on demand");
        })),
    )
}

/// Pull (`key` = `None`) or ack-and-continue (`key` = the last `nextKey`) of a queue:
/// `SYNC` + `CommSyncUL{key?, queue}` (spec §8.3 steps 2 and 4).
pub fn pull_frame(trace_id: u64, queue: &Jid, key: Option<u64>) -> Vec<u8> {
    let queue_len = queue.encoded_len();
    let ul_len = key.map_or(0, |k| wire::uint_len(2, k)) + wire::ld_len(3, queue_len);
    envelope(
        Command::Sync,
        trace_id,
        Some((ul_len, &mut |buf: &mut Vec<u8>| {
            if let Some(k) = key {
                wire::put_uint(buf, 2, k);
            }
            wire::put_ld_head(buf, 3, queue_len);
            queue.encode(buf).expect("Vec grows on demand");
        })),
    )
}

/// `UNREAD` without payload: sent after login and as the heartbeat (spec §3.5, §5.1).
pub fn unread_frame(trace_id: u64) -> Vec<u8> {
    envelope(Command::Unread, trace_id, None)
}

/// The statistics `SYNC` sent after login and after each `CommUnreadDL` (spec §3.5):
/// `CommSyncUL{meta{id: meta_id (the SDK uses Date.now()), ns:STATISTIC,
/// payload: StatisticsBody{operation: INFORMATION}}}`.
pub fn statistics_frame(trace_id: u64, meta_id: u64) -> Vec<u8> {
    // StatisticsBody{operation:0} is `08 00`.
    let meta_len = wire::uint_len(1, meta_id) + wire::uint_len(5, 0) + wire::ld_len(6, 2);
    envelope(
        Command::Sync,
        trace_id,
        Some((wire::ld_len(1, meta_len), &mut |buf: &mut Vec<u8>| {
            wire::put_ld_head(buf, 1, meta_len);
            wire::put_uint(buf, 1, meta_id);
            wire::put_uint(buf, 5, NameSpace::Statistic as u64);
            wire::put_ld_head(buf, 6, 2);
            wire::put_uint(buf, 1, 0);
        })),
    )
}

/// The login JID `{appKey, name, domain:"easemob.com", clientResource}` used as `MSync.guid`.
pub fn guid(app_key: &str, username: &str, resource: &str) -> Jid {
    Jid {
        app_key: Some(app_key.to_owned()),
        name: Some(username.to_owned()),
        domain: Some(DOMAIN.to_owned()),
        client_resource: Some(resource.to_owned()),
    }
}

/// The `Provision` payload the SDK sends for `opts` (spec §3.2).
pub fn provision_payload(opts: &LoginOptions, session_id: &str) -> Provision {
    let (os_type, os_custom_value) = match opts.custom_os {
        Some(n) => (OS_CUSTOM, Some(n)),
        None => (opts.os_type, None),
    };
    Provision {
        os_type: Some(os_type),
        version: Some(SDK_VERSION.to_owned()),
        compress_type: vec![CompressType::CompressNone as i32],
        encrypt_type: vec![0],
        device_uuid: Some(opts.device_uuid()),
        device_name: Some(opts.device_name.clone()),
        resource: Some(opts.resource.clone()),
        action_version: Some(ACTION_VERSION.to_owned()),
        auth_token: Some(format!(r#"{{"token":"$t${}"}}"#, opts.token)),
        os_custom_value,
        session_id: Some(session_id.to_owned()),
        reason: opts.login_ext.clone(),
        protocol_compress_type: if opts.offer_lz4 {
            vec![CompressType::CompressLz4 as i32]
        } else {
            Vec::new()
        },
        ..Provision::default()
    }
}

/// The complete PROVISION frame (spec §3.2): guid, `auth = "$t$" + token`, `deviceId 0`.
pub fn provision_frame(trace_id: u64, opts: &LoginOptions, session_id: &str) -> Vec<u8> {
    MSync {
        version: Some(0),
        guid: Some(guid(&opts.app_key, &opts.username, &opts.resource)),
        auth: Some(format!("$t${}", opts.token)),
        command: Some(Command::Provision as i32),
        payload: Some(provision_payload(opts, session_id).encode_to_vec()),
        device_id: Some(0),
        encrypt_type: vec![0],
        trace_id: Some(trace_id),
        ..MSync::default()
    }
    .encode_to_vec()
}

/// The LOGOUT frame (spec §5.3): `guid`, `auth`, `Logout{sessionId, reason}`.
pub fn logout_frame(
    trace_id: u64,
    guid: &Jid,
    token: &str,
    session_id: &str,
    reason: &str,
) -> Vec<u8> {
    MSync {
        version: Some(0),
        guid: Some(guid.clone()),
        auth: Some(format!("$t${token}")),
        command: Some(Command::Logout as i32),
        payload: Some(
            Logout {
                session_id: Some(session_id.to_owned()),
                reason: Some(reason.to_owned()),
                status: None,
            }
            .encode_to_vec(),
        ),
        device_id: Some(0),
        encrypt_type: vec![0],
        trace_id: Some(trace_id),
        ..MSync::default()
    }
    .encode_to_vec()
}

/// SDK error type for a kick (`StatisticsBody.operation` 1–4, spec §6.2); `None` otherwise.
pub fn kick_code(operation: i32) -> Option<u16> {
    match operation {
        1 => Some(207),
        2 => Some(206),
        3 => Some(216),
        4 => Some(217),
        _ => None,
    }
}

/// Parses `Provision.authToken` of a login reply (spec §3.3): absent or empty → `Ok(None)`;
/// JSON with a numeric `expires_in` (epoch ms) → `Ok(Some)`; anything else is what makes the
/// SDK hang or expire immediately → `Err`.
pub fn parse_expires_in(auth_token: Option<&str>) -> Result<Option<u64>, String> {
    let Some(text) = auth_token.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("authToken is not JSON ({e}): {text:?}"))?;
    match value.get("expires_in").and_then(|v| v.as_f64()) {
        Some(ms) if ms >= 0.0 => Ok(Some(ms as u64)),
        _ => Err(format!(
            "authToken has no numeric expires_in (the SDK expires at once): {text:?}"
        )),
    }
}

/// The SDK's `onlineState` from `Meta.meta` JSON (spec §8.5): `is_online` 0 → 0, 1 → 1,
/// other value → 2, no meta or no `is_online` → 3.
pub fn online_state(meta_json: Option<&[u8]>) -> u8 {
    let Some(bytes) = meta_json else { return 3 };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return 3;
    };
    match value.get("is_online") {
        None => 3,
        Some(v) => match v.as_i64() {
            Some(0) => 0,
            Some(1) => 1,
            _ => 2,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrim_proto::pb::{CommSyncUl, StatisticsBody};

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // Client → server frames captured from the real SDK (spec §12).
    const PROVISION: &str = "080012360a076f7267236170701205616c6963651a0b656173656d6f622e636f6d2217776562696d5f7765625f31
        3739353633373138323636321a0e247424544f4b454e2d616c69636540034a7a08101206342e32312e3128003000
        4a117765625f313739353633373138323636326205776562696d6a17776562696d5f7765625f3137393536333731
        38323636328a010476352e3292011a7b22746f6b656e223a22247424544f4b454e2d616c696365227da2010e3137
        39353633373138323636353ab201010250005800a00180a080968388c5c268";
    const UNREAD: &str = "080040015800a00180a080b08388c5c268";
    const STATISTICS: &str = "080040004a0f0a0d08da81c4a2a1342800320208005800a00180a080b68388c5c268";
    const TEXT: &str = "080040004a4a0a4808e2c9f5ebb80f1a1b0a076f7267236170701203626f621a0b656173656d6f622e636f6d2801321e080112071205616c6963651a051203626f62220a08001206686920626f6238005800a00180a080be8388c5c268";
    const LOGOUT: &str = "080012360a076f7267236170701205616c6963651a0b656173656d6f622e636f6d2217776562696d5f7765625f313739353633373138323636321a0e247424544f4b454e2d616c69636540044a1e0a0e313739353633373138323636353a120c696e6e65723a6c6f676f757450005800a00180a080d08b88c5c268";

    fn decode(bytes: &[u8]) -> MSync {
        MSync::decode(bytes).unwrap()
    }

    #[test]
    fn varint_lengths() {
        for v in [
            0u64,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut buf = Vec::new();
            wire::put_varint(&mut buf, v);
            assert_eq!(buf.len(), wire::varint_len(v), "value {v}");
        }
    }

    #[test]
    fn provision_frame_matches_captured_sdk_bytes() {
        let captured = hex(PROVISION);
        let sdk = decode(&captured);
        let prov = Provision::decode(sdk.payload.as_deref().unwrap()).unwrap();
        assert_eq!(prov.resource.as_deref(), Some("webim_web_1795637182662"));
        assert_eq!(prov.device_uuid.as_deref(), Some("web_1795637182662"));
        assert_eq!(prov.protocol_compress_type, vec![2]);

        let mut opts = LoginOptions::new("org#app", "alice", "TOKEN-alice");
        opts.resource = "webim_web_1795637182662".into();
        let ours = provision_frame(sdk.trace_id.unwrap(), &opts, "1795637182665:");
        assert_eq!(decode(&ours), sdk);
        assert_eq!(ours, captured, "byte-identical to the SDK frame");
    }

    #[test]
    fn provision_payload_custom_os_and_ext() {
        let mut opts = LoginOptions::new("org#app", "alice", "T");
        opts.resource = "res1".into();
        opts.custom_os = Some(42);
        opts.login_ext = Some("ext".into());
        opts.offer_lz4 = false;
        let p = provision_payload(&opts, "1:");
        assert_eq!(p.os_type, Some(OS_CUSTOM));
        assert_eq!(p.os_custom_value, Some(42));
        assert_eq!(p.reason.as_deref(), Some("ext"));
        assert_eq!(p.device_uuid.as_deref(), Some("res1"));
        assert!(p.protocol_compress_type.is_empty());
        assert_eq!(p.auth_token.as_deref(), Some(r#"{"token":"$t$T"}"#));
    }

    #[test]
    fn unread_frame_matches_captured() {
        let captured = hex(UNREAD);
        let trace = decode(&captured).trace_id.unwrap();
        assert_eq!(unread_frame(trace), captured);
    }

    #[test]
    fn statistics_frame_matches_captured() {
        let captured = hex(STATISTICS);
        let sdk = decode(&captured);
        let ul = CommSyncUl::decode(sdk.payload.as_deref().unwrap()).unwrap();
        let meta = ul.meta.unwrap();
        let stats = StatisticsBody::decode(meta.payload.as_deref().unwrap()).unwrap();
        assert_eq!(stats.operation, Some(0));
        assert_eq!(
            statistics_frame(sdk.trace_id.unwrap(), meta.id.unwrap()),
            captured
        );
    }

    #[test]
    fn text_frame_matches_captured() {
        let captured = hex(TEXT);
        let sdk = decode(&captured);
        let ul = CommSyncUl::decode(sdk.payload.as_deref().unwrap()).unwrap();
        let meta = ul.meta.unwrap();
        assert_eq!(meta.id, Some(530_654_782_690));
        let ours = text_frame(
            sdk.trace_id.unwrap(),
            meta.id.unwrap(),
            "org#app",
            "alice",
            "bob",
            "hi bob",
        );
        assert_eq!(ours, captured);
    }

    #[test]
    fn text_frame_to_resource_sets_meta_to_resource_only() {
        let frame = text_frame(1, 7, "org#app", "alice", "bob/phone", "x");
        let ul = CommSyncUl::decode(decode(&frame).payload.as_deref().unwrap()).unwrap();
        let meta = ul.meta.unwrap();
        let to = meta.to.unwrap();
        assert_eq!(to.name.as_deref(), Some("bob"));
        assert_eq!(to.client_resource.as_deref(), Some("phone"));
        let body = MessageBody::decode(meta.payload.as_deref().unwrap()).unwrap();
        assert_eq!(body.to.unwrap().name.as_deref(), Some("bob"));
        assert_eq!(body.contents[0].text.as_deref(), Some("x"));
    }

    #[test]
    fn body_frame_equals_text_frame_for_the_same_body() {
        let body = MessageBody {
            r#type: Some(message_body::Type::Chat as i32),
            from: Some(Jid {
                name: Some("alice".into()),
                ..Jid::default()
            }),
            to: Some(Jid {
                name: Some("bob".into()),
                ..Jid::default()
            }),
            contents: vec![message_body::Content {
                r#type: Some(0),
                text: Some("hi bob".into()),
                ..Default::default()
            }],
            ..MessageBody::default()
        };
        let captured = hex(TEXT);
        let sdk = decode(&captured);
        let ours = body_frame(
            sdk.trace_id.unwrap(),
            530_654_782_690,
            "org#app",
            "bob",
            &body,
        );
        assert_eq!(ours, captured);

        // And the generic meta path encodes the same message.
        let ul = CommSyncUl::decode(sdk.payload.as_deref().unwrap()).unwrap();
        assert_eq!(
            meta_frame(sdk.trace_id.unwrap(), &ul.meta.unwrap()),
            captured
        );
    }

    #[test]
    fn logout_frame_matches_captured() {
        let captured = hex(LOGOUT);
        let sdk = decode(&captured);
        let ours = logout_frame(
            sdk.trace_id.unwrap(),
            &guid("org#app", "alice", "webim_web_1795637182662"),
            "TOKEN-alice",
            "1795637182665:",
            LOGOUT_REASON,
        );
        assert_eq!(ours, captured);
    }

    #[test]
    fn pull_and_ack_frames() {
        let bob = JidRef::user("org#app", "bob").to_jid();
        let pull = decode(&pull_frame(5, &bob, None));
        assert_eq!(pull.command, Some(Command::Sync as i32));
        let ul = CommSyncUl::decode(pull.payload.as_deref().unwrap()).unwrap();
        assert_eq!(ul.queue.as_ref(), Some(&bob));
        assert_eq!(ul.key, None);
        assert_eq!(ul.meta, None);

        let ack = decode(&pull_frame(5, &bob, Some(1_234_567_890_123_456_790)));
        let ul = CommSyncUl::decode(ack.payload.as_deref().unwrap()).unwrap();
        assert_eq!(ul.key, Some(1_234_567_890_123_456_790));
        assert_eq!(ul.queue, Some(bob));
    }

    #[test]
    fn trace_ids_look_like_sdk_snowflakes() {
        let a = trace_id();
        let b = trace_id();
        assert_ne!(a, b);
        assert_eq!(a & (1 << 12), 1 << 12);
        assert!((a >> 22).abs_diff(now_ms()) < 60_000);
        // The captured UNREAD's trace id has the same shape.
        let sdk = decode(&hex(UNREAD)).trace_id.unwrap();
        assert_eq!(sdk & (1 << 12), 1 << 12);
    }

    #[test]
    fn expires_in_parsing() {
        assert_eq!(parse_expires_in(None), Ok(None));
        assert_eq!(parse_expires_in(Some("")), Ok(None));
        assert_eq!(
            parse_expires_in(Some(r#"{"expires_in":1767225600000}"#)),
            Ok(Some(1_767_225_600_000))
        );
        assert!(parse_expires_in(Some("{}")).is_err());
        assert!(parse_expires_in(Some("not json")).is_err());
        assert!(parse_expires_in(Some(r#"{"expires_in":"soon"}"#)).is_err());
    }

    #[test]
    fn kick_codes_and_online_state() {
        assert_eq!(kick_code(0), None);
        assert_eq!(kick_code(1), Some(207));
        assert_eq!(kick_code(2), Some(206));
        assert_eq!(kick_code(3), Some(216));
        assert_eq!(kick_code(4), Some(217));
        assert_eq!(kick_code(5), None);
        assert_eq!(online_state(None), 3);
        assert_eq!(online_state(Some(br#"{"is_online":1}"#)), 1);
        assert_eq!(online_state(Some(br#"{"is_online":0}"#)), 0);
        assert_eq!(online_state(Some(br#"{"is_online":7}"#)), 2);
        assert_eq!(online_state(Some(br#"{"x":1}"#)), 3);
    }
}
