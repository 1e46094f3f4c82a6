-- capcast's database schema, as declared: what the numbered migrations in
-- migrations/ must build, object for object (tests/integration/test_migrations.py
-- compares a migrated database with one built from this file).
--
-- Conventions: identity primary keys; timestamptz only; states as enums; JSON
-- as jsonb; every index named. Times are the database's clock (now()), the one
-- clock that every worker on every host shares.

-- The migration ledger, created by dispatcher.store.migrate before migration 0001.
CREATE TABLE schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- received -> validated -> refused | accepted (nothing to send) | planned
--   -> dispatching -> done | cancelled | expired; duplicate: a repeat of an earlier alert.
CREATE TYPE alert_state AS ENUM (
    'received', 'validated', 'refused', 'duplicate', 'accepted', 'planned', 'dispatching',
    'done', 'cancelled', 'expired'
);

CREATE TYPE job_kind AS ENUM ('cbc-rest', 'smpp-broadcast', 'smpp-sms');

CREATE TYPE job_state AS ENUM ('queued', 'running', 'succeeded', 'failed', 'cancelled',
                               'expired');

-- pending: recorded just before the request went out; in_doubt: was pending when its
-- worker lost the job (it may or may not have reached the peer).
CREATE TYPE submission_status AS ENUM ('pending', 'acknowledged', 'rejected', 'failed',
                                       'in_doubt');

-- Alerting authorities, mirrored from the configuration.
CREATE TABLE authorities (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sender text NOT NULL,
    display_name text NOT NULL,
    profile text,
    allowed_statuses text[] NOT NULL DEFAULT '{}',
    jurisdiction jsonb,
    signature_required boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT authorities_sender_key UNIQUE (sender)
);

-- One row per CAP document received. The bytes are stored first, verbatim; the key
-- (sender, identifier, sent) and the parsed form follow validation. At most one row
-- that is neither refused nor a duplicate holds a key: that row is "the" alert.
CREATE TABLE alerts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    raw bytea NOT NULL,
    sha256 text NOT NULL,
    source text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    state alert_state NOT NULL DEFAULT 'received',
    sender text,
    identifier text,
    sent timestamptz,
    status text,
    msg_type text,
    scope text,
    parsed jsonb,
    findings jsonb NOT NULL DEFAULT '[]',
    refusal_code text,
    refusal_reason text,
    flags text[] NOT NULL DEFAULT '{}',
    authority_id bigint REFERENCES authorities (id),
    duplicate_of bigint REFERENCES alerts (id),
    conflicts_with bigint REFERENCES alerts (id),
    stopped_by bigint REFERENCES alerts (id),
    expires_at timestamptz,
    plan jsonb,
    validated_at timestamptz,
    accepted_at timestamptz,
    finished_at timestamptz,
    CONSTRAINT alerts_sha256_check CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    CONSTRAINT alerts_duplicate_check CHECK ((state = 'duplicate') = (duplicate_of IS NOT NULL)),
    CONSTRAINT alerts_key_check CHECK (
        state IN ('received', 'refused')
        OR (sender IS NOT NULL AND identifier IS NOT NULL AND sent IS NOT NULL))
);
CREATE UNIQUE INDEX alerts_key_unique ON alerts (sender, identifier, sent)
    WHERE state NOT IN ('refused', 'duplicate');
CREATE INDEX alerts_received_at_idx ON alerts (received_at);
CREATE INDEX alerts_sender_sent_idx ON alerts (sender, sent);
CREATE INDEX alerts_sha256_idx ON alerts (sha256);
CREATE INDEX alerts_live_idx ON alerts (expires_at) WHERE state IN ('planned', 'dispatching');

-- The alerts an Update, Cancel, Ack or Error names; referenced_id is NULL while unknown.
CREATE TABLE alert_references (
    alert_id bigint NOT NULL REFERENCES alerts (id),
    position integer NOT NULL,
    sender text NOT NULL,
    identifier text NOT NULL,
    sent timestamptz NOT NULL,
    referenced_id bigint REFERENCES alerts (id),
    PRIMARY KEY (alert_id, position)
);
CREATE INDEX alert_references_key_idx ON alert_references (sender, identifier, sent);
CREATE INDEX alert_references_referenced_idx ON alert_references (referenced_id);

-- Cell inventory files loaded per operator; at most one active version each.
CREATE TABLE inventory_versions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    operator text NOT NULL,
    version integer NOT NULL,
    path text NOT NULL,
    sha256 text NOT NULL,
    cell_count integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    active boolean NOT NULL DEFAULT false,
    CONSTRAINT inventory_versions_operator_version_key UNIQUE (operator, version),
    CONSTRAINT inventory_versions_cell_count_check CHECK (cell_count >= 0)
);
CREATE UNIQUE INDEX inventory_versions_active_idx ON inventory_versions (operator) WHERE active;

