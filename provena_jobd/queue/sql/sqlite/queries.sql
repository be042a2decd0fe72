-- Named queries of the SQLite backend, parsed once by provena_jobd.queue.dialect.
-- name: insert_job
INSERT INTO jobs (session_id, created_timestamp, username, batch_id, job_type, job_sub_type,
                  status, payload, max_attempts, run_after, parent_session_id, retry_of, info)
VALUES (?, ?, ?, ?, ?, ?, 'PENDING', ?, ?, ?, ?, ?, ?);

-- name: insert_jobs_bulk
-- insert_job for many jobs in one statement: ?1 is a JSON array of insert_job's rows (the
-- payload as text). One statement runs without taking the Python GIL back per row.
INSERT INTO jobs (session_id, created_timestamp, username, batch_id, job_type, job_sub_type,
                  status, payload, max_attempts, run_after, parent_session_id, retry_of, info)
SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
       json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]'),
       'PENDING', CAST(json_extract(value, '$[6]') AS BLOB), json_extract(value, '$[7]'),
       json_extract(value, '$[8]'), json_extract(value, '$[9]'), json_extract(value, '$[10]'),
       json_extract(value, '$[11]')
FROM json_each(?1) ORDER BY key;

-- name: insert_record
INSERT INTO records (record_id, kind, session_id, username, data, created)
VALUES (?, ?, ?, ?, ?, ?);

-- name: insert_batch
INSERT INTO batches (batch_id, username, created_timestamp) VALUES (?, ?, ?);

-- name: get_batch_owner
SELECT username FROM batches WHERE batch_id = ?;

-- name: get_job
SELECT session_id, created_timestamp, username, batch_id, payload, job_type, job_sub_type,
       status, info, result, started_timestamp, finished_timestamp, attempt,
       parent_session_id, retry_of, progress
FROM jobs WHERE session_id = ?;

-- name: get_position
SELECT seq, created_timestamp, username, batch_id FROM jobs WHERE session_id = ?;

-- name: claim_jobs
-- Claim up to :limit waiting jobs of one type, oldest first, in one statement.
UPDATE jobs
SET status = 'DEQUEUED', info = :info, attempt = attempt + 1, worker_id = :worker_id,
    lease_expires_at = :lease_expires_at, claimed_at = :claimed_at
WHERE seq IN (SELECT seq FROM jobs
              WHERE status = 'PENDING' AND job_type = :job_type AND run_after <= :now
              ORDER BY seq LIMIT :limit)
RETURNING seq, session_id, created_timestamp, username, batch_id, job_type, job_sub_type,
          payload, attempt, max_attempts;

-- name: report_progress
UPDATE jobs SET info = ?, progress = coalesce(?, progress)
WHERE session_id = ? AND attempt = ? AND status = 'IN_PROGRESS';

-- name: cancel_waiting
UPDATE jobs SET status = 'FAILED', info = ?, finished_timestamp = ?,
                lease_expires_at = NULL, worker_id = NULL
WHERE session_id = ? AND status IN ('PENDING', 'DEQUEUED');

-- name: fail_job
UPDATE jobs SET status = 'FAILED', info = ?, finished_timestamp = ?,
                lease_expires_at = NULL, worker_id = NULL
WHERE session_id = ? AND status IN ('PENDING', 'DEQUEUED', 'IN_PROGRESS');

-- name: request_cancel
UPDATE jobs SET cancel_requested_by = ? WHERE session_id = ? AND status = 'IN_PROGRESS';

-- name: batch_counts
SELECT status, count(*) FROM jobs WHERE batch_id = ? GROUP BY status;

-- name: workflow_root
WITH RECURSIVE up(session_id, parent) AS (
    SELECT session_id, parent_session_id FROM jobs WHERE session_id = ?
    UNION ALL
    SELECT jobs.session_id, jobs.parent_session_id FROM jobs JOIN up ON jobs.session_id = up.parent
)
SELECT session_id FROM up WHERE parent IS NULL;

