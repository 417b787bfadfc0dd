-- A user's "I have read this conversation" marks (kind 2), newest per peer, decide what a
-- conversation listing counts as unread. Only those messages are in this index.
CREATE INDEX messages_read_marks ON messages (from_id, to_id, id) WHERE kind = 2;
