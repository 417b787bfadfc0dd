-- Messages. `id` is the server message ID (time-ordered, assigned by the single writer, so
-- ID order is commit order on one node); it is also the inbox cursor.
CREATE TABLE messages (
    id            INTEGER PRIMARY KEY,
    app_id        BLOB NOT NULL,
    from_id       BLOB NOT NULL,
    from_name     TEXT NOT NULL,
    to_id         BLOB NOT NULL,
    to_name       TEXT NOT NULL,
    from_resource TEXT NOT NULL,
    client_id     INTEGER,
    ts            INTEGER NOT NULL,
    kind          INTEGER NOT NULL,
    -- The two user IDs in byte order: one key per pair of users, for history.
    conv          BLOB NOT NULL,
    payload       BLOB NOT NULL
);
-- A resend of the same client message ID from the same device is stored once.
CREATE UNIQUE INDEX messages_resend ON messages (from_id, from_resource, client_id)
    WHERE client_id IS NOT NULL;
CREATE INDEX messages_to ON messages (to_id, id);
CREATE INDEX messages_from ON messages (from_id, id);
CREATE INDEX messages_conv ON messages (conv, id);

-- How far each device has read its user's inbox.
CREATE TABLE inbox_cursors (
    user_id  BLOB NOT NULL,
    resource TEXT NOT NULL,
    cursor   INTEGER NOT NULL,
    PRIMARY KEY (user_id, resource)
) WITHOUT ROWID;

-- How far any device of a user has read (where a device new to the server starts).
CREATE TABLE offline_cursors (
    user_id BLOB PRIMARY KEY,
    cursor  INTEGER NOT NULL
) WITHOUT ROWID;
