-- Users: a balance that always equals the sum of the user's ledger rows.
CREATE TABLE users (
    key         TEXT PRIMARY KEY,              -- "platform:id"
    balance     INTEGER NOT NULL DEFAULT 0 CHECK (balance >= 0),
    settings    TEXT NOT NULL DEFAULT '{}',    -- personal defaults, JSON
    last_topup  TEXT,                          -- UTC date of the last daily top-up
    created_at  REAL NOT NULL
);

-- Chats (groups, servers, channels): defaults and moderation policy, JSON.
CREATE TABLE chats (
    key         TEXT PRIMARY KEY,
    settings    TEXT NOT NULL DEFAULT '{}',
    updated_at  REAL NOT NULL
);

-- Every credit movement. kind: initial, daily, grant, reserve, refund.
CREATE TABLE ledger (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_key    TEXT NOT NULL REFERENCES users(key),
    amount      INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    job_id      TEXT,
    note        TEXT NOT NULL DEFAULT '',
    created_at  REAL NOT NULL
);
-- A job is reserved at most once and refunded at most once.
CREATE UNIQUE INDEX ledger_job_kind ON ledger (job_id, kind) WHERE job_id IS NOT NULL;
CREATE INDEX ledger_user ON ledger (user_key, id);

-- Jobs. status: queued, running, succeeded, failed, cancelled, interrupted.
-- charge: none (free), held (reserved), committed, refunded.
CREATE TABLE jobs (
    id          TEXT PRIMARY KEY,
    user_key    TEXT NOT NULL,
    chat_key    TEXT NOT NULL,
    provider    TEXT NOT NULL,
    status      TEXT NOT NULL,
    charge      TEXT NOT NULL,
    price       INTEGER NOT NULL,
    params      TEXT NOT NULL,
    origin      TEXT NOT NULL DEFAULT '{}',    -- where to tell the user after a restart
    seed        INTEGER,
    error       TEXT,
    metadata    TEXT NOT NULL DEFAULT '{}',
    created_at  REAL NOT NULL,
    started_at  REAL,
    finished_at REAL,
    notified    INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX jobs_status ON jobs (status);
CREATE INDEX jobs_user_chat ON jobs (user_key, chat_key, created_at);

-- Platform events already handled (a re-delivered update is processed once).
CREATE TABLE processed_events (
    platform    TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    created_at  REAL NOT NULL,
    PRIMARY KEY (platform, event_id)
);
