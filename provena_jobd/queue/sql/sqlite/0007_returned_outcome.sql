-- An attempt handed back before it could run, for a reason other than a shutdown, is
-- `returned`: a worker that left before its claim was answered, or a pool handing back what it
-- claimed ahead beyond its reach. Both refund the attempt, as a shutdown does, and their info
-- starts "Returned to the queue:" and says why; 0006 called every refunded requeue
-- `requeued_at_shutdown`. The trigger is 0006's with that one case added.

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
        info = NEW.info
    WHERE job_seq = NEW.seq AND n = (SELECT max(n) FROM job_attempts WHERE job_seq = NEW.seq);
END;
