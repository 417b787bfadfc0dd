//! Messages through REST: the app server's one-to-one send, and the conversation list and
//! history the SDK reads (msync-protocol.md §8.8).

use std::collections::HashMap;

use axum::extract::Query;
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ferrim_core::clock::now_ms;
use ferrim_core::messaging::{HistoryQuery, MessageKind, NewMessage, Party};
use ferrim_core::user::{User, Username};
use ferrim_core::CoreError;
use ferrim_proto::Message as _;
use serde_json::{json, Map, Value};

use super::envelope::Envelope;
use super::extract::{AdminCtx, AppCtx, JsonBody};
use super::ApiError;
use crate::messages;

/// Most recipients of one REST send.
pub const MAX_RECIPIENTS: usize = 600;
/// Largest history page.
pub const MAX_HISTORY_PAGE: u32 = 50;
/// Store pages one filtered history request reads at most.
const HISTORY_FILTER_PAGES: usize = 20;
/// Largest conversation list page.
pub const MAX_CONVERSATIONS: u32 = 100;

/// Sender name used when a REST send names no user.
const ADMIN: &str = "admin";

/// `POST /{org}/{app}/messages/users`: an app server sends a one-to-one message (txt, cmd,
/// loc, custom) to up to 600 users. `data` maps each recipient to its server message ID.
/// With `routetype: "ROUTE_ONLINE"` a recipient with no device online does not get it.
#[utoipa::path(
    post,
    path = "/{org}/{app}/messages/users",
    tag = "messages",
    params(
        ("org" = String, Path, description = "Organization name"),
        ("app" = String, Path, description = "App name"),
    ),
    security(("app_token" = [])),
    responses(
        (status = 200, description = "`data` maps each recipient to a message ID, or to an error text"),
        (status = 400, description = "`illegal_argument`"),
        (status = 401, description = "Missing, expired or wrong token"),
    )
)]
pub(crate) async fn send(
    AdminCtx(ctx): AdminCtx,
    JsonBody(body): JsonBody,
) -> Result<Envelope, ApiError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::illegal_argument("the body must be a JSON object"))?;
    let to: Vec<String> = match obj.get("to") {
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| ApiError::illegal_argument("to must be an array of user IDs"))?,
        Some(Value::String(one)) => vec![one.clone()],
        _ => return Err(ApiError::illegal_argument("to is required")),
    };
    if to.is_empty() || to.len() > MAX_RECIPIENTS {
        return Err(ApiError::illegal_argument(format!(
            "to must name between 1 and {MAX_RECIPIENTS} users"
        )));
    }
    let kind = obj
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::illegal_argument("type is required"))?;
    let ext = match obj.get("ext") {
        None | Some(Value::Null) => None,
        Some(Value::Object(ext)) => Some(ext),
        Some(_) => return Err(ApiError::illegal_argument("ext must be a JSON object")),
    };
    let msg_body = messages::body_from_rest(kind, obj.get("body").unwrap_or(&Value::Null), ext)
        .map_err(ApiError::illegal_argument)?;
    let accounts = &ctx.state.core.accounts;
    let from_name = obj.get("from").and_then(Value::as_str).unwrap_or(ADMIN);
    let from = match accounts.user(&ctx.app, from_name).await {
        Ok(user) => party(&user),
        Err(CoreError::UserNotFound) if from_name.eq_ignore_ascii_case(ADMIN) => Party {
            // The app itself speaks as "admin"; no user owns this ID.
            id: ctx.app.id,
            name: Username::parse(ADMIN).expect("valid user ID"),
        },
        Err(CoreError::UserNotFound) => {
            return Err(ApiError::illegal_argument(format!(
                "from user {from_name} does not exist"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    if msg_body.encoded_len() > ctx.state.core.settings.ws.max_message_bytes {
        return Err(ApiError::illegal_argument("the message is too large"));
    }
    // `routetype: "ROUTE_ONLINE"`: only recipients with a device online get it; for the
    // others it is dropped, not kept for later.
    let online_only = match obj.get("routetype") {
        None | Some(Value::Null) => false,
        Some(Value::String(r)) if r == "ROUTE_ONLINE" => true,
        Some(_) => {
            return Err(ApiError::illegal_argument(
                "routetype must be \"ROUTE_ONLINE\" when given",
            ))
        }
    };
    let mut data = Map::new();
    for name in to {
        let recipient = match accounts.user(&ctx.app, &name).await {
            Ok(user) => user,
            Err(CoreError::UserNotFound) => {
                data.insert(name, Value::String("user not found".into()));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if online_only && !accounts.is_online(&ctx.app, &recipient).await? {
            let id = ctx.state.core.messaging.ids().next(now_ms());
            data.insert(
                recipient.username.to_string(),
                Value::String(id.to_string()),
            );
            continue;
        }
        let payload = messages::seal_body(
            msg_body.clone(),
            from.name.as_str(),
            recipient.username.as_str(),
        );
        let appended = ctx
            .state
            .core
            .messaging
            .send(
                NewMessage {
                    id: 0,
                    app_id: ctx.app.id,
                    from: from.clone(),
                    to: party(&recipient),
                    from_resource: String::new(),
                    to_resource: None,
                    client_id: None,
                    timestamp_ms: 0,
                    kind: messages::kind_of(&msg_body),
                    payload,
                },
                None,
            )
            .await?;
        data.insert(
            recipient.username.to_string(),
            Value::String(appended.id.to_string()),
        );
    }
    Ok(Envelope::full(&ctx, "post", "/messages/users").data(Value::Object(data)))
}

fn party(user: &User) -> Party {
    Party {
        id: user.id,
        name: user.username.clone(),
    }
}

/// The user a client-facing endpoint speaks for: the holder of that user's own token, or
/// the app (app token).
async fn user_or_app(ctx: &AppCtx) -> Result<User, ApiError> {
    let token = ctx.bearer().ok_or_else(ApiError::expired_token)?;
    let accounts = &ctx.state.core.accounts;
    let username = ctx.param("username");
    if accounts.authenticate_app(&ctx.app, token).is_ok() {
        return accounts
            .user(&ctx.app, username)
            .await
            .map_err(ApiError::from);
    }
    let authed = accounts
        .authenticate_user(&ctx.app, token)
        .await
        .map_err(ApiError::from_auth)?;
    if !authed.user.username.as_str().eq_ignore_ascii_case(username) {
        return Err(ApiError::corrupt_token());
    }
    Ok(authed.user)
}

/// Reads a number that clients send either as a JSON number or as a numeric string.
fn number(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `POST /{org}/{app}/users/{username}/messageroaming`: the SDK's `getHistoryMessages`.
/// Body `{queue:"peer@easemob.com", start, pull_number, is_positive, msgType, startTime,
/// endTime}`;
/// answer `{data:{msgs:[{msg: base64(Meta)}], next_key, is_last}}`, newest first unless
/// `is_positive`.
#[utoipa::path(
    post,
    path = "/{org}/{app}/users/{username}/messageroaming",
    tag = "messages",
    params(
        ("org" = String, Path, description = "Organization name"),
        ("app" = String, Path, description = "App name"),
        ("username" = String, Path, description = "The user whose history is read"),
    ),
    security(("user_token" = []), ("app_token" = [])),
    responses(
        (status = 200, description = "`data.msgs`, `data.next_key`, `data.is_last`"),
        (status = 401, description = "Missing, expired or wrong token"),
    )
)]
pub(crate) async fn history(
    ctx: AppCtx,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let user = user_or_app(&ctx).await?;
    let queue = body
        .get("queue")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::illegal_argument("queue is required"))?;
    let empty = || Json(json!({"data": {"msgs": [], "next_key": "", "is_last": true}}));
    // Group and chat-room queues have no history here (one-to-one only).
    let Some(peer_name) = queue.strip_suffix(&format!("@{}", messages::DOMAIN)) else {
        return Ok(empty());
    };
    let peer = match ctx.state.core.accounts.user(&ctx.app, peer_name).await {
        Ok(peer) => peer,
        Err(CoreError::UserNotFound) => return Ok(empty()),
        Err(e) => return Err(e.into()),
    };
    let limit = number(body.get("pull_number"))
        .filter(|n| *n > 0)
        .map_or(20, |n| n.min(i64::from(MAX_HISTORY_PAGE)) as u32);
    let ascending = body
        .get("is_positive")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let start = number(body.get("start"))
        .filter(|s| *s > 0)
        .map(|s| s as u64);
    let time = |key: &str| number(body.get(key)).filter(|t| *t > 0).map(|t| t as u64);
    // `msgType`: the SDK's `searchOptions.msgTypes` joined with commas ("txt,custom").
    let wanted: Vec<&str> = body
        .get("msgType")
        .and_then(Value::as_str)
        .map(|t| {
            t.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .collect()
        })
        .unwrap_or_default();
    // What the user deleted of this conversation stays out of their history.
    let deleted_up_to = ctx
        .state
        .core
        .messaging
        .history_start(user.id, peer.id)
        .await?;
    let deleted = (deleted_up_to > 0).then_some(deleted_up_to);
    let mut query = HistoryQuery {
        a: user.id,
        b: peer.id,
        before: if ascending { None } else { start },
        after: if ascending { start } else { None }.max(deleted),
        from_ms: time("startTime"),
        to_ms: time("endTime"),
        limit,
        descending: !ascending,
    };
    // With a type filter, read on until the page is full or the history ends, at most
    // HISTORY_FILTER_PAGES store pages; `next_key` is the last message looked at, so the
    // next request goes on from there.
    let mut page = Vec::with_capacity(limit as usize);
    let mut next_key = String::new();
    let mut is_last = false;
    for _ in 0..HISTORY_FILTER_PAGES {
        let read = ctx.state.core.messaging.history(ctx.app.id, &query).await?;
        is_last = read.len() < limit as usize;
        let Some(last) = read.last().map(|m| m.id) else {
            break;
        };
        next_key = last.to_string();
        page.extend(
            read.into_iter().filter(|m| {
                wanted.is_empty() || wanted.contains(&messages::sdk_type_of(&m.payload))
            }),
        );
        if is_last || page.len() >= limit as usize {
            break;
        }
        if ascending {
            query.after = Some(last);
        } else {
            query.before = Some(last);
        }
    }
    if page.len() > limit as usize {
        // The page ends at its last message; the rest comes with the next request.
        page.truncate(limit as usize);
        is_last = false;
        next_key = page.last().map(|m| m.id.to_string()).unwrap_or_default();
    }
    let app_key = ctx.app.key.to_string();
    let msgs: Vec<Value> = page
        .iter()
        .map(|m| json!({"msg": STANDARD.encode(messages::meta_of(&app_key, m).encode_to_vec())}))
        .collect();
    Ok(Json(json!({
        "data": { "msgs": msgs, "next_key": next_key, "is_last": is_last }
    })))
}

/// `DELETE /{org}/{app}/user/{username}/user_channel`: the SDK's `deleteConversation`.
/// Body `{channel: peer, type: "chat", delete_roam}`. The conversation leaves the user's
/// list until a new message arrives; with `delete_roam` the user's history of it is gone
/// too. The user's other devices are told (`onMultiDeviceEvent` `deleteConversation`); the
/// peer sees no change. Group conversations (none here) are accepted as a no-op.
#[utoipa::path(
    delete,
    path = "/{org}/{app}/user/{username}/user_channel",
    tag = "messages",
    params(
        ("org" = String, Path, description = "Organization name"),
        ("app" = String, Path, description = "App name"),
        ("username" = String, Path, description = "The user deleting one of their conversations"),
        ("resource" = Option<String>, Query, description = "The deleting device; the user's other devices are told"),
    ),
    security(("user_token" = []), ("app_token" = [])),
    responses(
        (status = 200, description = "`data.result`: `ok`"),
        (status = 400, description = "`illegal_argument`: no `channel`"),
        (status = 401, description = "Missing, expired or wrong token"),
    )
)]
pub(crate) async fn delete_conversation(
    ctx: AppCtx,
    Query(params): Query<HashMap<String, String>>,
    JsonBody(body): JsonBody,
) -> Result<Envelope, ApiError> {
    let user = user_or_app(&ctx).await?;
    let channel = body
        .get("channel")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::illegal_argument("channel is required"))?;
    let one_to_one = body
        .get("type")
        .and_then(Value::as_str)
        .is_none_or(|t| t == "chat");
    let history = body
        .get("delete_roam")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if let Some(peer) = existing_peer(&ctx, channel, one_to_one).await? {
        let messaging = &ctx.state.core.messaging;
        messaging
            .delete_conversation(user.id, peer.id, history)
            .await?;
        // The SDK names the deleting device in `?resource=`; anything longer than a
        // resource can be is ignored (then every device is told).
        let resource = params
            .get("resource")
            .filter(|r| messages::is_device_resource(r))
            .cloned()
            .unwrap_or_default();
        let notice = messages::conversation_deleted_notice(
            user.username.as_str(),
            &resource,
            peer.username.as_str(),
            now_ms(),
        );
        let me = party(&user);
        let note = NewMessage {
            id: 0,
            app_id: ctx.app.id,
            from: me.clone(),
            to: me,
            from_resource: resource,
            to_resource: None,
            client_id: None,
            timestamp_ms: 0,
            kind: MessageKind::Notice,
            payload: notice,
        };
        messaging.send(note, None).await?;
    }
    Ok(Envelope::full(&ctx, "delete", "/user_channel").data(json!({"result": "ok"})))
}

/// `DELETE /{org}/{app}/sdk/message/roaming/{chat_type}/user/{username}/time`: the SDK's
/// `removeHistoryMessages` with `beforeTimeStamp`. `?userId=peer&delTime=ms` (for `chat`):
/// the user's history with the peer before `delTime` is gone, for them only; the
/// conversation stays in their list and the peer keeps theirs. Group history (no groups
/// here) is accepted as a no-op.
#[utoipa::path(
    delete,
    path = "/{org}/{app}/sdk/message/roaming/{chat_type}/user/{username}/time",
    tag = "messages",
    params(
        ("org" = String, Path, description = "Organization name"),
        ("app" = String, Path, description = "App name"),
        ("chat_type" = String, Path, description = "`chat` or `group`"),
        ("username" = String, Path, description = "The user deleting part of their history"),
        ("userId" = Option<String>, Query, description = "The peer (for `chat`)"),
        ("delTime" = u64, Query, description = "Messages before this time (ms) are deleted"),
    ),
    security(("user_token" = []), ("app_token" = [])),
    responses(
        (status = 200, description = "`data.result`: `ok`"),
        (status = 400, description = "`illegal_argument`: no `userId` or `delTime`, or an unknown chat type"),
        (status = 401, description = "Missing, expired or wrong token"),
    )
)]
pub(crate) async fn delete_history_before(
    ctx: AppCtx,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Envelope, ApiError> {
    let user = user_or_app(&ctx).await?;
    let one_to_one = roaming_chat_type(&ctx)?;
    let before_ms = params
        .get("delTime")
        .and_then(|t| t.trim().parse::<u64>().ok())
        .ok_or_else(|| ApiError::illegal_argument("delTime must be a time in milliseconds"))?;
    let peer = params.get("userId").map_or("", String::as_str);
    if one_to_one && peer.is_empty() {
        return Err(ApiError::illegal_argument("userId is required"));
    }
    if let Some(peer) = existing_peer(&ctx, peer, one_to_one).await? {
        ctx.state
            .core
            .messaging
            .delete_history_before(user.id, peer.id, before_ms)
            .await?;
    }
    let path = format!("/sdk/message/roaming/{}/user/time", ctx.param("chat_type"));
    Ok(Envelope::full(&ctx, "delete", path).data(json!({"result": "ok"})))
}

/// `DELETE /{org}/{app}/sdk/message/roaming/{chat_type}/user/{username}`: the SDK's
/// `removeHistoryMessages` with `messageIds`. Deleting single messages from one user's
/// history is not supported: refused with 400, so the SDK's promise rejects instead of
/// reporting a deletion that did not happen.
#[utoipa::path(
    delete,
    path = "/{org}/{app}/sdk/message/roaming/{chat_type}/user/{username}",
    tag = "messages",
    params(
        ("org" = String, Path, description = "Organization name"),
        ("app" = String, Path, description = "App name"),
        ("chat_type" = String, Path, description = "`chat` or `group`"),
        ("username" = String, Path, description = "The user"),
    ),
    security(("user_token" = []), ("app_token" = [])),
    responses(
        (status = 400, description = "`illegal_argument`: not supported; delete by time instead"),
        (status = 401, description = "Missing, expired or wrong token"),
    )
)]
pub(crate) async fn delete_history_messages(ctx: AppCtx) -> Result<Envelope, ApiError> {
    user_or_app(&ctx).await?;
    roaming_chat_type(&ctx)?;
    Err(ApiError::illegal_argument(
        "deleting single messages from the history is not supported; delete by time (beforeTimeStamp)",
    ))
}

