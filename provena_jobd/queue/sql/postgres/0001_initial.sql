-- The PostgreSQL schema: the same tables as SQLite's migrations 0001-0004, in one step.
-- Every list is a keyset walk over (scope, created_timestamp, seq) newest first.
CREATE TABLE jobs (
    seq                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id          text    NOT NULL UNIQUE,
    created_timestamp   bigint  NOT NULL,
    username            text    NOT NULL,
    batch_id            text,
    job_type            text    NOT NULL,
    job_sub_type        text    NOT NULL,
    status              text    NOT NULL,
    info                text,
    payload             bytea   NOT NULL,            -- JSON
    result              bytea,                       -- JSON, SUCCEEDED only
    attempt             integer NOT NULL DEFAULT 0,  -- claims so far; fences late writers
    max_attempts        integer NOT NULL,
    run_after           double precision NOT NULL,   -- not claimable before this
    lease_expires_at    double precision,            -- while DEQUEUED or IN_PROGRESS
    worker_id           text,                        -- the worker (and node) holding it
    started_timestamp   double precision,
    finished_timestamp  double precision,
    parent_session_id   text,
    retry_of            text,
    progress            double precision,
    cancel_requested_by text,
    suspect             boolean NOT NULL DEFAULT false
);
CREATE INDEX jobs_by_user     ON jobs (username, created_timestamp, seq);
CREATE INDEX jobs_by_batch    ON jobs (batch_id, created_timestamp, seq) WHERE batch_id IS NOT NULL;
CREATE INDEX jobs_by_created  ON jobs (created_timestamp, seq);
CREATE INDEX jobs_waiting     ON jobs (job_type, seq) WHERE status = 'PENDING';
CREATE INDEX jobs_leased      ON jobs (lease_expires_at) WHERE status IN ('DEQUEUED', 'IN_PROGRESS');
CREATE INDEX jobs_by_parent   ON jobs (parent_session_id) WHERE parent_session_id IS NOT NULL;
CREATE INDEX jobs_by_finished ON jobs (finished_timestamp, seq) WHERE finished_timestamp IS NOT NULL;

CREATE TABLE batches (
    batch_id          text   PRIMARY KEY,
    username          text   NOT NULL,
    created_timestamp bigint NOT NULL
);

CREATE TABLE records (
    record_id  text PRIMARY KEY,
    kind       text NOT NULL,
    session_id text NOT NULL,
    username   text NOT NULL,
    data       bytea NOT NULL,   -- JSON
    created    double precision NOT NULL
);
CREATE INDEX records_by_session ON records (session_id);

CREATE TABLE meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

-- A cancelled job never succeeds (see the SQLite migration 0004): the update is skipped.
CREATE FUNCTION jobs_cancelled_never_succeed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RETURN NULL;
END;
$$;
CREATE TRIGGER jobs_cancelled_never_succeed
BEFORE UPDATE OF status ON jobs FOR EACH ROW
WHEN (NEW.status = 'SUCCEEDED' AND OLD.cancel_requested_by IS NOT NULL)
EXECUTE FUNCTION jobs_cancelled_never_succeed();
