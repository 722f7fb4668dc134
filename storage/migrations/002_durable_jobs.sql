-- Durable jobs: the jobs table is the queue, processes own what they run through leases,
-- inputs and results live beside their job until it ends, and notices owed to users are rows.
--
-- status: queued -> running -> generated -> delivered, or failed | cancelled | expired.
-- charge: none (free), held (reserved at creation), committed (at delivery), refunded.
ALTER TABLE jobs ADD COLUMN platform TEXT NOT NULL DEFAULT '';
-- instance running or delivering it
ALTER TABLE jobs ADD COLUMN owner TEXT;
-- the owner's lease on it
ALTER TABLE jobs ADD COLUMN lease_until REAL;
-- only this instance may take it (CLI)
ALTER TABLE jobs ADD COLUMN affinity TEXT;
ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN generated_at REAL;
-- next delivery attempt
ALTER TABLE jobs ADD COLUMN deliver_after REAL;
ALTER TABLE jobs ADD COLUMN delivery_attempts INTEGER NOT NULL DEFAULT 0;
-- refunded if not delivered by then
ALTER TABLE jobs ADD COLUMN delivery_deadline REAL;
-- the platform's message id
ALTER TABLE jobs ADD COLUMN delivery_ref TEXT;
-- owed to the user: requeued, refunded, expired
ALTER TABLE jobs ADD COLUMN notice TEXT;
-- a process is telling it until then
ALTER TABLE jobs ADD COLUMN notice_until REAL;
UPDATE jobs SET status = 'delivered' WHERE status = 'succeeded';
UPDATE jobs SET status = 'failed' WHERE status = 'interrupted';
UPDATE jobs SET platform = substr(user_key, 1, instr(user_key, ':') - 1);
CREATE INDEX jobs_queue ON jobs (provider, status, created_at);
CREATE INDEX jobs_owner ON jobs (owner, status);
CREATE INDEX jobs_user_status ON jobs (user_key, status);
CREATE INDEX jobs_notice ON jobs (platform, notice) WHERE notice IS NOT NULL;
CREATE INDEX jobs_outbox ON jobs (status, deliver_after) WHERE status = 'generated';

-- Each processing process, while it lives: it renews its lease with a heartbeat.
CREATE TABLE instances (
    id          TEXT PRIMARY KEY,
    lease_until REAL NOT NULL,
    started_at  REAL NOT NULL,
    info        TEXT NOT NULL DEFAULT '{}'
);

-- The upload a queued job will run on, and the images of a generated one.
CREATE TABLE job_blobs (
    job_id      TEXT NOT NULL,
    kind        TEXT NOT NULL,                 -- input | result
    idx         INTEGER NOT NULL,
    mime        TEXT NOT NULL,
    data        BLOB NOT NULL,
    created_at  REAL NOT NULL,
    PRIMARY KEY (job_id, kind, idx)
);

-- When each user last had a job of a provider start: round robin across every process.
CREATE TABLE claim_turns (
    provider    TEXT NOT NULL,
    user_key    TEXT NOT NULL,
    last_at     REAL NOT NULL,
    PRIMARY KEY (provider, user_key)
);
