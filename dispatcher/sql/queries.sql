-- Every statement that dispatcher.store and dispatcher.queue run, by name.
-- Loaded once by dispatcher.sql.queries(). Times come from the database clock.

-- ---------------------------------------------------------------- migrations

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: migration_lock
-- Session-level: two processes migrating the same database take turns.
SELECT pg_advisory_lock(hashtextextended('capcast.migrate', 0));

-- name: migration_unlock
SELECT pg_advisory_unlock(hashtextextended('capcast.migrate', 0));

-- name: migrations_table_exists
SELECT to_regclass('schema_migrations') IS NOT NULL;

-- name: applied_migrations
SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version;

-- name: record_migration
INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3);

-- name: database_exists
SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1);

-- ---------------------------------------------------------------- authorities

-- name: upsert_authority
INSERT INTO authorities (sender, display_name, profile, allowed_statuses, jurisdiction,
                         signature_required)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (sender) DO UPDATE SET
    display_name = EXCLUDED.display_name,
    profile = EXCLUDED.profile,
    allowed_statuses = EXCLUDED.allowed_statuses,
    jurisdiction = EXCLUDED.jurisdiction,
    signature_required = EXCLUDED.signature_required,
    updated_at = now()
RETURNING id, sender, display_name, profile, allowed_statuses, jurisdiction,
          signature_required, created_at, updated_at;

-- name: get_authority
SELECT id, sender, display_name, profile, allowed_statuses, jurisdiction, signature_required,
       created_at, updated_at
FROM authorities WHERE sender = $1;

-- name: list_authorities
SELECT id, sender, display_name, profile, allowed_statuses, jurisdiction, signature_required,
       created_at, updated_at
FROM authorities ORDER BY sender;

-- ---------------------------------------------------------------- alerts

-- name: insert_raw_alert
-- The bytes go in first, before any parsing: nothing received is ever lost.
INSERT INTO alerts (raw, sha256, source) VALUES ($1, $2, $3)
RETURNING id, sha256, received_at;

-- name: insert_references
-- Each reference resolved to the alert that holds its key, or NULL when unknown.
INSERT INTO alert_references (alert_id, position, sender, identifier, sent, referenced_id)
SELECT $1, r.position::integer, r.sender, r.identifier, r.sent,
       (SELECT a.id FROM alerts a
        WHERE a.sender = r.sender AND a.identifier = r.identifier AND a.sent = r.sent
          AND a.state NOT IN ('refused', 'duplicate') AND a.id <> $1)
FROM unnest($2::text[], $3::text[], $4::timestamptz[]) WITH ORDINALITY
     AS r(sender, identifier, sent, position)
RETURNING position, referenced_id;

-- name: record_validation
-- Fails with a unique violation (alerts_key_unique) when another alert holds the key.
UPDATE alerts SET
    state = $2::alert_state,
    sender = $3, identifier = $4, sent = $5, status = $6, msg_type = $7, scope = $8,
    parsed = $9, findings = $10, refusal_code = $11, refusal_reason = $12, flags = $13,
    expires_at = $14, duplicate_of = $15, conflicts_with = $16,
    authority_id = (SELECT id FROM authorities WHERE sender = $3),
    validated_at = now(),
    finished_at = CASE WHEN $2::alert_state IN ('refused', 'duplicate') THEN now() END
WHERE id = $1 AND state = 'received'
RETURNING id;

-- name: key_owner
-- The alert holding a key, and whether its content equals alert $4's (bytes or parsed form).
SELECT id, (sha256 = (SELECT sha256 FROM alerts WHERE id = $4) OR parsed = $5::jsonb)
           AS same_content
FROM alerts
WHERE sender = $1 AND identifier = $2 AND sent = $3 AND state NOT IN ('refused', 'duplicate');

-- name: resolve_references_to
-- References that arrived before the alert they name.
UPDATE alert_references SET referenced_id = $1
WHERE sender = $2 AND identifier = $3 AND sent = $4 AND referenced_id IS NULL
  AND alert_id <> $1;

-- name: refuse_alert
UPDATE alerts SET state = 'refused', refusal_code = $2, refusal_reason = $3,
                  finished_at = now()
WHERE id = $1 AND state IN ('received', 'validated')
RETURNING id;

