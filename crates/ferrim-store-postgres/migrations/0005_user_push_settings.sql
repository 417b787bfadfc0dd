-- Push-notification preferences (display style, do-not-disturb) as a JSON object; NULL when
-- none is set.
ALTER TABLE users ADD COLUMN push_settings TEXT;
