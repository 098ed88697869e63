-- Claiming reads only what it can take, through indexes that hold nothing else: due pending jobs
-- in claim order, and running jobs by lease expiry (the sweep that returns expired leases).
-- The old index led with state, so a claim that also looked at expired leases scanned the whole
-- queue, succeeded rows included.
DROP INDEX IF EXISTS _jobs_claim;
CREATE INDEX IF NOT EXISTS _jobs_due ON _jobs (queue, priority DESC, run_at, created)
    WHERE state = 'pending';
-- The nearest future run_at of a queue (the runner sleeps until then, not a whole poll).
CREATE INDEX IF NOT EXISTS _jobs_next ON _jobs (queue, run_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS _jobs_leases ON _jobs (queue, lease_until) WHERE state = 'running';
