-- The job table and its indexes. Every list is a keyset walk over
-- (scope, created_timestamp, seq) newest first; seq is the insertion order and breaks ties
-- between jobs created in the same second.
CREATE TABLE jobs (
    seq                INTEGER PRIMARY KEY,
    session_id         TEXT    NOT NULL UNIQUE,
    created_timestamp  INTEGER NOT NULL,
    username           TEXT    NOT NULL,
    batch_id           TEXT,
    job_type           TEXT    NOT NULL,
    job_sub_type       TEXT    NOT NULL,
    status             TEXT    NOT NULL,
    info               TEXT,
    payload            BLOB    NOT NULL,          -- JSON
    result             BLOB,                      -- JSON, SUCCEEDED only
    attempt            INTEGER NOT NULL DEFAULT 0, -- claims so far; fences late writers
    max_attempts       INTEGER NOT NULL,
    run_after          REAL    NOT NULL,          -- not claimable before this (retry back-off)
    lease_expires_at   REAL,                      -- while DEQUEUED or IN_PROGRESS
    worker_id          TEXT,
    started_timestamp  REAL,
    finished_timestamp REAL
);

-- SQLite appends the rowid (seq) to every index, so these also order ties by seq.
CREATE INDEX jobs_by_user    ON jobs (username, created_timestamp);
CREATE INDEX jobs_by_batch   ON jobs (batch_id, created_timestamp) WHERE batch_id IS NOT NULL;
CREATE INDEX jobs_by_created ON jobs (created_timestamp);
CREATE INDEX jobs_waiting    ON jobs (job_type) WHERE status = 'PENDING';
CREATE INDEX jobs_leased     ON jobs (lease_expires_at) WHERE status IN ('DEQUEUED', 'IN_PROGRESS');

-- A batch exists once a launch asked for it; its owner decides who may add to it.
CREATE TABLE batches (
    batch_id          TEXT    PRIMARY KEY,
    username          TEXT    NOT NULL,
    created_timestamp INTEGER NOT NULL
) WITHOUT ROWID;
