-- The cluster: numbered worker slots per job type. A worker exists only while its node holds
-- its slot; the primary key makes `max_workers` a cap for the whole cluster even when nodes
-- race for the last slot. A node heartbeats its slots; a dead node's slots expire.
CREATE TABLE worker_slots (
    job_type   text    NOT NULL,
    slot       integer NOT NULL,
    node       text    NOT NULL,
    started    double precision NOT NULL,
    expires_at double precision NOT NULL,
    PRIMARY KEY (job_type, slot)
);
CREATE INDEX worker_slots_by_node ON worker_slots (node);
