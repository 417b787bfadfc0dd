//! Translation between stored messages and their two wire forms: msync `Meta`/`MessageBody`
//! (the gateway, history) and Easemob's REST JSON (REST sending, conversation listing).
//! The domain stores the `MessageBody` bytes opaquely; only this module knows their shape.

use ferrim_core::messaging::{MessageKind, StoredMessage};
use ferrim_proto::pb::{self, message_body, meta, Jid, KeyValue, MessageBody, Meta};
use prost::Message as _;
use serde_json::{json, Map, Value};

/// Domain part of every user JID.
pub const DOMAIN: &str = "easemob.com";

/// A user JID.
pub fn jid(app_key: &str, name: &str, resource: Option<&str>) -> Jid {
    Jid {
        app_key: Some(app_key.to_owned()),
        name: Some(name.to_owned()),
        domain: Some(DOMAIN.to_owned()),
        client_resource: resource.filter(|r| !r.is_empty()).map(str::to_owned),
    }
}

/// The msync meta a device receives for a stored message.
pub fn meta_of(app_key: &str, m: &StoredMessage) -> Meta {
    Meta {
        id: Some(m.id),
        from: Some(jid(app_key, m.from.name.as_str(), Some(&m.from_resource))),
        // The SDK shows `to` as `bob/res` for a message sent to one device.
        to: Some(jid(app_key, m.to.name.as_str(), m.to_resource.as_deref())),
        timestamp: Some(m.timestamp_ms),
        ns: Some(if m.kind == MessageKind::Notice {
            meta::NameSpace::Notify as i32
        } else {
            meta::NameSpace::Chat as i32
        }),
        payload: Some(m.payload.clone()),
        ext: if m.kind == MessageKind::Signal {
            recall_ext(&m.payload)
        } else {
            Vec::new()
        },
        ..Default::default()
    }
}

/// The NOTIFY payload that tells a user's other devices that one of them (`resource`) deleted
/// the one-to-one conversation with `peer`; the SDK fires `onMultiDeviceEvent` with
/// `operation: "deleteConversation"` on every device but that one (spec §7).
pub fn conversation_deleted_notice(user: &str, resource: &str, peer: &str, now_ms: u64) -> Vec<u8> {
    serde_json::json!({
        "type": "conv",
        "data": {"op": "del", "id": peer, "type": "chat", "ts": now_ms, "res": resource, "from": user},
    })
    .to_string()
    .into_bytes()
}

/// A recall's `Meta.ext` (the SDK's `recallMessageExtensionInfo`) travels stored in its
/// body's otherwise unused `ext` (see [`seal_recall_ext`]) and is delivered in `Meta.ext`,
/// where the SDK reads it.
fn recall_ext(payload: &[u8]) -> Vec<KeyValue> {
    match MessageBody::decode(payload) {
        Ok(body) if body.r#type == Some(message_body::Type::Recall as i32) => body.ext,
        _ => Vec::new(),
    }
}

/// Longest device resource accepted (a Web SDK resource is ~25 bytes).
pub const MAX_RESOURCE_LEN: usize = 128;

/// Whether `resource` could name a device: what a login accepts, and so all a send to one
/// device or a deleting device's `?resource=` may name.
pub fn is_device_resource(resource: &str) -> bool {
    resource.len() <= MAX_RESOURCE_LEN
        && !resource.contains('/')
        && !resource.chars().any(char::is_control)
}

/// Most times one message may be edited (Easemob's default).
pub const MAX_EDITS: u64 = 10;

/// An accepted edit: what the edit carries and what the original becomes.
pub struct Edit {
    /// `{"edit_msg": {...}}`: in the edit's body `meta` and in the sender's ack (a NOTIFY
    /// meta), where the SDK reads who sent the original, when, and the edit count.
    pub notice: String,
    /// The original's new payload: the edited contents (and ext, for `BODY_AND_EXT`), with
    /// the same `meta`, which history readers turn into `modifiedInfo`.
    pub original_payload: Vec<u8>,
}