-- name: accept_alert
UPDATE alerts SET state = $2::alert_state, plan = $3,
                  flags = flags || ARRAY(SELECT unnest($4::text[]) EXCEPT SELECT unnest(flags)),
                  accepted_at = now(),
                  finished_at = CASE WHEN $2::alert_state = 'accepted' THEN now() END
WHERE id = $1 AND state = 'validated'
RETURNING id;

-- name: alert_state
SELECT state::text FROM alerts WHERE id = $1;

-- name: lock_alert_state
-- Validating an alert holds its row: two validations of one document cannot interleave.
SELECT state::text FROM alerts WHERE id = $1 FOR UPDATE;

-- name: insert_jobs
INSERT INTO jobs (alert_id, operator, gateway, kind, payload, priority, lock_key, expires_at,
                  max_attempts)
SELECT $1, x.operator, x.gateway, x.kind::job_kind, x.payload, x.priority, x.lock_key,
       x.expires_at, x.max_attempts
FROM ROWS FROM (jsonb_to_recordset($2::jsonb) AS (
         operator text, gateway text, kind text, payload jsonb, priority smallint,
         lock_key text, expires_at timestamptz, max_attempts integer)) WITH ORDINALITY
     AS x(operator, gateway, kind, payload, priority, lock_key, expires_at, max_attempts, ord)
ORDER BY x.ord
RETURNING *;

-- name: stop_jobs_of_alerts
-- Cancel (or expire) every unfinished job of some alerts. Rows are locked in id order
-- (jobs before alerts, as everywhere) so that concurrent stops cannot deadlock.
WITH target AS (
    SELECT id, state AS old_state FROM jobs
    WHERE alert_id = ANY($1::bigint[]) AND state IN ('queued', 'running')
    ORDER BY id FOR UPDATE
), stopped AS (
    UPDATE jobs j SET state = $2::job_state, finished_at = now(), last_error = $3,
                      lease_owner = NULL, lease_expires_at = NULL
    FROM target WHERE j.id = target.id
    RETURNING j.id, j.alert_id, target.old_state
), doubtful AS (
    UPDATE submissions s SET status = 'in_doubt'
    FROM stopped WHERE s.job_id = stopped.id AND stopped.old_state = 'running'
                   AND s.status = 'pending'
)
SELECT id, alert_id FROM stopped ORDER BY id;

-- name: stop_alerts
UPDATE alerts SET state = $2::alert_state, stopped_by = $3, finished_at = now()
WHERE id = ANY($1::bigint[]) AND state IN ('accepted', 'planned', 'dispatching', 'done')
RETURNING id;

-- name: lock_alerts
SELECT id FROM alerts WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE;

-- name: finish_alerts
-- An alert whose jobs have all finished is done (expired when every job expired).
-- Callers lock the alerts first (lock_alerts) so that the last two jobs finishing
-- at once cannot both miss each other.
UPDATE alerts a SET state = CASE WHEN f.all_expired THEN 'expired' ELSE 'done' END::alert_state,
                    finished_at = now()
FROM (SELECT alert_id, bool_and(state = 'expired') AS all_expired
      FROM jobs WHERE alert_id = ANY($1::bigint[])
      GROUP BY alert_id
      HAVING bool_and(state IN ('succeeded', 'failed', 'cancelled', 'expired'))) f
WHERE a.id = f.alert_id AND a.state IN ('planned', 'dispatching')
RETURNING a.id, a.state::text;

-- name: get_alert
SELECT id, sha256, source, received_at, state::text, sender, identifier, sent, status,
       msg_type, scope, parsed, findings, refusal_code, refusal_reason, flags, authority_id,
       duplicate_of, conflicts_with, stopped_by, expires_at, plan, validated_at, accepted_at,
       finished_at, octet_length(raw) AS size
FROM alerts WHERE id = $1;

-- name: get_raw_alert
SELECT raw FROM alerts WHERE id = $1;

-- name: find_by_key
SELECT id, sha256, source, received_at, state::text, sender, identifier, sent, status,
       msg_type, scope, parsed, findings, refusal_code, refusal_reason, flags, authority_id,
       duplicate_of, conflicts_with, stopped_by, expires_at, plan, validated_at, accepted_at,
       finished_at, octet_length(raw) AS size
FROM alerts
WHERE sender = $1 AND identifier = $2 AND sent = $3 AND state NOT IN ('refused', 'duplicate');

