-- Named queries of the PostgreSQL backend, parsed once by provena_jobd.queue.dialect.
-- Writes that touch many jobs take arrays (unnest), so one statement serves a whole group.

-- name: insert_batches
INSERT INTO batches (batch_id, username, created_timestamp)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]);

-- name: insert_jobs
INSERT INTO jobs (session_id, created_timestamp, username, batch_id, job_type, job_sub_type,
                  status, payload, max_attempts, run_after, parent_session_id, retry_of, info)
SELECT s, c, u, b, t, st, 'PENDING', p, m, r, ps, ro, i
FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::bytea[], $8::int[], $9::float8[], $10::text[], $11::text[], $12::text[])
     WITH ORDINALITY AS u(s, c, u, b, t, st, p, m, r, ps, ro, i, n)
ORDER BY n;

-- name: insert_records
INSERT INTO records (record_id, kind, session_id, username, data, created)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::float8[]);

-- name: get_batch_owner
SELECT username FROM batches WHERE batch_id = $1;

-- name: get_job
SELECT * FROM jobs WHERE session_id = $1;

-- name: get_position
SELECT seq, created_timestamp, username, batch_id FROM jobs WHERE session_id = $1;

-- name: claim_jobs
-- Up to $5 waiting jobs of one type, oldest first; rows another node is claiming are skipped.
UPDATE jobs
SET status = 'DEQUEUED', info = $1, attempt = attempt + 1, worker_id = $2,
    lease_expires_at = $3, claimed_at = $7
WHERE seq IN (SELECT seq FROM jobs
              WHERE status = 'PENDING' AND job_type = $4 AND run_after <= $6
              ORDER BY seq LIMIT $5 FOR UPDATE SKIP LOCKED)
RETURNING seq, session_id, created_timestamp, username, batch_id, job_type, job_sub_type,
          payload, attempt, max_attempts;

-- name: start_jobs
UPDATE jobs SET status = 'IN_PROGRESS', info = u.info, started_timestamp = u.now
FROM unnest($1::text[], $2::int[], $3::text[], $4::float8[]) AS u(session_id, attempt, info, now)
WHERE jobs.session_id = u.session_id AND jobs.attempt = u.attempt AND jobs.status = 'DEQUEUED'
RETURNING jobs.session_id, jobs.attempt;

-- name: finish_jobs
UPDATE jobs SET status = u.status, info = u.info, result = u.result, finished_timestamp = u.now,
                lease_expires_at = NULL, worker_id = NULL
FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::bytea[], $6::float8[])
     AS u(session_id, attempt, status, info, result, now)
WHERE jobs.session_id = u.session_id AND jobs.attempt = u.attempt
  AND jobs.status IN ('DEQUEUED', 'IN_PROGRESS')
RETURNING jobs.session_id, jobs.attempt;

-- name: held_unstarted
-- The held jobs ($1, $2) still DEQUEUED, each once: the type and claim time of each, locked
-- until the requeue commits (a start on another connection waits, then finds it requeued).
SELECT job_type, claimed_at FROM jobs
WHERE (session_id, attempt) IN (SELECT * FROM unnest($1::text[], $2::int[]))
  AND status = 'DEQUEUED' AND NOT suspect
FOR UPDATE;

-- name: give_back_starts
-- Starts given back ($4 each) to the start windows ($1 type, $2 length, $3 start), where
-- those are still the current ones.
UPDATE start_windows w SET count = greatest(w.count - u.k, 0)
FROM unnest($1::text[], $2::float8[], $3::float8[], $4::int[]) AS u(job_type, length, start, k)
WHERE w.job_type = u.job_type AND w.length = u.length AND w.start = u.start;

