-- An attempt handed back before it could run, for a reason other than a shutdown, is
-- `returned` (see the SQLite migration 0007): 0006's function with that one case added; the
-- trigger that calls it is unchanged.

CREATE OR REPLACE FUNCTION job_attempts_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'PENDING' AND NEW.status = 'DEQUEUED' THEN
        INSERT INTO job_attempts (job_seq, n, attempt, worker_id, node, claimed_at)
        SELECT NEW.seq, coalesce(max(n), 0) + 1, NEW.attempt, NEW.worker_id,
               nullif(current_setting('jobd.node', true), ''), NEW.claimed_at
        FROM job_attempts WHERE job_seq = NEW.seq;
    ELSIF OLD.status = 'DEQUEUED' AND NEW.status = 'IN_PROGRESS' THEN
        UPDATE job_attempts SET started_at = NEW.started_timestamp
        WHERE job_seq = NEW.seq
          AND n = (SELECT max(n) FROM job_attempts WHERE job_seq = NEW.seq);
    ELSIF OLD.status IN ('DEQUEUED', 'IN_PROGRESS')
      AND NEW.status IN ('SUCCEEDED', 'FAILED', 'PENDING') THEN
        UPDATE job_attempts SET
            outcome = CASE
                WHEN NEW.status = 'SUCCEEDED' THEN 'succeeded'
                WHEN NEW.status = 'FAILED' AND (OLD.cancel_requested_by IS NOT NULL
                                                OR NEW.info LIKE 'Cancelled by %') THEN 'cancelled'
                WHEN NEW.status = 'FAILED' THEN 'failed'
                WHEN NEW.info LIKE 'Requeued: its worker was lost%' THEN 'lease_lost'
                WHEN NEW.suspect AND NOT OLD.suspect THEN 'crash_suspect'
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
        WHERE job_seq = NEW.seq
          AND n = (SELECT max(n) FROM job_attempts WHERE job_seq = NEW.seq);
    END IF;
    RETURN NULL;
END;
$$;
