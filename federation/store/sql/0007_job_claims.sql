-- coopfed schema, version 7: cheap job claims.
-- A claim takes the first due jobs in (run_at, id) order.  With an index on run_at
-- alone, PostgreSQL sorts every due job at each claim: a fan-out that queues 10,000
-- deliveries (all with the same run_at) made each claim cost milliseconds.
CREATE INDEX jobs_due ON jobs (run_at, id);
DROP INDEX jobs_ready;
