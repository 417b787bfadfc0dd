-- The message journal (a file of its own beside the main database; see src/journal.rs):
-- messages as their group commits store them, until a merge has copied them into the main
-- database's `messages` table. `seq` is never reused (AUTOINCREMENT), so how far the merges
-- got is one number, kept in the main database.
CREATE TABLE messages (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            INTEGER NOT NULL,
    app_id        BLOB NOT NULL,
    from_id       BLOB NOT NULL,
    from_name     TEXT NOT NULL,
    to_id         BLOB NOT NULL,
    to_name       TEXT NOT NULL,
    from_resource TEXT NOT NULL,
    to_resource   TEXT,
    client_id     INTEGER,
    ts            INTEGER NOT NULL,
    kind          INTEGER NOT NULL,
    conv          BLOB NOT NULL,
    payload       BLOB NOT NULL
);
-- Resends are caught here for messages not merged yet (and by the main database's index
-- for the others). Client IDs are time-ordered, so this index grows at its right edge.
CREATE UNIQUE INDEX messages_resend ON messages (client_id, from_id, from_resource)
    WHERE client_id IS NOT NULL;
