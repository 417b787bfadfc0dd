-- Messages are committed to the message journal (a second file, see src/journal.rs) and
-- merged into `messages` in bulk. How far the merges got, as a journal sequence number; it
-- changes in the same transaction as the merged rows.
CREATE TABLE journal_merges (
    only  INTEGER PRIMARY KEY CHECK (only = 1),
    up_to INTEGER NOT NULL
);
INSERT INTO journal_merges (only, up_to) VALUES (1, 0);