-- name: requeue_jobs
-- Back to PENDING, `refund` (1) giving the attempt back. A job whose cancel was recorded
-- while it ran would run again: it ends FAILED at `now` instead, with the cancel's words
-- put into $7 at {info}. RETURNING gives the status each was left in.
UPDATE jobs SET
    status = CASE WHEN jobs.cancel_requested_by IS NULL THEN 'PENDING' ELSE 'FAILED' END,
    info = CASE WHEN jobs.cancel_requested_by IS NULL THEN u.info
                ELSE replace($7, '{info}', jobs.cancel_requested_by) END,
    run_after = CASE WHEN jobs.cancel_requested_by IS NULL THEN u.run_after
                     ELSE jobs.run_after END,
    attempt = CASE WHEN jobs.cancel_requested_by IS NULL THEN jobs.attempt - u.refund
                   ELSE jobs.attempt END,
    started_timestamp = CASE WHEN jobs.cancel_requested_by IS NULL THEN NULL
                             ELSE jobs.started_timestamp END,
    finished_timestamp = CASE WHEN jobs.cancel_requested_by IS NULL THEN NULL ELSE u.now END,
    lease_expires_at = NULL, worker_id = NULL
FROM unnest($1::text[], $2::int[], $3::text[], $4::float8[], $5::int[], $6::float8[])
     AS u(session_id, attempt, info, run_after, refund, now)
WHERE jobs.session_id = u.session_id AND jobs.attempt = u.attempt
  AND jobs.status IN ('DEQUEUED', 'IN_PROGRESS')
RETURNING jobs.session_id, u.attempt, jobs.status;

-- name: report_progress
UPDATE jobs SET info = u.info, progress = coalesce(u.fraction, jobs.progress)
FROM unnest($1::text[], $2::int[], $3::text[], $4::float8[])
     AS u(session_id, attempt, info, fraction)
WHERE jobs.session_id = u.session_id AND jobs.attempt = u.attempt
  AND jobs.status = 'IN_PROGRESS'
RETURNING jobs.session_id, jobs.attempt;

-- name: extend_leases
UPDATE jobs SET lease_expires_at = $3
FROM unnest($1::text[], $2::int[]) AS u(session_id, attempt)
WHERE jobs.session_id = u.session_id AND jobs.attempt = u.attempt
  AND jobs.status IN ('DEQUEUED', 'IN_PROGRESS');