-- name: list_alerts
-- Newest first; before_id pages backwards. Filters are optional (NULL: any).
SELECT id, sha256, source, received_at, state::text, sender, identifier, sent, status,
       msg_type, scope, parsed, findings, refusal_code, refusal_reason, flags, authority_id,
       duplicate_of, conflicts_with, stopped_by, expires_at, plan, validated_at, accepted_at,
       finished_at, octet_length(raw) AS size
FROM alerts
WHERE ($1::text IS NULL OR status = $1)
  AND ($2::text IS NULL OR sender = $2)
  AND ($3::text[] IS NULL OR state = ANY($3::text[]::alert_state[]))
  AND ($4::timestamptz IS NULL OR received_at >= $4)
  AND ($5::timestamptz IS NULL OR received_at < $5)
  AND ($6::bigint IS NULL OR id < $6)
ORDER BY id DESC
LIMIT $7;

-- name: references_of_alert
SELECT position, sender, identifier, sent, referenced_id
FROM alert_references WHERE alert_id = $1 ORDER BY position;

-- name: jobs_of_alert
SELECT * FROM jobs WHERE alert_id = $1 ORDER BY id;

-- name: submissions_of_alert
SELECT s.* FROM submissions s JOIN jobs j ON j.id = s.job_id
WHERE j.alert_id = $1 ORDER BY s.id;

-- name: receipts_of_alert
SELECT r.* FROM receipts r
JOIN submissions s ON s.id = r.submission_id
JOIN jobs j ON j.id = s.job_id
WHERE j.alert_id = $1 ORDER BY r.id;

-- ---------------------------------------------------------------- receipts

-- name: record_receipt
INSERT INTO receipts (operator, gateway, message_id, submission_id, state, received_at, raw)
VALUES ($1, $2, $3,
        (SELECT s.id FROM submissions s JOIN jobs j ON j.id = s.job_id
         WHERE s.message_id = $3 AND j.operator = $1 AND j.gateway = $2
         ORDER BY s.id DESC LIMIT 1),
        $4, coalesce($5, now()), $6)
RETURNING *;

-- ---------------------------------------------------------------- presence

-- name: upsert_presence
-- A newer report moves a subscriber; an older one (arriving late) is ignored.
INSERT INTO presence AS p (operator, msisdn, cell_id, reported_at)
SELECT $1, x.msisdn, x.cell_id, x.reported_at
FROM unnest($2::text[], $3::text[], $4::timestamptz[]) AS x(msisdn, cell_id, reported_at)
ON CONFLICT (operator, msisdn) DO UPDATE
    SET cell_id = EXCLUDED.cell_id, reported_at = EXCLUDED.reported_at
    WHERE p.reported_at <= EXCLUDED.reported_at;

-- name: delete_presence_of_operator
DELETE FROM presence WHERE operator = $1;

-- name: create_presence_staging
CREATE TEMPORARY TABLE presence_staging (
    operator text, msisdn text, cell_id text, reported_at timestamptz
) ON COMMIT DROP;

-- name: merge_presence_staging
-- The newest report per subscriber wins, within the load and against the table.
INSERT INTO presence AS p (operator, msisdn, cell_id, reported_at)
SELECT DISTINCT ON (msisdn) operator, msisdn, cell_id, reported_at
FROM presence_staging
ORDER BY msisdn, reported_at DESC
ON CONFLICT (operator, msisdn) DO UPDATE
    SET cell_id = EXCLUDED.cell_id, reported_at = EXCLUDED.reported_at
    WHERE p.reported_at <= EXCLUDED.reported_at;

-- name: presence_in_cells
SELECT msisdn, cell_id, reported_at FROM presence
WHERE operator = $1 AND cell_id = ANY($2::text[])
  AND ($3::timestamptz IS NULL OR reported_at >= $3)
ORDER BY cell_id, msisdn;

-- name: count_presence
SELECT count(*) FROM presence WHERE operator = $1;

-- name: prune_presence
DELETE FROM presence WHERE operator = $1 AND reported_at < $2;

-- ---------------------------------------------------------------- inventory

-- name: lock_inventory_operator
SELECT pg_advisory_xact_lock(hashtextextended('capcast.inventory:' || $1, 0));

-- name: deactivate_inventory
UPDATE inventory_versions SET active = false WHERE operator = $1 AND active;

