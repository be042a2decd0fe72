-- Retention: the pruner walks finished jobs oldest first.
CREATE INDEX jobs_by_finished ON jobs (finished_timestamp, seq) WHERE finished_timestamp IS NOT NULL;