-- name: rescue_end
-- Expired leases that end FAILED: jobs whose cancel was recorded while they ran (they must
-- not run again; $4 is the message, with {info} for the cancel's words), and jobs on their
-- last attempt ($3, with {attempt}).
WITH lost AS (SELECT seq, worker_id FROM jobs
              WHERE status IN ('DEQUEUED', 'IN_PROGRESS') AND lease_expires_at < $1
                AND (attempt >= max_attempts OR cancel_requested_by IS NOT NULL)
              FOR UPDATE SKIP LOCKED)
UPDATE jobs SET status = 'FAILED',
                info = CASE WHEN cancel_requested_by IS NULL
                            THEN replace($3, '{attempt}', attempt::text)
                            ELSE replace($4, '{info}', cancel_requested_by) END,
                finished_timestamp = $2, lease_expires_at = NULL, worker_id = NULL
FROM lost WHERE jobs.seq = lost.seq
RETURNING jobs.session_id, jobs.job_type, lost.worker_id;

-- name: rescue_requeue
-- Other expired leases: back to PENDING after the back-off (base $4, cap $5) from $2, down to
-- the millisecond (clock.truncated_to_ms). (A cancel recorded since `rescue_end` ran is seen
-- here: the row lock re-reads the row.)
WITH lost AS (SELECT seq, worker_id FROM jobs
              WHERE status IN ('DEQUEUED', 'IN_PROGRESS') AND lease_expires_at < $1
                AND attempt < max_attempts AND cancel_requested_by IS NULL
              FOR UPDATE SKIP LOCKED)
UPDATE jobs SET status = 'PENDING', info = replace($3, '{attempt}', attempt::text),
                run_after = floor(($2 + CASE WHEN attempt < 1 THEN 0
                                             ELSE least($5, $4 * power(2, least(attempt - 1, 60)))
                                        END) * 1000) / 1000,
                lease_expires_at = NULL, worker_id = NULL, started_timestamp = NULL
FROM lost WHERE jobs.seq = lost.seq
RETURNING jobs.session_id, jobs.job_type, lost.worker_id;

-- name: job_status
SELECT status FROM jobs WHERE session_id = $1 FOR UPDATE;

-- name: cancel_waiting
UPDATE jobs SET status = 'FAILED', info = $1, finished_timestamp = $2,
                lease_expires_at = NULL, worker_id = NULL
WHERE session_id = $3 AND status IN ('PENDING', 'DEQUEUED');

-- name: request_cancel
UPDATE jobs SET cancel_requested_by = $1 WHERE session_id = $2 AND status = 'IN_PROGRESS';

-- name: fail_unknown_types
UPDATE jobs SET status = 'FAILED', info = replace($2, '{job_type}', job_type),
                finished_timestamp = $3, lease_expires_at = NULL, worker_id = NULL
WHERE status IN ('PENDING', 'DEQUEUED', 'IN_PROGRESS') AND NOT (job_type = ANY($1::text[]))
RETURNING session_id;

-- name: count_waiting
SELECT count(*) FROM (SELECT 1 FROM jobs
                      WHERE status = 'PENDING' AND job_type = $1 AND run_after <= $2 LIMIT $3) AS w;

-- name: waiting_by_type
SELECT job_type, count(*) FROM jobs WHERE status = 'PENDING' GROUP BY job_type;

-- name: batch_counts
SELECT status, count(*) FROM jobs WHERE batch_id = $1 GROUP BY status;

-- name: workflow_root
WITH RECURSIVE up(session_id, parent) AS (
    SELECT session_id, parent_session_id FROM jobs WHERE session_id = $1
    UNION ALL
    SELECT jobs.session_id, jobs.parent_session_id FROM jobs JOIN up ON jobs.session_id = up.parent
)
SELECT session_id FROM up WHERE parent IS NULL;

-- name: workflow_steps
-- The chain below a workflow's root, depth-limited so a cycle could not loop forever.
WITH RECURSIVE down(session_id, depth) AS (
    SELECT $1::text, 0
    UNION ALL
    SELECT jobs.session_id, down.depth + 1 FROM jobs JOIN down
    ON jobs.parent_session_id = down.session_id WHERE down.depth < 16
)
SELECT jobs.* FROM jobs JOIN down USING (session_id) ORDER BY jobs.seq LIMIT $2;

-- name: records_mentioning
SELECT record_id, kind, session_id, username, data, created FROM records
WHERE record_id = $1 OR position(convert_to($1, 'UTF8') IN data) > 0 ORDER BY created LIMIT $2;

-- name: put_meta_if_absent
INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING;

-- name: get_meta
SELECT value FROM meta WHERE key = $1;

-- name: prune_candidates
SELECT finished_timestamp, seq, session_id,
       batch_id IS NULL AND parent_session_id IS NULL
       AND NOT EXISTS (SELECT 1 FROM jobs AS child
                       WHERE child.parent_session_id = jobs.session_id) AS alone
FROM jobs
WHERE finished_timestamp IS NOT NULL AND finished_timestamp < $1
  AND (finished_timestamp, seq) > ($2, $3)
ORDER BY finished_timestamp, seq LIMIT $4;

-- name: prune_member
SELECT session_id, batch_id, parent_session_id, status, finished_timestamp FROM jobs
WHERE session_id = $1;

-- name: prune_batch_members
SELECT session_id FROM jobs WHERE batch_id = $1;

-- name: prune_children
SELECT session_id FROM jobs WHERE parent_session_id = $1;

-- name: delete_records
DELETE FROM records WHERE session_id = ANY($1::text[]);

-- name: delete_jobs
DELETE FROM jobs WHERE session_id = ANY($1::text[]);

-- name: delete_batches
DELETE FROM batches WHERE batch_id = ANY($1::text[]);

-- name: free_expired_slots
DELETE FROM worker_slots WHERE job_type = $1 AND expires_at < $2;

-- name: take_slot
-- The lowest free slot number; a node racing for the same number gets nothing (retry).
INSERT INTO worker_slots (job_type, slot, node, started, expires_at)
SELECT $1, n, $2, $3, $4 FROM generate_series(1, $5::int) AS n
WHERE n NOT IN (SELECT slot FROM worker_slots WHERE job_type = $1)
ORDER BY n LIMIT 1
ON CONFLICT DO NOTHING
RETURNING slot;

-- name: renew_slots
UPDATE worker_slots SET expires_at = $3
WHERE job_type = $1 AND node = $2 AND slot = ANY($4::int[])
RETURNING slot;

-- name: release_slots
DELETE FROM worker_slots WHERE job_type = $1 AND node = $2 AND slot = ANY($3::int[]);

-- name: list_slots
SELECT job_type, slot, node, started, expires_at FROM worker_slots ORDER BY job_type, slot;

-- Scheduling and flow control (issue 14) ------------------------------------------------

-- name: expire_launch_keys
DELETE FROM launch_keys WHERE expires_at <= $1;

-- name: insert_launch_key
INSERT INTO launch_keys (username, key, fingerprint, session_id, batch_id, expires_at)
VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (username, key) DO NOTHING
RETURNING 1;

-- name: get_launch_key
SELECT session_id, batch_id, fingerprint FROM launch_keys WHERE username = $1 AND key = $2;

-- name: is_paused
SELECT 1 FROM paused_types WHERE job_type = $1;

-- name: insert_paused
INSERT INTO paused_types (job_type, paused_at) VALUES ($1, $2) ON CONFLICT DO NOTHING;

-- name: delete_paused
DELETE FROM paused_types WHERE job_type = $1;

-- name: paused_types
SELECT job_type FROM paused_types ORDER BY job_type;

-- name: hold_waiting
-- Say why claimable jobs of a type wait; touches only those that do not say it yet.
UPDATE jobs SET info = $1
WHERE status = 'PENDING' AND job_type = $2 AND run_after <= $3
  AND info IS DISTINCT FROM $1
RETURNING session_id;

-- name: release_waiting
UPDATE jobs SET info = NULL
WHERE status = 'PENDING' AND job_type = $1 AND info = $2
RETURNING session_id;

-- name: lock_start_windows
-- Claims of one limited type, on any node, count their windows one after the other.
SELECT pg_advisory_xact_lock(1785688676, hashtext($1));

-- name: start_windows
SELECT length, start, count FROM start_windows WHERE job_type = $1;

-- name: put_start_windows
INSERT INTO start_windows (job_type, length, start, count)
SELECT $1, * FROM unnest($2::float8[], $3::float8[], $4::int[])
ON CONFLICT (job_type, length) DO UPDATE SET start = excluded.start, count = excluded.count;

-- name: any_claimable
SELECT 1 FROM jobs WHERE status = 'PENDING' AND job_type = $1 AND run_after <= $2 LIMIT 1;

-- name: insert_schedule_fire
INSERT INTO schedule_fires (schedule, due_at, session_id) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING
RETURNING 1;

-- name: last_fires
SELECT DISTINCT ON (schedule) schedule, due_at, session_id FROM schedule_fires
ORDER BY schedule, due_at DESC;
-- name: queue_place
-- A job's status, type and back-off, and how many jobs of its type come before it: those
-- claimed (DEQUEUED, waiting for or taking a slot on any node) and those PENDING, claimable
-- at $2 and queued before it (claims take the oldest first).
-- `paused`: its type is paused. `attempted`: claimed at least once. `claimed_at` stays set through a requeue, and a
-- refund may put `attempt` back to 0; `attempt > 0` covers rows claimed before 0006.
SELECT j.status, j.job_type, j.run_after,
       j.attempt > 0 OR j.claimed_at IS NOT NULL AS attempted,
       (SELECT count(*) FROM jobs AS o
        WHERE o.job_type = j.job_type AND o.status = 'PENDING' AND o.seq < j.seq
          AND o.run_after <= $2)
     + (SELECT count(*) FROM jobs AS o
        WHERE o.job_type = j.job_type AND o.status = 'DEQUEUED' AND o.seq < j.seq) AS ahead,
       EXISTS (SELECT 1 FROM paused_types AS p WHERE p.job_type = j.job_type) AS paused
FROM jobs AS j WHERE j.session_id = $1;

-- name: job_attempts
-- A job's attempts, oldest first (written by the triggers of 0006_attempt_history.sql).
SELECT attempt, worker_id, node, claimed_at, started_at, ended_at, outcome, info, retry_at
FROM job_attempts WHERE job_seq = (SELECT seq FROM jobs WHERE session_id = $1) ORDER BY n;

-- name: slots_free
-- Whether a type's cluster holds fewer than $2 worker slots.
SELECT count(*) < $2 FROM worker_slots WHERE job_type = $1;