-- name: records_mentioning
SELECT record_id, kind, session_id, username, data, created FROM records
WHERE record_id = ?1 OR instr(data, ?1) > 0 ORDER BY created LIMIT ?2;

-- name: get_meta
SELECT value FROM meta WHERE key = ?;

-- name: put_meta_if_absent
INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?);

-- name: start_job
UPDATE jobs SET status = 'IN_PROGRESS', info = ?, started_timestamp = ?
WHERE session_id = ? AND attempt = ? AND status = 'DEQUEUED';

-- name: start_jobs_bulk
-- start_job for many jobs in one statement: ?1 is a JSON array of start_job's rows.
UPDATE jobs SET status = 'IN_PROGRESS', info = json_extract(u.value, '$[0]'),
                started_timestamp = json_extract(u.value, '$[1]')
FROM json_each(?1) AS u
WHERE jobs.session_id = json_extract(u.value, '$[2]')
  AND jobs.attempt = json_extract(u.value, '$[3]') AND jobs.status = 'DEQUEUED';

-- name: finish_job
UPDATE jobs SET status = ?, info = ?, result = ?, finished_timestamp = ?,
                lease_expires_at = NULL, worker_id = NULL
WHERE session_id = ? AND attempt = ? AND status IN ('DEQUEUED', 'IN_PROGRESS');

-- name: finish_jobs_bulk
-- finish_job for many jobs in one statement: ?1 is a JSON array of finish_job's rows (the
-- result as text).
UPDATE jobs SET status = json_extract(u.value, '$[0]'), info = json_extract(u.value, '$[1]'),
                result = CAST(json_extract(u.value, '$[2]') AS BLOB),
                finished_timestamp = json_extract(u.value, '$[3]'),
                lease_expires_at = NULL, worker_id = NULL
FROM json_each(?1) AS u
WHERE jobs.session_id = json_extract(u.value, '$[4]')
  AND jobs.attempt = json_extract(u.value, '$[5]')
  AND jobs.status IN ('DEQUEUED', 'IN_PROGRESS');

-- name: start_and_finish_job
-- start_job and finish_job in one UPDATE, for a start folded into its finish (sqlite_fold.py):
-- the job goes from DEQUEUED to its end, with its started time.
UPDATE jobs SET status = ?, info = ?, result = ?, finished_timestamp = ?, started_timestamp = ?,
                lease_expires_at = NULL, worker_id = NULL
WHERE session_id = ? AND attempt = ? AND status = 'DEQUEUED';

-- name: start_and_finish_jobs_bulk
-- start_and_finish_job for many jobs in one statement: ?1 is a JSON array of its rows.
UPDATE jobs SET status = json_extract(u.value, '$[0]'), info = json_extract(u.value, '$[1]'),
                result = CAST(json_extract(u.value, '$[2]') AS BLOB),
                finished_timestamp = json_extract(u.value, '$[3]'),
                started_timestamp = json_extract(u.value, '$[4]'),
                lease_expires_at = NULL, worker_id = NULL
FROM json_each(?1) AS u
WHERE jobs.session_id = json_extract(u.value, '$[5]')
  AND jobs.attempt = json_extract(u.value, '$[6]')
  AND jobs.status = 'DEQUEUED';

-- name: held_unstarted
-- A held job still DEQUEUED (not a crash suspect, whose claim counted no start): its type and
-- claim time.
SELECT job_type, claimed_at FROM jobs
WHERE session_id = ? AND attempt = ? AND status = 'DEQUEUED' AND suspect = 0;

-- name: give_back_starts
-- Starts given back to a start window, where it is still the current one.
UPDATE start_windows SET count = max(count - ?, 0) WHERE job_type = ? AND length = ? AND start = ?;

