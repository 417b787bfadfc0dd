-- Apps: one row per appKey (org#app).
CREATE TABLE apps (
    id            BLOB PRIMARY KEY,
    org           TEXT NOT NULL,
    name          TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    client_secret TEXT NOT NULL,
    token_key     BLOB NOT NULL,
    settings      TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    UNIQUE (org, name)
);

-- Users. `seq` orders users by creation and is the paging cursor.
CREATE TABLE users (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                BLOB NOT NULL UNIQUE,
    app_id            BLOB NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    username          TEXT NOT NULL,
    password_hash     TEXT,
    activated         INTEGER NOT NULL,
    nickname          TEXT,
    created_ms        INTEGER NOT NULL,
    modified_ms       INTEGER NOT NULL,
    token_generation  INTEGER NOT NULL,
    tokens_revoked_ms INTEGER NOT NULL,
    UNIQUE (app_id, username)
);
CREATE INDEX users_by_app_seq ON users (app_id, seq);
