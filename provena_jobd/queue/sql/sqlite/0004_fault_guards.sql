-- A cancelled job never succeeds: once a cancel is recorded on a running job, an update
-- that would make it SUCCEEDED changes nothing (the runner then ends it FAILED, cancelled).
-- A trigger, so that the guard holds for every writer and costs nothing on other updates.
CREATE TRIGGER jobs_cancelled_never_succeed
BEFORE UPDATE OF status ON jobs
WHEN NEW.status = 'SUCCEEDED' AND OLD.cancel_requested_by IS NOT NULL
BEGIN
    SELECT RAISE(IGNORE);
END;

-- Poison-job isolation: a job held when jobd died is a suspect until it has run alone.
ALTER TABLE jobs ADD COLUMN suspect INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_suspect ON jobs (seq) WHERE suspect = 1 AND status = 'PENDING';
