-- Scheduling and flow control (issue 14). None of these tables changes jobs, so none needs a
-- change-notice trigger: the jobs a flow write touches notify through the jobs triggers.

-- Idempotent launches: one row per user and key while the key is kept; the primary key is
-- the unique index that makes two racing launches with one key (on any node) launch once.
CREATE TABLE launch_keys (
    username    text NOT NULL,
    key         text NOT NULL,
    fingerprint text NOT NULL,   -- digest of the request the key first came with
    session_id  text NOT NULL,
    batch_id    text,
    expires_at  double precision NOT NULL,
    PRIMARY KEY (username, key)
);
CREATE INDEX launch_keys_expiry ON launch_keys (expires_at);

-- Paused job types: nothing of theirs is claimed until they are resumed.
CREATE TABLE paused_types (
    job_type  text PRIMARY KEY,
    paused_at double precision NOT NULL
);

-- Start limits: the current fixed window (1 s or 60 s) per job type and its claim count,
-- shared by every node (a claim updates it under a per-type advisory lock).
CREATE TABLE start_windows (
    job_type text             NOT NULL,
    length   double precision NOT NULL,
    start    double precision NOT NULL,
    count    integer          NOT NULL,
    PRIMARY KEY (job_type, length)
);

-- Periodic schedules: each due time is recorded once, with the job it launched (NULL when
-- it was skipped), so a due time fires once across restarts and nodes.
CREATE TABLE schedule_fires (
    schedule   text             NOT NULL,
    due_at     double precision NOT NULL,
    session_id text,
    PRIMARY KEY (schedule, due_at)
);