-- name: insert_inventory_version
INSERT INTO inventory_versions (operator, version, path, sha256, cell_count, active)
SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, $5
FROM inventory_versions WHERE operator = $1
RETURNING *;

-- name: activate_inventory_version
UPDATE inventory_versions SET active = true WHERE operator = $1 AND version = $2
RETURNING *;

-- name: active_inventory
SELECT * FROM inventory_versions WHERE operator = $1 AND active;

-- name: list_inventory_versions
SELECT * FROM inventory_versions
WHERE ($1::text IS NULL OR operator = $1)
ORDER BY operator, version;

-- ---------------------------------------------------------------- audit

-- name: append_audit
INSERT INTO audit_log (actor, action, subject, details) VALUES ($1, $2, $3, $4)
RETURNING *;

-- name: audit_entries
SELECT * FROM audit_log
WHERE ($1::text IS NULL OR subject = $1)
  AND ($2::text IS NULL OR action = $2)
  AND ($3::bigint IS NULL OR id < $3)
ORDER BY id DESC
LIMIT $4;

-- ---------------------------------------------------------------- queue

-- name: claim_jobs
-- FOR UPDATE SKIP LOCKED: concurrent workers never wait for, nor take, each other's rows.
-- A job with a lock key waits while an earlier job with the same key is queued or running.
WITH candidates AS (
    SELECT j.id FROM jobs j
    WHERE j.state = 'queued'
      AND j.next_attempt_at <= now()
      AND ($2::text[] IS NULL OR j.kind = ANY($2::text[]::job_kind[]))
      AND ($3::text[] IS NULL OR j.operator = ANY($3::text[]))
      AND (j.expires_at IS NULL OR j.expires_at > now())
      AND (j.lock_key IS NULL OR NOT EXISTS (
            SELECT 1 FROM jobs o
            WHERE o.lock_key = j.lock_key AND o.id <> j.id
              AND (o.state = 'running' OR (o.state = 'queued' AND o.id < j.id))))
    ORDER BY j.priority DESC, j.next_attempt_at, j.id
    LIMIT $4
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE jobs SET state = 'running',
                    attempts = jobs.attempts + 1,
                    lease_owner = $1,
                    lease_expires_at = now() + make_interval(secs => $5),
                    heartbeat_at = now(),
                    started_at = coalesce(jobs.started_at, now())
    FROM candidates WHERE jobs.id = candidates.id
    RETURNING jobs.*
), dispatching AS (
    UPDATE alerts SET state = 'dispatching'
    WHERE id IN (SELECT alert_id FROM claimed) AND state = 'planned'
)
SELECT * FROM claimed ORDER BY priority DESC, next_attempt_at, id;

-- name: heartbeat
UPDATE jobs SET heartbeat_at = now(), lease_expires_at = now() + make_interval(secs => $4)
WHERE id = $1 AND state = 'running' AND lease_owner = $2 AND attempts = $3
RETURNING lease_expires_at;

-- name: job_state
SELECT state::text FROM jobs WHERE id = $1;

-- name: get_job
SELECT * FROM jobs WHERE id = $1;

-- name: complete_job
UPDATE jobs SET state = 'succeeded', finished_at = now(), result = $4,
                lease_owner = NULL, lease_expires_at = NULL
WHERE id = $1 AND state = 'running' AND lease_owner = $2 AND attempts = $3
RETURNING *;

-- name: fail_job
-- Back to the queue after $5 seconds; failed for good when told so ($6 false) or out of
-- attempts; expired when the next attempt would come after the job's expiry. Submissions
-- still pending become in doubt: the next attempt decides what to re-send.
WITH current AS (
    SELECT id,
           CASE WHEN NOT $6::boolean OR attempts >= max_attempts THEN 'failed'
                WHEN expires_at IS NOT NULL
                     AND now() + make_interval(secs => $5) >= expires_at THEN 'expired'
                ELSE 'queued' END::job_state AS next_state
    FROM jobs
    WHERE id = $1 AND state = 'running' AND lease_owner = $2 AND attempts = $3
    FOR UPDATE
), updated AS (
    UPDATE jobs j SET state = c.next_state,
                      next_attempt_at = CASE WHEN c.next_state = 'queued'
                                             THEN now() + make_interval(secs => $5)
                                             ELSE j.next_attempt_at END,
                      finished_at = CASE WHEN c.next_state = 'queued' THEN NULL ELSE now() END,
                      last_error = $4,
                      lease_owner = NULL, lease_expires_at = NULL
    FROM current c WHERE j.id = c.id
    RETURNING j.*
), doubtful AS (
    UPDATE submissions SET status = 'in_doubt'
    WHERE job_id = $1 AND attempt = $3 AND status = 'pending'
      AND EXISTS (SELECT 1 FROM updated)
)
SELECT * FROM updated;