/// Applies an `EDIT` body to the original message it names (already checked to be the
/// editor's own chat message); `Err` carries the refusal reason.
pub fn edit(
    body: &mut MessageBody,
    original: &StoredMessage,
    operator: &str,
    now_ms: u64,
) -> Result<Edit, &'static str> {
    use message_body::content::Type as ContentType;
    let Ok(mut before) = MessageBody::decode(original.payload.as_slice()) else {
        return Err("Sorry, edit fail");
    };
    let kind_of = |b: &MessageBody| b.contents.first().map(|c| c.r#type.unwrap_or(0));
    let editable = [ContentType::Text as i32, ContentType::Custom as i32];
    match (kind_of(&before), kind_of(body)) {
        (Some(was), Some(now)) if was == now && editable.contains(&was) => {}
        _ => return Err("Sorry, format is incorrect"),
    }
    let count = before
        .meta
        .as_deref()
        .and_then(|m| serde_json::from_str::<Value>(m).ok())
        .and_then(|m| m["edit_msg"]["count"].as_u64())
        .unwrap_or(0);
    if count >= MAX_EDITS {
        return Err("Sorry, edit limit reached");
    }
    let notice = json!({"edit_msg": {
        "sender": original.from.name.as_str(),
        "send_time": original.timestamp_ms,
        "chat_type": "chat:user",
        "count": count + 1,
        "operator": operator,
        "edit_time": now_ms,
    }})
    .to_string();
    body.meta = Some(notice.clone());
    before.contents.clone_from(&body.contents);
    if body.edit_scope == Some(message_body::EditScope::BodyAndExt as i32) {
        before.ext.clone_from(&body.ext);
    }
    before.meta = Some(notice.clone());
    Ok(Edit {
        notice,
        original_payload: before.encode_to_vec(),
    })
}

/// Keeps a recall's `Meta.ext` in its body for delivery (see [`recall_ext`]).
pub fn seal_recall_ext(body: &mut MessageBody, meta_ext: Vec<KeyValue>) {
    if body.r#type == Some(message_body::Type::Recall as i32) {
        body.ext = meta_ext;
    }
}

/// Whether a message body is chat (listed in history) or a signal (receipt, recall, …).
pub fn kind_of(body: &MessageBody) -> MessageKind {
    use message_body::Type;
    match body.r#type.and_then(|t| Type::try_from(t).ok()) {
        Some(Type::ChannelAck) => MessageKind::ConversationRead,
        Some(Type::ReadAck | Type::DeliverAck | Type::Recall | Type::Edit) => MessageKind::Signal,
        _ => MessageKind::Chat,
    }
}

/// The SDK's name for a stored body's message type (`txt`, `img`, `loc`, `custom`, ...), as
/// its history filter `msgTypes` names them; `""` for a body that does not decode.
pub fn sdk_type_of(payload: &[u8]) -> &'static str {
    use message_body::content::Type;
    let Ok(body) = MessageBody::decode(payload) else {
        return "";
    };
    let kind = body.contents.first().map_or(0, |c| c.r#type.unwrap_or(0));
    match Type::try_from(kind) {
        Ok(Type::Text) => "txt",
        Ok(Type::Image) => "img",
        Ok(Type::Video) => "video",
        Ok(Type::Location) => "loc",
        Ok(Type::Voice) => "audio",
        Ok(Type::File) => "file",
        Ok(Type::Command) => "cmd",
        Ok(Type::Custom) => "custom",
        Ok(Type::Combine) => "combine",
        Err(_) => "",
    }
}

/// The earlier message a body acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Recall(u64),
    Edit(u64),
}

/// Which message a recall or an edit names; `None` for every other body.
pub fn target_of(body: &MessageBody) -> Option<Target> {
    use message_body::Type;
    match body.r#type.and_then(|t| Type::try_from(t).ok()) {
        Some(Type::Recall) => Some(Target::Recall(body.ack_message_id.unwrap_or(0))),
        Some(Type::Edit) => Some(Target::Edit(body.edit_message_id.unwrap_or(0))),
        _ => None,
    }
}

