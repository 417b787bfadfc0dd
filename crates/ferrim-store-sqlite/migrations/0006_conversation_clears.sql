-- What a user deleted of a conversation (the SDK's deleteConversation): the conversation is
-- listed again only with a message after list_up_to; with its history deleted, the user's
-- history of it starts after history_up_to. Message IDs; the other user sees no change.
CREATE TABLE conversation_clears (
    user_id         BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    peer_id         BLOB NOT NULL,
    list_up_to      BIGINT NOT NULL,
    history_up_to   BIGINT NOT NULL,
    PRIMARY KEY (user_id, peer_id)
) WITHOUT ROWID;
