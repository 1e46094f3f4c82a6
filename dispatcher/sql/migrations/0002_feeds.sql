-- Migration 0002: what the feed poller remembers across restarts.
-- Never edit an applied migration: add 0003_... instead, and update schema.sql.

-- Per polled feed URL: the validators of its last complete poll (sent back as
-- If-None-Match / If-Modified-Since) and how its polls have been going.
CREATE TABLE feed_state (
    url text PRIMARY KEY,
    etag text,
    last_modified text,
    checked_at timestamptz,
    changed_at timestamptz,
    failures integer NOT NULL DEFAULT 0,
    last_error text,
    CONSTRAINT feed_state_failures_check CHECK (failures >= 0)
);

-- CAP documents fetched from feed links and handed to ingest: never fetched again.
-- alert_id is the alert ingest answered with (the first one for a repeat).
CREATE TABLE feed_documents (
    url text PRIMARY KEY,
    feed_url text NOT NULL,
    alert_id bigint REFERENCES alerts (id),
    fetched_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX feed_documents_alert_idx ON feed_documents (alert_id);
