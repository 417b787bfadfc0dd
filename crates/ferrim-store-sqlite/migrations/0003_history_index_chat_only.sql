-- Only chat messages are listed as history, so only they need the conversation index.
-- Receipts (up to two per chat message when an app sends delivery and read receipts) no
-- longer dirty an index page each. History queries say `kind = 0` literally, which lets
-- SQLite use this partial index.
DROP INDEX messages_conv;
CREATE INDEX messages_conv ON messages (conv, id) WHERE kind = 0;
