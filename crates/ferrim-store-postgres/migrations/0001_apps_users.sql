-- Apps: one row per appKey (org#app).
CREATE TABLE apps (
    id            UUID PRIMARY KEY,
    org           TEXT NOT NULL,
    name          TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    client_secret TEXT NOT NULL,
    token_key     BYTEA NOT NULL,
    settings      TEXT NOT NULL,
    created_ms    BIGINT NOT NULL,
    UNIQUE (org, name)
);

-- Users. `seq` orders users by creation and is the paging cursor. `inbox_seq` is the last
-- position handed out in the user's inbox: appends take it under this row's lock.
CREATE TABLE users (
    seq               BIGSERIAL PRIMARY KEY,
    id                UUID NOT NULL UNIQUE,
    app_id            UUID NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    username          TEXT NOT NULL,
    password_hash     TEXT,
    activated         BOOLEAN NOT NULL,
    nickname          TEXT,
    created_ms        BIGINT NOT NULL,
    modified_ms       BIGINT NOT NULL,
    token_generation  BIGINT NOT NULL,
    tokens_revoked_ms BIGINT NOT NULL,
    inbox_seq         BIGINT NOT NULL DEFAULT 0,
    UNIQUE (app_id, username)
);
CREATE INDEX users_by_app_seq ON users (app_id, seq);