-- name: reclaim_expired_leases
-- A worker that stopped heartbeating (crashed, hung, cut off) loses its jobs: back to the
-- queue, or failed when out of attempts, or expired. What it had in flight is in doubt.
WITH stale AS (
    SELECT id FROM jobs
    WHERE state = 'running' AND lease_expires_at < now()
    ORDER BY id
    FOR UPDATE SKIP LOCKED
), reclaimed AS (
    UPDATE jobs j SET
        state = CASE WHEN j.attempts >= j.max_attempts THEN 'failed'
                     WHEN coalesce(j.expires_at <= now(), false) THEN 'expired'
                     ELSE 'queued' END::job_state,
        finished_at = CASE WHEN j.attempts >= j.max_attempts
                                OR coalesce(j.expires_at <= now(), false) THEN now() END,
        next_attempt_at = now(),
        last_error = format('lease of worker %s expired (attempt %s)', j.lease_owner,
                            j.attempts),
        lease_owner = NULL, lease_expires_at = NULL
    FROM stale WHERE j.id = stale.id
    RETURNING j.id, j.alert_id, j.state::text
), doubtful AS (
    UPDATE submissions s SET status = 'in_doubt'
    FROM reclaimed r WHERE s.job_id = r.id AND s.status = 'pending'
)
SELECT id, alert_id, state FROM reclaimed ORDER BY id;

-- name: expire_due_jobs
WITH due AS (
    SELECT id, state AS old_state FROM jobs
    WHERE state IN ('queued', 'running') AND expires_at <= now()
    ORDER BY id
    FOR UPDATE SKIP LOCKED
), expired AS (
    UPDATE jobs j SET state = 'expired', finished_at = now(),
                      last_error = coalesce(j.last_error || '; ', '')
                                   || 'expired before it finished',
                      lease_owner = NULL, lease_expires_at = NULL
    FROM due WHERE j.id = due.id
    RETURNING j.id, j.alert_id, due.old_state
), doubtful AS (
    UPDATE submissions s SET status = 'in_doubt'
    FROM expired e WHERE s.job_id = e.id AND e.old_state = 'running' AND s.status = 'pending'
)
SELECT id, alert_id FROM expired ORDER BY id;

-- name: next_due
-- Seconds until the earliest queued job that is not yet due becomes due (NULL: none).
SELECT extract(epoch FROM min(next_attempt_at) - now())::float8
FROM jobs
WHERE state = 'queued' AND next_attempt_at > now()
  AND ($1::text[] IS NULL OR kind = ANY($1::text[]::job_kind[]))
  AND ($2::text[] IS NULL OR operator = ANY($2::text[]));

-- name: record_submissions
-- Written before the requests go out, and only while this worker holds the job
-- (FOR SHARE: a concurrent reclaim waits for this insert, or this insert sees the reclaim).
INSERT INTO submissions (job_id, attempt, item, sequence_number, details)
SELECT $1, $3, x.item, x.sequence_number, x.details
FROM ROWS FROM (jsonb_to_recordset($4::jsonb) AS (
         item text, sequence_number bigint, details jsonb)) WITH ORDINALITY
     AS x(item, sequence_number, details, ord)
WHERE EXISTS (SELECT 1 FROM jobs
              WHERE id = $1 AND state = 'running' AND lease_owner = $2 AND attempts = $3
              FOR SHARE)
ORDER BY x.ord
RETURNING id;

-- name: settle_submissions
-- Late answers are still recorded: a submission in doubt becomes what the peer said.
UPDATE submissions s SET status = x.status::submission_status,
                         message_id = coalesce(x.message_id, s.message_id),
                         error = x.error,
                         acked_at = now()
FROM jsonb_to_recordset($1::jsonb) AS x(id bigint, status text, message_id text, error text)
WHERE s.id = x.id AND s.status IN ('pending', 'in_doubt')
RETURNING s.id, s.job_id, s.message_id;