/// Why a client's body would break the receiving SDK, which decodes every message of a
/// batch in one go: a chat body without content (it reads `contents[0]`), or a value it
/// passes to `JSON.parse` that is not JSON (JSON_STRING key-values, `meta`, the first
/// `ext` of a read receipt). One such message would cost the receiver the whole batch's
/// `onMessage` (spec §8.5, §1.2).
pub fn check_body(body: &MessageBody) -> Result<(), &'static str> {
    use message_body::Type;
    let kind = body.r#type.and_then(|t| Type::try_from(t).ok());
    if kind == Some(Type::Chat) && body.contents.is_empty() {
        return Err("message has no content");
    }
    let json_values = body.ext.iter().chain(
        body.contents
            .iter()
            .flat_map(|c| c.custom_exts.iter().chain(&c.params)),
    );
    for kv in json_values {
        if kv.r#type == Some(pb::key_value::ValueType::JsonString as i32) && !is_json(kv) {
            return Err("ext value is not JSON");
        }
    }
    if body
        .meta
        .as_deref()
        .is_some_and(|m| !m.is_empty() && !is_json_text(m))
    {
        return Err("meta is not JSON");
    }
    if kind == Some(Type::ReadAck) && body.ext.first().is_some_and(|kv| !is_json(kv)) {
        return Err("read receipt ext is not JSON");
    }
    Ok(())
}

fn is_json(kv: &KeyValue) -> bool {
    matches!(&kv.value, Some(pb::key_value::Value::StringValue(s)) if is_json_text(s))
}

