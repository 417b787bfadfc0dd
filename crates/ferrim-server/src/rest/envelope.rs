//! Easemob's success envelope (rest-api.md §1.4) and the user entity.

use axum::response::{IntoResponse, Response};
use axum::Json;
use ferrim_core::clock::now_ms;
use ferrim_core::user::User;
use serde_json::{json, Map, Value};

use super::extract::AppCtx;

/// A success body under construction.
pub(crate) struct Envelope(Map<String, Value>);

impl Envelope {
    /// `action`, `application`, `path`, `uri`, `timestamp`, `duration`, `organization`,
    /// `applicationName` — what most user-management responses carry.
    pub(crate) fn full(ctx: &AppCtx, action: &str, path: impl Into<String>) -> Self {
        let mut env = Self::minimal(ctx, action);
        env.0
            .insert("application".into(), ctx.app.id.to_string().into());
        env.0.insert("path".into(), Value::String(path.into()));
        env.0.insert("uri".into(), ctx.uri().into());
        env.0
            .insert("organization".into(), ctx.app.key.org().into());
        env.0
            .insert("applicationName".into(), ctx.app.key.app().into());
        env
    }

    /// Only `action`, `timestamp` and `duration`.
    pub(crate) fn minimal(ctx: &AppCtx, action: &str) -> Self {
        let mut map = Map::new();
        map.insert("action".into(), action.into());
        map.insert("timestamp".into(), now_ms().into());
        map.insert(
            "duration".into(),
            (ctx.started.elapsed().as_millis() as u64).into(),
        );
        Self(map)
    }

    pub(crate) fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }

    pub(crate) fn uri(self, ctx: &AppCtx) -> Self {
        let uri = ctx.uri();
        self.with("uri", uri)
    }

    pub(crate) fn entities(self, users: &[User]) -> Self {
        self.with(
            "entities",
            Value::Array(users.iter().map(user_entity).collect()),
        )
    }

    pub(crate) fn no_entities(self) -> Self {
        self.with("entities", Value::Array(Vec::new()))
    }

    pub(crate) fn data(self, data: Value) -> Self {
        self.with("data", data)
    }

    pub(crate) fn count(self, n: usize) -> Self {
        self.with("count", n as u64)
    }

    pub(crate) fn cursor(self, cursor: Option<String>) -> Self {
        match cursor {
            Some(c) => self.with("cursor", c),
            None => self,
        }
    }
}

impl IntoResponse for Envelope {
    fn into_response(self) -> Response {
        Json(Value::Object(self.0)).into_response()
    }
}

/// A user as Easemob renders it (`entities[]`, token responses' `user`).
pub(crate) fn user_entity(user: &User) -> Value {
    let mut entity = json!({
        "uuid": user.id.to_string(),
        "type": "user",
        "created": user.created_ms,
        "modified": user.modified_ms,
        "username": user.username.as_str(),
        "activated": user.activated,
    });
    if let Some(nick) = &user.nickname {
        entity["nickname"] = nick.as_str().into();
    }
    if let (Value::Object(fields), Value::Object(push)) = (
        &mut entity,
        serde_json::to_value(&user.push).unwrap_or_default(),
    ) {
        fields.extend(push);
    }
    entity
}