-- name: requeue_job
-- Back to PENDING: a lost worker, a transient failure or a graceful shutdown; :refund (1)
-- gives the attempt back. A job whose cancel was recorded while it ran would run again: it
-- ends FAILED at :now instead, with the cancel's words put into :cancelled at {info}.
UPDATE jobs SET
    status = CASE WHEN cancel_requested_by IS NULL THEN 'PENDING' ELSE 'FAILED' END,
    info = CASE WHEN cancel_requested_by IS NULL THEN :info
                ELSE replace(:cancelled, '{info}', cancel_requested_by) END,
    run_after = CASE WHEN cancel_requested_by IS NULL THEN :run_after ELSE run_after END,
    attempt = CASE WHEN cancel_requested_by IS NULL THEN attempt - :refund ELSE attempt END,
    started_timestamp = CASE WHEN cancel_requested_by IS NULL THEN NULL
                             ELSE started_timestamp END,
    finished_timestamp = CASE WHEN cancel_requested_by IS NULL THEN NULL ELSE :now END,
    lease_expires_at = NULL, worker_id = NULL
WHERE session_id = :session_id AND attempt = :attempt AND status IN ('DEQUEUED', 'IN_PROGRESS')
RETURNING status;

-- name: extend_lease
UPDATE jobs SET lease_expires_at = ?
WHERE session_id = ? AND attempt = ? AND status IN ('DEQUEUED', 'IN_PROGRESS');

-- name: expired_leases
SELECT session_id, job_type, attempt, max_attempts, worker_id, cancel_requested_by FROM jobs
WHERE status IN ('DEQUEUED', 'IN_PROGRESS') AND lease_expires_at < ?;

-- name: count_waiting
SELECT count(*) FROM (SELECT 1 FROM jobs
                      WHERE status = 'PENDING' AND job_type = ? AND run_after <= ? LIMIT ?);

-- name: waiting_by_type
SELECT job_type, count(*) FROM jobs WHERE status = 'PENDING' GROUP BY job_type;

-- name: job_status
SELECT status FROM jobs WHERE session_id = ?;

-- name: prune_candidates
-- Finished jobs older than the cut-off, oldest first, after where the last pass stopped.
-- `alone`: in no batch and no workflow, so it can go without looking further.
SELECT finished_timestamp, seq, session_id,
       batch_id IS NULL AND parent_session_id IS NULL
       AND NOT EXISTS (SELECT 1 FROM jobs AS child
                       WHERE child.parent_session_id = jobs.session_id) AS alone
FROM jobs
WHERE finished_timestamp IS NOT NULL AND finished_timestamp < :before
  AND (finished_timestamp, seq) > (:after_finished, :after_seq)
ORDER BY finished_timestamp, seq LIMIT :limit;

-- name: prune_member
-- One job of a unit being pruned: what ties it to others, and whether it is done.
SELECT session_id, batch_id, parent_session_id, status, finished_timestamp FROM jobs
WHERE session_id = ?;

-- name: prune_batch_members
SELECT session_id FROM jobs WHERE batch_id = ?;

-- name: prune_children
SELECT session_id FROM jobs WHERE parent_session_id = ?;

-- name: delete_job
DELETE FROM jobs WHERE session_id = ?;

-- name: delete_records
DELETE FROM records WHERE session_id = ?;

-- name: delete_batch
DELETE FROM batches WHERE batch_id = ?;

-- name: held_jobs
-- Every job a process held (at startup: the process that died).
SELECT session_id, job_type, attempt, max_attempts, suspect, cancel_requested_by FROM jobs
WHERE status IN ('DEQUEUED', 'IN_PROGRESS');

-- name: requeue_suspect
-- Back to PENDING as a suspect of a crash; `attempt - ?` refunds the attempt (1) or not (0).
UPDATE jobs SET status = 'PENDING', info = ?, run_after = ?, attempt = attempt - ?, suspect = 1,
                lease_expires_at = NULL, worker_id = NULL, started_timestamp = NULL
WHERE session_id = ? AND attempt = ? AND status IN ('DEQUEUED', 'IN_PROGRESS');

-- name: claim_suspect
-- The oldest suspect, whatever its type, to run alone.
UPDATE jobs
SET status = 'DEQUEUED', info = :info, attempt = attempt + 1, worker_id = :worker_id,
    lease_expires_at = :lease_expires_at, claimed_at = round(:now, 3)
