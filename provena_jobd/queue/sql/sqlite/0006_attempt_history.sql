-- Every job keeps its history: one row per attempt, written by triggers in the same
-- transaction as the status change, so no Python on the hot path writes it and it survives
-- restarts with the job. Deleted with the job (retention).
--
-- Times come from the job row as the transition leaves it: the claim's `claimed_at` (set by
-- the claim queries from the claim's `now`), `started_timestamp`, `finished_timestamp`; a
-- requeue has no "now" on the row, so its end is the lease's expiry when the worker was lost,
-- the requeue time when refunded at shutdown (`run_after` is then the requeue's now), and
-- unknown (null) for a retry after an error, whose `retry_at` says when it may run again.

ALTER TABLE jobs ADD COLUMN claimed_at REAL;  -- when the current attempt was claimed

-- Keyed by the job's `seq` (monotonic), not its random session id, so a commit's new rows
-- land together at the end of one B-tree (few pages written per group commit).
CREATE TABLE job_attempts (
    job_seq     INTEGER NOT NULL,  -- jobs.seq
    n           INTEGER NOT NULL,  -- 1, 2, ...: the order of the job's claims
    attempt     INTEGER NOT NULL,  -- the job's attempt number (a refunded one is reused)
    worker_id   TEXT,
    node        TEXT,              -- the node that claimed it, once there are several
    claimed_at  REAL,
    started_at  REAL,
    ended_at    REAL,
    outcome     TEXT,              -- null while it runs; see the trigger below
    info        TEXT,              -- the job's info as the attempt ended
    retry_at    REAL,              -- requeued: not claimable before this
    PRIMARY KEY (job_seq, n)
) WITHOUT ROWID;

CREATE TRIGGER job_attempt_claimed
AFTER UPDATE OF status ON jobs
WHEN NEW.status = 'DEQUEUED' AND OLD.status = 'PENDING'
BEGIN
    INSERT INTO job_attempts (job_seq, n, attempt, worker_id, claimed_at)
    VALUES (NEW.seq,
            coalesce((SELECT max(n) FROM job_attempts WHERE job_seq = NEW.seq), 0) + 1,
            NEW.attempt, NEW.worker_id, NEW.claimed_at);
END;

CREATE TRIGGER job_attempt_started
AFTER UPDATE OF status ON jobs
WHEN NEW.status = 'IN_PROGRESS' AND OLD.status = 'DEQUEUED'
BEGIN
    UPDATE job_attempts SET started_at = NEW.started_timestamp
    WHERE job_seq = NEW.seq AND n = (SELECT max(n) FROM job_attempts WHERE job_seq = NEW.seq);
END;

CREATE TRIGGER job_attempt_ended
AFTER UPDATE OF status ON jobs
WHEN OLD.status IN ('DEQUEUED', 'IN_PROGRESS')
 AND NEW.status IN ('SUCCEEDED', 'FAILED', 'PENDING')
BEGIN
    UPDATE job_attempts SET
        outcome = CASE
            WHEN NEW.status = 'SUCCEEDED' THEN 'succeeded'
            WHEN NEW.status = 'FAILED' AND (OLD.cancel_requested_by IS NOT NULL
                                            OR NEW.info LIKE 'Cancelled by %') THEN 'cancelled'
            WHEN NEW.status = 'FAILED' THEN 'failed'
            WHEN NEW.info LIKE 'Requeued: its worker was lost%' THEN 'lease_lost'
            WHEN NEW.suspect = 1 AND OLD.suspect = 0 THEN 'crash_suspect'
            WHEN NEW.attempt < OLD.attempt THEN 'requeued_at_shutdown'
            ELSE 'retrying'
        END,
        ended_at = CASE
            WHEN NEW.status IN ('SUCCEEDED', 'FAILED') THEN NEW.finished_timestamp
            WHEN NEW.info LIKE 'Requeued: its worker was lost%' THEN OLD.lease_expires_at
            WHEN NEW.attempt < OLD.attempt AND NEW.suspect = OLD.suspect THEN NEW.run_after
        END,
        retry_at = CASE WHEN NEW.status = 'PENDING' THEN NEW.run_after END,
        info = NEW.info
    WHERE job_seq = NEW.seq AND n = (SELECT max(n) FROM job_attempts WHERE job_seq = NEW.seq);
END;

-- Retention deletes a job's attempts with it.
CREATE TRIGGER job_attempts_pruned
AFTER DELETE ON jobs
BEGIN
    DELETE FROM job_attempts WHERE job_seq = OLD.seq;
END;