-- The durable job queue: one job per operator and gateway of an accepted alert.
CREATE TABLE jobs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id bigint NOT NULL REFERENCES alerts (id),
    operator text NOT NULL,
    gateway text NOT NULL,
    kind job_kind NOT NULL,
    payload jsonb NOT NULL,
    priority smallint NOT NULL DEFAULT 0,
    lock_key text,
    expires_at timestamptz,
    state job_state NOT NULL DEFAULT 'queued',
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 10,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_owner text,
    lease_expires_at timestamptz,
    heartbeat_at timestamptz,
    last_error text,
    result jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    -- The message code a create or replace puts on the air (migration 0003): a new
    -- alert chain takes a code no live broadcast uses.
    message_code integer GENERATED ALWAYS AS (
        CASE WHEN payload ->> 'kind' IN ('cbc-rest', 'smpp-broadcast')
                  AND payload ->> 'action' IN ('create', 'replace')
             THEN (payload -> 'serial_number' ->> 'msg_code')::integer END) STORED,
    CONSTRAINT jobs_attempts_check CHECK (attempts >= 0 AND max_attempts > 0),
    CONSTRAINT jobs_lease_check CHECK (
        (state = 'running') = (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL))
);
CREATE INDEX jobs_claim_idx ON jobs (priority DESC, next_attempt_at, id) WHERE state = 'queued';
CREATE INDEX jobs_lease_idx ON jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_expiry_idx ON jobs (expires_at) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_alert_idx ON jobs (alert_id);
CREATE INDEX jobs_live_code_idx ON jobs (message_code)
    WHERE message_code IS NOT NULL AND state IN ('queued', 'running', 'succeeded');
CREATE INDEX jobs_lock_queued_idx ON jobs (lock_key, id)
    WHERE state = 'queued' AND lock_key IS NOT NULL;
-- Jobs that share a lock key run one at a time, in the order they were created.
CREATE UNIQUE INDEX jobs_lock_running_idx ON jobs (lock_key) WHERE state = 'running';

-- Wake the workers (LISTEN capcast_jobs) when a job becomes claimable; delivered at commit.
CREATE FUNCTION capcast_notify_job() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM pg_notify('capcast_jobs', NEW.kind::text);
    RETURN NULL;
END;
$$;
CREATE TRIGGER jobs_notify_insert AFTER INSERT ON jobs
    FOR EACH ROW WHEN (NEW.state = 'queued') EXECUTE FUNCTION capcast_notify_job();
CREATE TRIGGER jobs_notify_requeue AFTER UPDATE OF state ON jobs
    FOR EACH ROW WHEN (NEW.state = 'queued' AND OLD.state <> 'queued')
    EXECUTE FUNCTION capcast_notify_job();

-- One row per request to a peer (an SMPP PDU, a CBC REST call), written before it is sent.
CREATE TABLE submissions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id bigint NOT NULL REFERENCES jobs (id),
    attempt integer NOT NULL,
    item text NOT NULL,
    sequence_number bigint,
    message_id text,
    status submission_status NOT NULL DEFAULT 'pending',
    sent_at timestamptz NOT NULL DEFAULT now(),
    acked_at timestamptz,
    error text,
    details jsonb
);
CREATE INDEX submissions_job_item_idx ON submissions (job_id, item);
CREATE INDEX submissions_message_idx ON submissions (message_id) WHERE message_id IS NOT NULL;

-- Delivery receipts (SMPP deliver_sm, CBC reports); submission_id NULL until matched.
CREATE TABLE receipts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    operator text NOT NULL,
    gateway text NOT NULL,
    message_id text NOT NULL,
    submission_id bigint REFERENCES submissions (id),
    state text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    raw jsonb
);
CREATE INDEX receipts_message_idx ON receipts (operator, gateway, message_id);
CREATE INDEX receipts_submission_idx ON receipts (submission_id);

-- Subscribers reported present per cell by an operator (for location-based SMS).
-- Millions of rows: the primary key serves upserts, one covering index serves
-- "who is in these cells" as an index-only scan; nothing else is indexed.
CREATE TABLE presence (
    operator text NOT NULL,
    msisdn text NOT NULL,
    cell_id text NOT NULL,
    reported_at timestamptz NOT NULL,
    PRIMARY KEY (operator, msisdn)
);
CREATE INDEX presence_cell_idx ON presence (operator, cell_id) INCLUDE (msisdn, reported_at);

-- Who did what. Append-only: the triggers refuse UPDATE, DELETE and TRUNCATE.
CREATE TABLE audit_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL,
    action text NOT NULL,
    subject text,
    details jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_subject_idx ON audit_log (subject, id);

CREATE FUNCTION capcast_audit_append_only() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION capcast_audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION capcast_audit_append_only();

-- Feed polling (migration 0002). Per polled feed URL: the validators of its last complete
-- poll (sent back as If-None-Match / If-Modified-Since) and how its polls have been going.
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
