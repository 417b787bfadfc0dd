-- Messages. `id` is the server message ID: unique across nodes and time-ordered, but IDs
-- minted on different nodes may commit out of order, so it is not the inbox cursor here.
CREATE TABLE messages (
    id            BIGINT PRIMARY KEY,
    app_id        UUID NOT NULL,
    from_id       UUID NOT NULL,
    from_name     TEXT NOT NULL,
    to_id         UUID NOT NULL,
    to_name       TEXT NOT NULL,
    from_resource TEXT NOT NULL,
    client_id     BIGINT,
    ts            BIGINT NOT NULL,
    kind          SMALLINT NOT NULL,
    -- The two user IDs in byte order: one key per pair of users, for history.
    conv          BYTEA NOT NULL,
    payload       BYTEA NOT NULL
);
-- A resend of the same client message ID from the same device is stored once.
CREATE UNIQUE INDEX messages_resend ON messages (from_id, from_resource, client_id)
    WHERE client_id IS NOT NULL;
CREATE INDEX messages_to ON messages (to_id, id);
CREATE INDEX messages_from ON messages (from_id, id);
CREATE INDEX messages_conv ON messages (conv, id);

-- Each user's inbox: one row per message to them and per message they sent to someone
-- else (`sent`). `seq` comes from users.inbox_seq under the user's row lock, so it is
-- gap-free and in commit order for that user, whichever node wrote it: it is the cursor.
CREATE TABLE inbox (
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    message_id BIGINT NOT NULL,
    sent       BOOLEAN NOT NULL,
    PRIMARY KEY (user_id, seq)
);

-- How far each device has read its user's inbox (an inbox seq).
CREATE TABLE inbox_cursors (
    user_id  UUID NOT NULL,
    resource TEXT NOT NULL,
    cursor   BIGINT NOT NULL,
    PRIMARY KEY (user_id, resource)
);

-- How far any device of a user has read (where a device new to the server starts).
CREATE TABLE offline_cursors (
    user_id UUID PRIMARY KEY,
    cursor  BIGINT NOT NULL
);
