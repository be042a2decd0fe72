-- A job whose start was folded into its finish (SQLite only: sqlite_fold.py) goes from
-- DEQUEUED to its end in one UPDATE that also sets its started time, so job_attempt_started
-- does not fire; the attempt's end records the start then. A job ended from DEQUEUED that
-- never started has no started time (every way back to PENDING clears it), and its
-- attempt's stays empty. The trigger is 0007's with that one column added.

DROP TRIGGER job_attempt_ended;

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
            WHEN NEW.attempt < OLD.attempt
             AND NEW.info LIKE 'Returned to the queue:%'
             AND NEW.info NOT LIKE 'Returned to the queue: jobd shut down%' THEN 'returned'
            WHEN NEW.attempt < OLD.attempt THEN 'requeued_at_shutdown'
            ELSE 'retrying'
        END,
        ended_at = CASE
            WHEN NEW.status IN ('SUCCEEDED', 'FAILED') THEN NEW.finished_timestamp
            WHEN NEW.info LIKE 'Requeued: its worker was lost%' THEN OLD.lease_expires_at
            WHEN NEW.attempt < OLD.attempt AND NEW.suspect = OLD.suspect THEN NEW.run_after
        END,
        retry_at = CASE WHEN NEW.status = 'PENDING' THEN NEW.run_after END,
        started_at = CASE
            WHEN OLD.status = 'DEQUEUED' AND NEW.status IN ('SUCCEEDED', 'FAILED')
             AND NEW.started_timestamp IS NOT OLD.started_timestamp THEN NEW.started_timestamp
            ELSE started_at
        END,
        info = NEW.info
    WHERE job_seq = NEW.seq AND n = (SELECT max(n) FROM job_attempts WHERE job_seq = NEW.seq);
END;
