-- Every job keeps its history (see the SQLite migration 0006, whose logic this repeats): one
-- row per attempt, written by a row trigger in the same transaction as the status change,
-- deleted with the job. Numbered 0006 as on SQLite; 0005 is left to another change.
--
-- `node` is the jobd node whose connection ran the claim (its `jobd.node` setting, which
-- every node sets on its connections), else null.

ALTER TABLE jobs ADD COLUMN claimed_at double precision;  -- when the current attempt was claimed

CREATE TABLE job_attempts (
    job_seq     bigint  NOT NULL REFERENCES jobs (seq) ON DELETE CASCADE,
    n           integer NOT NULL,  -- 1, 2, ...: the order of the job's claims
    attempt     integer NOT NULL,  -- the job's attempt number (a refunded one is reused)
    worker_id   text,
    node        text,
    claimed_at  double precision,
    started_at  double precision,
    ended_at    double precision,
    outcome     text,              -- null while it runs; see the function below
    info        text,              -- the job's info as the attempt ended
    retry_at    double precision,  -- requeued: not claimable before this
    PRIMARY KEY (job_seq, n)
);

-- The claim inserts n = max + 1: safe against another node because the claim holds the
-- job's row lock until it commits. The BEFORE trigger that keeps a cancelled job from
-- succeeding skips the update itself, so nothing here runs for it.
CREATE FUNCTION job_attempts_record() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE TRIGGER job_attempts_record
AFTER UPDATE OF status ON jobs FOR EACH ROW
WHEN (OLD.status IS DISTINCT FROM NEW.status)
EXECUTE FUNCTION job_attempts_record();