-- name: link_receipts
-- Receipts that arrived before their submission's answer was written.
UPDATE receipts r SET submission_id = s.id
FROM submissions s JOIN jobs j ON j.id = s.job_id
WHERE s.id = ANY($1::bigint[]) AND s.message_id IS NOT NULL
  AND r.submission_id IS NULL AND r.message_id = s.message_id
  AND r.operator = j.operator AND r.gateway = j.gateway;

-- name: job_progress
-- Per item, its latest status: what a resuming worker must not send again.
SELECT DISTINCT ON (item) item, status::text, attempt
FROM submissions WHERE job_id = $1
ORDER BY item, (status IN ('acknowledged', 'rejected')) DESC, id DESC;

-- name: submissions_of_job
SELECT * FROM submissions WHERE job_id = $1 ORDER BY id;

-- name: queue_counts
SELECT kind::text, state::text, count(*) FROM jobs
WHERE ($1::bigint IS NULL OR alert_id = $1)
GROUP BY kind, state ORDER BY kind, state;

-- ---------------------------------------------------------------- http api

-- name: search_alerts
-- list_alerts with two more filters: $7 an operator that must have a job for the alert;
-- $8 a source (api:TOKEN) whose alerts pass the sender filter too (a refused document
-- without a readable sender still belongs to the token that sent it).
SELECT id, sha256, source, received_at, state::text AS state, sender, identifier, sent,
       status, msg_type, scope, parsed, findings, refusal_code, refusal_reason, flags,
       authority_id, duplicate_of, conflicts_with, stopped_by, expires_at, plan,
       validated_at, accepted_at, finished_at, octet_length(raw) AS size
FROM alerts
WHERE ($1::text IS NULL OR status = $1)
  AND ($2::text IS NULL OR sender = $2 OR ($8::text IS NOT NULL AND source = $8))
  AND ($3::text[] IS NULL OR state = ANY($3::text[]::alert_state[]))
  AND ($4::timestamptz IS NULL OR received_at >= $4)
  AND ($5::timestamptz IS NULL OR received_at < $5)
  AND ($6::bigint IS NULL OR id < $6)
  AND ($7::text IS NULL OR EXISTS (SELECT 1 FROM jobs j
                                   WHERE j.alert_id = alerts.id AND j.operator = $7))
ORDER BY id DESC
LIMIT $9;

-- name: list_jobs
-- Newest first; every filter optional. $4: only jobs of alerts with this sender.
SELECT j.* FROM jobs j
WHERE ($1::bigint IS NULL OR j.alert_id = $1)
  AND ($2::text IS NULL OR j.operator = $2)
  AND ($3::text[] IS NULL OR j.state = ANY($3::text[]::job_state[]))
  AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM alerts a
                                   WHERE a.id = j.alert_id AND a.sender = $4))
  AND ($5::text IS NULL OR j.kind = $5::job_kind)
  AND ($6::bigint IS NULL OR j.id < $6)
ORDER BY j.id DESC
LIMIT $7;

-- name: receipts_of_job
SELECT r.* FROM receipts r
JOIN submissions s ON s.id = r.submission_id
WHERE s.job_id = $1 ORDER BY r.id;

-- ---------------------------------------------------------------- feeds

-- name: get_feed_state
SELECT url, etag, last_modified, checked_at, changed_at, failures, last_error
FROM feed_state WHERE url = $1;

-- name: save_feed_state
-- $6: the feed's content changed in this poll (a 200 whose documents were all handled).
INSERT INTO feed_state (url, etag, last_modified, checked_at, changed_at, failures, last_error)
VALUES ($1, $2, $3, now(), CASE WHEN $6::boolean THEN now() END, $4, $5)
ON CONFLICT (url) DO UPDATE SET
    etag = EXCLUDED.etag,
    last_modified = EXCLUDED.last_modified,
    checked_at = now(),
    changed_at = coalesce(EXCLUDED.changed_at, feed_state.changed_at),
    failures = EXCLUDED.failures,
    last_error = EXCLUDED.last_error
RETURNING url, etag, last_modified, checked_at, changed_at, failures, last_error;

-- name: known_feed_documents
SELECT url FROM feed_documents WHERE url = ANY($1::text[]);

-- name: record_feed_document
INSERT INTO feed_documents (url, feed_url, alert_id) VALUES ($1, $2, $3)
ON CONFLICT (url) DO NOTHING;

