-- Scheduling and flow control (issue 14).

-- Idempotent launches: one row per user and key while the key is kept; the primary key is
-- the unique index that makes two racing launches with one key launch once.
CREATE TABLE launch_keys (
    username    TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,   -- digest of the request the key first came with
    session_id  TEXT NOT NULL,
    batch_id    TEXT,
    expires_at  REAL NOT NULL,
    PRIMARY KEY (username, key)
) WITHOUT ROWID;
CREATE INDEX launch_keys_expiry ON launch_keys (expires_at);

-- Paused job types: nothing of theirs is claimed until they are resumed.
CREATE TABLE paused_types (
    job_type  TEXT PRIMARY KEY,
    paused_at REAL NOT NULL
) WITHOUT ROWID;

-- Start limits: the current fixed window (1 s or 60 s) per job type and its claim count.
CREATE TABLE start_windows (
    job_type TEXT    NOT NULL,
    length   REAL    NOT NULL,
    start    REAL    NOT NULL,
    count    INTEGER NOT NULL,
    PRIMARY KEY (job_type, length)
) WITHOUT ROWID;

-- Periodic schedules: each due time is recorded once, with the job it launched (NULL when
-- it was skipped), so a due time fires once across restarts and nodes.
CREATE TABLE schedule_fires (
    schedule   TEXT NOT NULL,
    due_at     REAL NOT NULL,
    session_id TEXT,
    PRIMARY KEY (schedule, due_at)
) WITHOUT ROWID;