WHERE seq = (SELECT seq FROM jobs WHERE suspect = 1 AND status = 'PENDING' ORDER BY seq LIMIT 1)
RETURNING seq, session_id, created_timestamp, username, batch_id, job_type, job_sub_type,
          payload, attempt, max_attempts;

-- name: clear_suspect
UPDATE jobs SET suspect = 0 WHERE session_id = ?;

-- name: count_suspects
SELECT count(*) FROM jobs WHERE suspect = 1 AND status IN ('PENDING', 'DEQUEUED', 'IN_PROGRESS');

-- Scheduling and flow control (issue 14) ------------------------------------------------

-- name: expire_launch_keys
DELETE FROM launch_keys WHERE expires_at <= ?;

-- name: insert_launch_key
INSERT INTO launch_keys (username, key, fingerprint, session_id, batch_id, expires_at)
VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING;

-- name: get_launch_key
SELECT session_id, batch_id, fingerprint FROM launch_keys WHERE username = ? AND key = ?;

-- name: is_paused
SELECT 1 FROM paused_types WHERE job_type = ?;

-- name: insert_paused
INSERT INTO paused_types (job_type, paused_at) VALUES (?, ?) ON CONFLICT DO NOTHING;

-- name: delete_paused
DELETE FROM paused_types WHERE job_type = ?;

-- name: paused_types
SELECT job_type FROM paused_types ORDER BY job_type;

-- name: hold_waiting
-- Say why claimable jobs of a type wait; touches only those that do not say it yet.
UPDATE jobs SET info = :info
WHERE status = 'PENDING' AND job_type = :job_type AND run_after <= :now
  AND info IS NOT :info
RETURNING session_id;

-- name: release_waiting
UPDATE jobs SET info = NULL
WHERE status = 'PENDING' AND job_type = :job_type AND info = :info
RETURNING session_id;

-- name: start_windows
SELECT length, start, count FROM start_windows WHERE job_type = ?;

-- name: put_start_window
INSERT INTO start_windows (job_type, length, start, count) VALUES (?, ?, ?, ?)
ON CONFLICT (job_type, length) DO UPDATE SET start = excluded.start, count = excluded.count;

-- name: any_claimable
SELECT 1 FROM jobs WHERE status = 'PENDING' AND job_type = ? AND run_after <= ? LIMIT 1;

-- name: insert_schedule_fire
INSERT INTO schedule_fires (schedule, due_at, session_id) VALUES (?, ?, ?)
ON CONFLICT DO NOTHING;

-- name: last_fires
SELECT schedule, max(due_at) AS due_at, session_id FROM schedule_fires GROUP BY schedule;
-- name: queue_place
-- A job's status, type and back-off, and how many jobs of its type come before it: those
-- claimed (DEQUEUED, waiting for or taking a slot) and those PENDING, claimable at :now and
-- queued before it (claims take the oldest first).
-- `paused`: its type is paused. `attempted`: claimed at least once. `claimed_at` stays set through a requeue, and a
-- refund may put `attempt` back to 0; `attempt > 0` covers rows claimed before 0006.
SELECT j.status, j.job_type, j.run_after,
       j.attempt > 0 OR j.claimed_at IS NOT NULL AS attempted,
       (SELECT count(*) FROM jobs AS o
        WHERE o.job_type = j.job_type AND o.status = 'PENDING' AND o.seq < j.seq
          AND o.run_after <= :now)
     + (SELECT count(*) FROM jobs AS o
        WHERE o.job_type = j.job_type AND o.status = 'DEQUEUED' AND o.seq < j.seq) AS ahead,
       EXISTS (SELECT 1 FROM paused_types AS p WHERE p.job_type = j.job_type) AS paused
FROM jobs AS j WHERE j.session_id = :session_id;

-- name: job_attempts
-- A job's attempts, oldest first (written by the triggers of 0006_attempt_history.sql).
SELECT attempt, worker_id, node, claimed_at, started_at, ended_at, outcome, info, retry_at
FROM job_attempts WHERE job_seq = (SELECT seq FROM jobs WHERE session_id = ?) ORDER BY n;
