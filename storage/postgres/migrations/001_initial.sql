-- The schema of storage/migrations/001_initial.sql in PostgreSQL's types.
-- Times are seconds since the epoch (double precision), as the Storage interface returns them.

-- Users: a balance that always equals the sum of the user's ledger rows.
CREATE TABLE users (
    key         text PRIMARY KEY,                   -- "platform:id"
    balance     bigint NOT NULL DEFAULT 0 CHECK (balance >= 0),
    settings    jsonb NOT NULL DEFAULT '{}',        -- personal defaults
    last_topup  text,                               -- UTC date of the last daily top-up
    created_at  double precision NOT NULL
);

-- Chats (groups, servers, channels): defaults and moderation policy.
CREATE TABLE chats (
    key         text PRIMARY KEY,
    settings    jsonb NOT NULL DEFAULT '{}',
    updated_at  double precision NOT NULL
);

-- Every credit movement. kind: initial, daily, grant, reserve, refund.
CREATE TABLE ledger (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_key    text NOT NULL REFERENCES users (key),
    amount      bigint NOT NULL,
    kind        text NOT NULL,
    job_id      text,
    note        text NOT NULL DEFAULT '',
    created_at  double precision NOT NULL
);
-- A job is reserved at most once and refunded at most once.
CREATE UNIQUE INDEX ledger_job_kind ON ledger (job_id, kind) WHERE job_id IS NOT NULL;
CREATE INDEX ledger_user ON ledger (user_key, id);

-- Jobs. status: queued, running, succeeded, failed, cancelled, interrupted.
-- charge: none (free), held (reserved), committed, refunded.
CREATE TABLE jobs (
    id          text PRIMARY KEY,
    user_key    text NOT NULL,
    chat_key    text NOT NULL,
    provider    text NOT NULL,
    status      text NOT NULL,
    charge      text NOT NULL,
    price       bigint NOT NULL,
    params      jsonb NOT NULL,
    origin      jsonb NOT NULL DEFAULT '{}',        -- where to tell the user after a restart
    seed        bigint,
    error       text,
    metadata    jsonb NOT NULL DEFAULT '{}',
    created_at  double precision NOT NULL,
    started_at  double precision,
    finished_at double precision,
    notified    boolean NOT NULL DEFAULT true
);
CREATE INDEX jobs_status ON jobs (status);
CREATE INDEX jobs_user_chat ON jobs (user_key, chat_key, created_at);

-- Platform events already handled (a re-delivered update is processed once).
CREATE TABLE processed_events (
    platform    text NOT NULL,
    event_id    text NOT NULL,
    created_at  double precision NOT NULL,
    PRIMARY KEY (platform, event_id)
);
