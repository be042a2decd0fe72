-- Workflows, retries, cancellation, progress, and the simulated registry / provenance store.
ALTER TABLE jobs ADD COLUMN parent_session_id TEXT;   -- the job whose handler launched this one
ALTER TABLE jobs ADD COLUMN retry_of TEXT;            -- the FAILED job this one retries
ALTER TABLE jobs ADD COLUMN progress REAL;            -- 0..1 while running, as reported
ALTER TABLE jobs ADD COLUMN cancel_requested_by TEXT; -- a running job asked to stop

CREATE INDEX jobs_by_parent ON jobs (parent_session_id) WHERE parent_session_id IS NOT NULL;

-- What built-in handlers register and lodge, so jobd can stand in for Provena's registry and
-- provenance store in other services' tests.
CREATE TABLE records (
    record_id  TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    session_id TEXT NOT NULL,
    username   TEXT NOT NULL,
    data       BLOB NOT NULL,   -- JSON
    created    REAL NOT NULL
);
CREATE INDEX records_by_session ON records (session_id);

-- Small server state that must survive restarts (e.g. the report-link signing key).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