-- ---------------------------------------------------------------- broadcasts on the air

-- name: latest_broadcast_submission
-- The latest acknowledged create, replace, cancel or stop (in the order they were sent) of
-- broadcast message identifier $3 on gateway $2 of operator $1: a create or replace is what
-- is on the air (message_id: the SMSC's or CBC's id of it), a cancel or stop means nothing
-- is. Items are <operation>:$3, the SMPP port's may add #<part> and @<id>. $4: only this
-- message code (serial number bits 4-13; NULL: any); $5: only this exact serial number
-- (NULL: any); $6: leave this job's submissions out (NULL: none).
SELECT s.* FROM jobs j JOIN submissions s ON s.job_id = j.id
WHERE j.operator = $1 AND j.gateway = $2
  AND j.kind IN ('smpp-broadcast', 'cbc-rest')
  AND ($6::bigint IS NULL OR j.id <> $6)
  AND s.item ~ ('^(create|replace|cancel|stop):' || $3::integer || '(#[0-9]+)?(@.*)?$')
  AND s.status = 'acknowledged'
  AND ($4::integer IS NULL
       OR ((s.details ->> 'serial_number')::integer >> 4) & 1023 = $4)
  AND ($5::integer IS NULL OR (s.details ->> 'serial_number')::integer = $5)
ORDER BY s.id DESC
LIMIT 1;

-- name: broadcast_parts_on_air
-- The parts of an SMPP broadcast still on the air. Among the acknowledged create, replace,
-- cancel and stop submissions of broadcast message identifier $3 on smpp-broadcast gateway
-- $2 of operator $1 (items <operation>:$3, with or without #<part> and @<id>) and with $4
-- (message code, NULL: any) and $5 (serial number, NULL: any), the version is the job of the
-- latest create or replace; its parts on the air are its create and replace submissions of
-- $3 whose message id (the SMSC's) no acknowledged cancel or stop of $3 sent later names
-- (they settle with the id they stopped), whatever their serial number. $6: leave this
-- job's submissions out, its cancels included (NULL: none).
-- No row: no submission passes the filters; one row of NULLs: some do, but no part of the
-- version is on the air (the LEFT JOIN keeps the row that tells the two apart).
WITH channel AS (
    SELECT s.* FROM jobs j JOIN submissions s ON s.job_id = j.id
    WHERE j.operator = $1 AND j.gateway = $2 AND j.kind = 'smpp-broadcast'
      AND ($6::bigint IS NULL OR j.id <> $6)
      AND s.item ~ ('^(create|replace|cancel|stop):' || $3::integer || '(#[0-9]+)?(@.*)?$')
      AND s.status = 'acknowledged'
), matching AS (
    SELECT * FROM channel
    WHERE ($4::integer IS NULL OR ((details ->> 'serial_number')::integer >> 4) & 1023 = $4)
      AND ($5::integer IS NULL OR (details ->> 'serial_number')::integer = $5)
), version AS (
    SELECT job_id FROM matching
    WHERE details ->> 'operation' IN ('create', 'replace')
    ORDER BY id DESC
    LIMIT 1
), on_air AS (
    SELECT p.* FROM matching p JOIN version v ON v.job_id = p.job_id
    WHERE p.details ->> 'operation' IN ('create', 'replace')
      AND p.message_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM channel c
                      WHERE c.id > p.id AND c.message_id = p.message_id
                        AND c.details ->> 'operation' IN ('cancel', 'stop'))
)
SELECT on_air.* FROM (SELECT WHERE EXISTS (SELECT 1 FROM matching)) AS anything
LEFT JOIN on_air ON true
ORDER BY on_air.id;

-- ---------------------------------------------------------------- message codes

-- name: live_message_codes
-- Message codes of broadcasts that may be on the air at $1: created or replaced (or about
-- to be), not yet expired, of an alert not cancelled. A new alert chain takes a code
-- outside this set, or handsets would drop its broadcast as a repeat of another one
-- (TS 23.041 duplicate detection). An Update's replace keeps its chain's code in use.
SELECT DISTINCT j.message_code AS code
FROM jobs j JOIN alerts a ON a.id = j.alert_id
WHERE j.message_code IS NOT NULL
  AND j.state IN ('queued', 'running', 'succeeded')
  AND (j.expires_at IS NULL OR j.expires_at > $1)
  AND a.state NOT IN ('cancelled', 'expired');
