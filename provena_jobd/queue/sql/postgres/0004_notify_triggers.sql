-- Change notices from the database itself, at commit of any statement that changed jobs: the
-- ids whose status, info, progress or cancel mark changed (a heartbeat alone is no change) on
-- `jobd_changes`, and the job types that have newly waiting jobs on `jobd_waiting`. Writers
-- then need no extra statement (nor a transaction of their own) to be heard by every node.
CREATE FUNCTION jobd_notify(ids text[], job_types text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    chunk text;
    waiting text;
BEGIN
    -- NOTIFY payloads must stay under 8000 bytes: 150 ids at a time.
    FOR chunk IN
        SELECT string_agg(id, ',') FROM (
            SELECT id, (ordinality - 1) / 150 AS part FROM unnest(ids) WITH ORDINALITY AS t(id)
        ) AS parts GROUP BY part
    LOOP
        PERFORM pg_notify('jobd_changes', chunk);
    END LOOP;
    FOR waiting IN SELECT DISTINCT t FROM unnest(job_types) AS t LOOP
        PERFORM pg_notify('jobd_waiting', waiting);
    END LOOP;
END;
$$;

CREATE FUNCTION jobs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM jobd_notify(ARRAY(SELECT session_id FROM added), ARRAY(SELECT job_type FROM added));
    RETURN NULL;
END;
$$;

CREATE FUNCTION jobs_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM jobd_notify(
        ARRAY(SELECT n.session_id FROM changed AS n JOIN previous AS o USING (seq)
              WHERE (n.status, n.info, n.progress, n.cancel_requested_by)
                    IS DISTINCT FROM (o.status, o.info, o.progress, o.cancel_requested_by)),
        ARRAY(SELECT n.job_type FROM changed AS n JOIN previous AS o USING (seq)
              WHERE n.status = 'PENDING' AND o.status <> 'PENDING'));
    RETURN NULL;
END;
$$;

CREATE TRIGGER jobs_inserted AFTER INSERT ON jobs REFERENCING NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION jobs_inserted();
CREATE TRIGGER jobs_updated AFTER UPDATE ON jobs REFERENCING OLD TABLE AS previous NEW TABLE AS changed
FOR EACH STATEMENT EXECUTE FUNCTION jobs_updated();
