-- Durable jobs (see storage/migrations/002_durable_jobs.sql for the SQLite twin):
-- status: queued -> running -> generated -> delivered, or failed | cancelled | expired.
ALTER TABLE jobs
    ADD COLUMN platform text NOT NULL DEFAULT '',
    ADD COLUMN owner text,                          -- instance running or delivering it
    ADD COLUMN lease_until double precision,        -- the owner's lease on it
    ADD COLUMN affinity text,                       -- only this instance may take it (CLI)
    ADD COLUMN attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false,
    ADD COLUMN generated_at double precision,
    ADD COLUMN deliver_after double precision,      -- next delivery attempt
    ADD COLUMN delivery_attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN delivery_deadline double precision,  -- refunded if not delivered by then
    ADD COLUMN delivery_ref text,                   -- the platform's message id
    ADD COLUMN notice text,                         -- owed to the user
    ADD COLUMN notice_until double precision;       -- a process is telling it until then
UPDATE jobs SET status = 'delivered' WHERE status = 'succeeded';
UPDATE jobs SET status = 'failed' WHERE status = 'interrupted';
UPDATE jobs SET platform = split_part(user_key, ':', 1);
CREATE INDEX jobs_queue ON jobs (provider, status, created_at);
CREATE INDEX jobs_owner ON jobs (owner, status);
CREATE INDEX jobs_user_status ON jobs (user_key, status);
CREATE INDEX jobs_notice ON jobs (platform, notice) WHERE notice IS NOT NULL;
CREATE INDEX jobs_outbox ON jobs (status, deliver_after) WHERE status = 'generated';

CREATE TABLE instances (
    id          text PRIMARY KEY,
    lease_until double precision NOT NULL,
    started_at  double precision NOT NULL,
    info        jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE job_blobs (
    job_id      text NOT NULL,
    kind        text NOT NULL,                      -- input | result
    idx         integer NOT NULL,
    mime        text NOT NULL,
    data        bytea NOT NULL,
    created_at  double precision NOT NULL,
    PRIMARY KEY (job_id, kind, idx)
);

CREATE TABLE claim_turns (
    provider    text NOT NULL,
    user_key    text NOT NULL,
    last_at     double precision NOT NULL,
    PRIMARY KEY (provider, user_key)
);