fn is_json_text(text: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

/// Rewrites the self-declared sender and recipient names of a body with the authenticated
/// ones, so nobody can send in someone else's name, and re-encodes it.
pub fn seal_body(mut body: MessageBody, from: &str, to: &str) -> Vec<u8> {
    body.from = Some(Jid {
        name: Some(from.to_owned()),
        ..Default::default()
    });
    body.to = Some(Jid {
        name: Some(to.to_owned()),
        ..Default::default()
    });
    body.encode_to_vec()
}

fn kv_value(v: &Value) -> (i32, pb::key_value::Value) {
    use pb::key_value::{Value as V, ValueType as T};
    match v {
        Value::Bool(b) => (T::Bool as i32, V::VarintValue(i64::from(*b))),
        Value::Number(n) if n.is_i64() => (T::Int as i32, V::VarintValue(n.as_i64().unwrap_or(0))),
        Value::Number(n) if n.is_u64() => (
            T::Uint as i32,
            V::VarintValue(n.as_u64().unwrap_or(0) as i64),
        ),
        Value::Number(n) => (T::Double as i32, V::DoubleValue(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => (T::String as i32, V::StringValue(s.clone())),
        other => (T::JsonString as i32, V::StringValue(other.to_string())),
    }
}

/// JSON object → msync key-values, typed the way the Web SDK types them.
pub fn ext_to_kv(ext: &Map<String, Value>) -> Vec<KeyValue> {
    ext.iter()
        .map(|(k, v)| {
            let (t, value) = kv_value(v);
            KeyValue {
                key: Some(k.clone()),
                r#type: Some(t),
                value: Some(value),
            }
        })
        .collect()
}

/// msync key-values → JSON object.
pub fn kv_to_ext(kvs: &[KeyValue]) -> Map<String, Value> {
    use pb::key_value::{Value as V, ValueType as T};
    kvs.iter()
        .filter_map(|kv| {
            let key = kv.key.clone()?;
            let t = kv.r#type.and_then(|t| T::try_from(t).ok());
            let value = match (&kv.value, t) {
                (Some(V::VarintValue(v)), Some(T::Bool)) => Value::Bool(*v != 0),
                (Some(V::VarintValue(v)), _) => json!(v),
                (Some(V::FloatValue(v)), _) => json!(v),
                (Some(V::DoubleValue(v)), _) => json!(v),
                (Some(V::StringValue(s)), Some(T::JsonString)) => {
                    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone()))
                }
                (Some(V::StringValue(s)), _) => Value::String(s.clone()),
                (None, _) => Value::Null,
            };
            Some((key, value))
        })
        .collect()
}

/// Easemob's REST JSON for a message body: `{"type","msg"|"action"|…}`.
fn content_json(c: &message_body::Content) -> Value {
    use message_body::content::Type;
    match c
        .r#type
        .and_then(|t| Type::try_from(t).ok())
        .unwrap_or(Type::Text)
    {
        Type::Text => json!({"type": "txt", "msg": c.text.clone().unwrap_or_default()}),
        Type::Location => json!({
            "type": "loc",
            "lat": c.latitude.unwrap_or_default(),
            "lng": c.longitude.unwrap_or_default(),
            "addr": c.address.clone().unwrap_or_default(),
            "buildingName": c.building_name.clone().unwrap_or_default(),
        }),
        Type::Command => json!({"type": "cmd", "action": c.action.clone().unwrap_or_default()}),
        Type::Custom => json!({
            "type": "custom",
            "customEvent": c.custom_event.clone().unwrap_or_default(),
            "customExts": c.custom_exts.iter().map(|kv| Value::Object(kv_to_ext(std::slice::from_ref(kv)))).collect::<Vec<_>>(),
        }),
        Type::Image => json!({"type": "img", "url": c.remote_path.clone().unwrap_or_default()}),
        Type::Video => json!({"type": "video", "url": c.remote_path.clone().unwrap_or_default()}),
        Type::Voice => json!({"type": "audio", "url": c.remote_path.clone().unwrap_or_default()}),
        Type::File => json!({"type": "file", "url": c.remote_path.clone().unwrap_or_default()}),
        Type::Combine => {
            json!({"type": "txt", "msg": c.text.clone().unwrap_or_default(), "subType": "sub_combine"})
        }
    }
}

/// Easemob's REST JSON of a stored message's payload (`{"bodies","ext","from","to","type"}`).
pub fn payload_json(m: &StoredMessage) -> Value {
    let body = MessageBody::decode(m.payload.as_slice()).unwrap_or_default();
    json!({
        "bodies": body.contents.iter().map(content_json).collect::<Vec<_>>(),
        "ext": Value::Object(kv_to_ext(&body.ext)),
        "from": m.from.name.as_str(),
        "to": m.to.name.as_str(),
        "type": "chat",
    })
}

/// Builds a `MessageBody` from Easemob's REST send shape (`type` + `body` + `ext`).
pub fn body_from_rest(
    kind: &str,
    body: &Value,
    ext: Option<&Map<String, Value>>,
) -> Result<MessageBody, String> {
    use message_body::content::Type;
    let str_of = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_owned);
    let content = match kind {
        "txt" => message_body::Content {
            r#type: Some(Type::Text as i32),
            text: Some(str_of("msg").ok_or("body.msg is required for txt messages")?),
            ..Default::default()
        },
        "cmd" => message_body::Content {
            r#type: Some(Type::Command as i32),
            action: Some(str_of("action").ok_or("body.action is required for cmd messages")?),
            ..Default::default()
        },
        "loc" => message_body::Content {
            r#type: Some(Type::Location as i32),
            latitude: body
                .get("lat")
                .and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok())),
            longitude: body
                .get("lng")
                .and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok())),
            address: str_of("addr"),
            ..Default::default()
        },
        "custom" => message_body::Content {
            r#type: Some(Type::Custom as i32),
            custom_event: str_of("customEvent"),
            custom_exts: body
                .get("customExts")
                .and_then(Value::as_object)
                .map(ext_to_kv)
                .unwrap_or_default(),
            ..Default::default()
        },
        other => return Err(format!("unsupported message type {other}")),
    };
    Ok(MessageBody {
        r#type: Some(message_body::Type::Chat as i32),
        contents: vec![content],
        ext: ext.map(ext_to_kv).unwrap_or_default(),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrim_core::messaging::Party;
    use ferrim_core::user::Username;

    fn json_kv(text: &str) -> KeyValue {
        KeyValue {
            key: Some("k".into()),
            r#type: Some(pb::key_value::ValueType::JsonString as i32),
            value: Some(pb::key_value::Value::StringValue(text.into())),
        }
    }

    #[test]
    fn bodies_the_receiving_sdk_could_not_decode_are_refused() {
        use message_body::{Content, Type};
        let text = MessageBody {
            r#type: Some(Type::Chat as i32),
            contents: vec![Content::default()],
            ext: vec![json_kv(r#"{"a":[1,2]}"#), json_kv("3")],
            meta: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(check_body(&text), Ok(()));

        let mut empty = text.clone();
        empty.contents.clear();
        assert!(check_body(&empty).is_err());

        let mut bad_ext = text.clone();
        bad_ext.ext.push(json_kv("{not json"));
        assert!(check_body(&bad_ext).is_err());

        let mut bad_custom = text.clone();
        bad_custom.contents[0].custom_exts.push(json_kv(""));
        assert!(check_body(&bad_custom).is_err());

        let mut bad_meta = text.clone();
        bad_meta.meta = Some("translations".into());
        assert!(check_body(&bad_meta).is_err());

        // A receipt's contents may be empty, but its first ext is parsed as JSON.
        let mut read = MessageBody {
            r#type: Some(Type::ReadAck as i32),
            ..Default::default()
        };
        assert_eq!(check_body(&read), Ok(()));
        read.ext.push(KeyValue {
            key: Some("k".into()),
            r#type: Some(pb::key_value::ValueType::String as i32),
            value: Some(pb::key_value::Value::StringValue("plain".into())),
        });
        assert!(check_body(&read).is_err());
    }

    #[test]
    fn a_notice_goes_out_as_notify_json_from_the_deleting_device() {
        let delia = Party {
            id: uuid::Uuid::nil(),
            name: Username::parse("delia").unwrap(),
        };
        let notice = StoredMessage {
            id: 7,
            app_id: uuid::Uuid::nil(),
            from: delia.clone(),
            to: delia,
            from_resource: "web_1".into(),
            to_resource: None,
            client_id: None,
            timestamp_ms: 5,
            kind: MessageKind::Notice,
            payload: conversation_deleted_notice("delia", "web_1", "dirk", 5),
        };
        let meta = meta_of("org#app", &notice);
        assert_eq!(meta.ns, Some(meta::NameSpace::Notify as i32));
        let json: serde_json::Value = serde_json::from_slice(&meta.payload.unwrap()).unwrap();
        assert_eq!(
            json,
            json!({"type": "conv", "data": {"op": "del", "id": "dirk", "type": "chat", "ts": 5, "res": "web_1", "from": "delia"}})
        );
    }

    #[test]
    fn ext_round_trips_through_key_values() {
        let ext = json!({"a": 1, "b": "x", "c": true, "d": 1.5, "e": {"k": [1, 2]}});
        let kv = ext_to_kv(ext.as_object().unwrap());
        assert_eq!(Value::Object(kv_to_ext(&kv)), ext);
    }

    #[test]
    fn rest_bodies_build_and_render() {
        let body = body_from_rest("txt", &json!({"msg": "hi"}), None).unwrap();
        assert_eq!(body.contents[0].text.as_deref(), Some("hi"));
        assert!(body_from_rest("txt", &json!({}), None).is_err());
        assert!(body_from_rest("img", &json!({}), None).is_err());
        let cmd = body_from_rest("cmd", &json!({"action": "go"}), None).unwrap();
        assert_eq!(content_json(&cmd.contents[0])["action"], "go");
    }

    #[test]
    fn sealing_overwrites_spoofed_names() {
        let body = MessageBody {
            from: Some(Jid {
                name: Some("mallory".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let sealed = MessageBody::decode(seal_body(body, "alice", "bob").as_slice()).unwrap();
        assert_eq!(sealed.from.unwrap().name.as_deref(), Some("alice"));
        assert_eq!(sealed.to.unwrap().name.as_deref(), Some("bob"));
    }

    #[test]
    fn receipts_are_signals() {
        let mut body = MessageBody::default();
        assert_eq!(kind_of(&body), MessageKind::Chat);
        body.r#type = Some(message_body::Type::ReadAck as i32);
        assert_eq!(kind_of(&body), MessageKind::Signal);
        body.r#type = Some(message_body::Type::ChannelAck as i32);
        assert_eq!(kind_of(&body), MessageKind::ConversationRead);
    }
}
