-- A message sent to one device of the recipient (`bob/res`): only that device receives it.
-- NULL, as for every message before this column, means every device of the recipient.
ALTER TABLE messages ADD COLUMN to_resource TEXT;
