-- A cancelled job never succeeds: once a cancel is recorded on a running job, an update
-- that would make it SUCCEEDED changes nothing (the runner then ends it FAILED, cancelled).
-- A trigger, so that the guard holds for every writer and costs nothing on other updates.
CREATE TRIGGER jobs_cancelled_never_succeed
BEFORE UPDATE OF status ON jobs
WHEN NEW.status = 'SUCCEEDED' AND OLD.cancel_requested_by IS NOT NULL
BEGIN
    SELECT RAISE(IGNORE);
END;