/// The peer of a one-to-one conversation, `None` for a group or a user who does not exist
/// (nothing was exchanged with them).
async fn existing_peer(
    ctx: &AppCtx,
    name: &str,
    one_to_one: bool,
) -> Result<Option<User>, ApiError> {
    if !one_to_one {
        return Ok(None);
    }
    match ctx.state.core.accounts.user(&ctx.app, name).await {
        Ok(peer) => Ok(Some(peer)),
        Err(CoreError::UserNotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Whether a roaming path's `{chat_type}` is one-to-one (`chat`) rather than `group`.
fn roaming_chat_type(ctx: &AppCtx) -> Result<bool, ApiError> {
    match ctx.param("chat_type") {
        "chat" => Ok(true),
        "group" => Ok(false),
        other => Err(ApiError::illegal_argument(format!(
            "unknown chat type {other:?}: chat or group"
        ))),
    }
}

/// `GET /{org}/{app}/sdk/user/{username}/user_channels/list`: the SDK's
/// `getServerConversations`. Each entry carries the last message as Easemob's REST message
/// JSON, with `payload` as a JSON string.
#[utoipa::path(
    get,
    path = "/{org}/{app}/sdk/user/{username}/user_channels/list",
    tag = "messages",
    params(
        ("org" = String, Path, description = "Organization name"),
        ("app" = String, Path, description = "App name"),
        ("username" = String, Path, description = "The user whose conversations are listed"),
        ("limit" = Option<u32>, Query, description = "Page size (default 20, at most 100)"),
        ("cursor" = Option<String>, Query, description = "`data.cursor` of the previous page"),
    ),
    security(("user_token" = []), ("app_token" = [])),
    responses(
        (status = 200, description = "`data.channel_infos`, `data.cursor` (empty on the last page)"),
        (status = 401, description = "Missing, expired or wrong token"),
    )
)]
pub(crate) async fn conversations(
    ctx: AppCtx,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let user = user_or_app(&ctx).await?;
    // `getServerPinnedConversations` asks with `is_top=true`; nothing is pinned here.
    if params.get("is_top").is_some_and(|t| t == "true") {
        return Ok(Json(json!({"data": {"cursor": "", "channel_infos": []}})));
    }
    let limit = params
        .get("limit")
        .and_then(|l| l.parse::<u32>().ok())
        .unwrap_or(20)
        .clamp(1, MAX_CONVERSATIONS);
    // The cursor of a page is the ID of its last conversation's last message.
    let before = params
        .get("cursor")
        .and_then(|c| c.parse::<u64>().ok())
        .filter(|c| *c > 0);
    let list = ctx
        .state
        .core
        .messaging
        .conversations(ctx.app.id, user.id, before, limit)
        .await?;
    let cursor = match list.last() {
        Some(c) if list.len() == limit as usize => c.last.id.to_string(),
        _ => String::new(),
    };
    let infos: Vec<Value> = list
        .iter()
        .map(|c| {
            let m = &c.last;
            json!({
                "session_to": c.peer.as_str(),
                "session_type": "chat",
                "is_top": false,
                "update_top_status_time": 0,
                "unread_num": c.unread,
                "meta": {
                    "id": m.id.to_string(),
                    "from": m.from.name.as_str(),
                    "to": m.to.name.as_str(),
                    "timestamp": m.timestamp_ms,
                    "payload": messages::payload_json(m).to_string(),
                },
            })
        })
        .collect();
    Ok(Json(
        json!({"data": {"cursor": cursor, "channel_infos": infos}}),
    ))
}
