-- The assistant's function calls as messages of their own kinds (issue
-- 18): the seqs of a call's `tool_call` message and of its `tool_result`
-- message in the session's stream, and whether users see them (the
-- profile's `show_tools` when the call was made). NULL seqs: calls kept
-- before they were messages.
ALTER TABLE tool_calls ADD COLUMN seq INTEGER;
ALTER TABLE tool_calls ADD COLUMN result_seq INTEGER;
ALTER TABLE tool_calls ADD COLUMN shown INTEGER NOT NULL DEFAULT 0;
