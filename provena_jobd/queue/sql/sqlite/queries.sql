-- Named queries of the SQLite backend, parsed once by provena_jobd.queue.sql.
-- name: insert_job
INSERT INTO jobs (session_id, created_timestamp, username, batch_id, job_type, job_sub_type,
                  status, payload, max_attempts, run_after)
VALUES (?, ?, ?, ?, ?, ?, 'PENDING', ?, ?, ?);

-- name: insert_batch
INSERT INTO batches (batch_id, username, created_timestamp) VALUES (?, ?, ?);

-- name: get_batch_owner
SELECT username FROM batches WHERE batch_id = ?;

-- name: get_job
SELECT session_id, created_timestamp, username, batch_id, payload, job_type, job_sub_type,
       status, info, result, started_timestamp, finished_timestamp, attempt
FROM jobs WHERE session_id = ?;

-- name: get_position
SELECT seq, created_timestamp, username, batch_id FROM jobs WHERE session_id = ?;

-- name: claim_jobs
-- Claim up to :limit waiting jobs of one type, oldest first, in one statement.
UPDATE jobs
SET status = 'DEQUEUED', info = :info, attempt = attempt + 1, worker_id = :worker_id,
    lease_expires_at = :lease_expires_at
WHERE seq IN (SELECT seq FROM jobs
              WHERE status = 'PENDING' AND job_type = :job_type AND run_after <= :now
              ORDER BY seq LIMIT :limit)
RETURNING seq, session_id, created_timestamp, username, batch_id, job_type, job_sub_type,
          payload, attempt, max_attempts;

-- name: start_job
UPDATE jobs SET status = 'IN_PROGRESS', info = ?, started_timestamp = ?
WHERE session_id = ? AND attempt = ? AND status = 'DEQUEUED';

-- name: finish_job
UPDATE jobs SET status = ?, info = ?, result = ?, finished_timestamp = ?,
                lease_expires_at = NULL, worker_id = NULL
WHERE session_id = ? AND attempt = ? AND status IN ('DEQUEUED', 'IN_PROGRESS');

-- name: requeue_job
-- Back to PENDING: a lost worker, a transient failure or a graceful shutdown.
UPDATE jobs SET status = 'PENDING', info = ?, run_after = ?, attempt = attempt - ?,
                lease_expires_at = NULL, worker_id = NULL, started_timestamp = NULL
WHERE session_id = ? AND attempt = ? AND status IN ('DEQUEUED', 'IN_PROGRESS');

-- name: extend_lease
UPDATE jobs SET lease_expires_at = ?
WHERE session_id = ? AND attempt = ? AND status IN ('DEQUEUED', 'IN_PROGRESS');

-- name: expired_leases
SELECT session_id, job_type, attempt, max_attempts FROM jobs
WHERE status IN ('DEQUEUED', 'IN_PROGRESS') AND lease_expires_at < ?;

-- name: count_waiting
SELECT count(*) FROM (SELECT 1 FROM jobs
                      WHERE status = 'PENDING' AND job_type = ? AND run_after <= ? LIMIT ?);

-- name: waiting_by_type
SELECT job_type, count(*) FROM jobs WHERE status = 'PENDING' GROUP BY job_type;

-- name: current_status
SELECT status FROM jobs WHERE session_id = ? AND attempt = ?;
