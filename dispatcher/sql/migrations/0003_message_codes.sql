-- Migration 0003: the message code of each broadcast job as its own indexed column.
-- Never edit an applied migration: add 0004_... instead, and update schema.sql.
--
-- A new alert chain must take a message code no broadcast on the air uses. Reading it
-- out of every live job's payload (cell lists and all) grew with the day's history;
-- a stored generated column keeps the look-up to the index.
ALTER TABLE jobs ADD COLUMN message_code integer GENERATED ALWAYS AS (
    CASE WHEN payload ->> 'kind' IN ('cbc-rest', 'smpp-broadcast')
              AND payload ->> 'action' IN ('create', 'replace')
         THEN (payload -> 'serial_number' ->> 'msg_code')::integer END) STORED;
CREATE INDEX jobs_live_code_idx ON jobs (message_code)
    WHERE message_code IS NOT NULL AND state IN ('queued', 'running', 'succeeded');
