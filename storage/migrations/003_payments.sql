-- Purchases of credit packs (Telegram Stars, Discord SKUs) and their refunds.

-- A forced refund of a pack the buyer already spent may take the balance below zero (by at
-- most that pack), so users.balance loses its CHECK; overdraft by jobs is still refused by
-- the reservation's conditional UPDATE. SQLite cannot drop a CHECK, so the table is rebuilt:
-- foreign keys are checked at commit, and the rows go back in after the drop so that every
-- ledger row has its user again by then.
PRAGMA defer_foreign_keys = ON;
CREATE TEMP TABLE users_copy AS SELECT key, balance, settings, last_topup, created_at FROM users;
DROP TABLE users;
CREATE TABLE users (
    key         TEXT PRIMARY KEY,              -- "platform:id"
    balance     INTEGER NOT NULL DEFAULT 0,
    settings    TEXT NOT NULL DEFAULT '{}',    -- personal defaults, JSON
    last_topup  TEXT,                          -- UTC date of the last daily top-up
    created_at  REAL NOT NULL
);
INSERT INTO users (key, balance, settings, last_topup, created_at)
    SELECT key, balance, settings, last_topup, created_at FROM users_copy;
DROP TABLE users_copy;

-- The platform's id of the payment behind a ledger row: telegram_payment_charge_id or the
-- Discord entitlement id. One purchase row and at most one refund row per charge, so a
-- re-delivered payment update grants once.
ALTER TABLE ledger ADD COLUMN charge_id TEXT;
CREATE UNIQUE INDEX ledger_charge_kind ON ledger (charge_id, kind) WHERE charge_id IS NOT NULL;

-- What was bought, for refunds and revenue statistics. The credits moved are in the ledger.
CREATE TABLE purchases (
    charge_id   TEXT PRIMARY KEY,
    platform    TEXT NOT NULL,
    user_key    TEXT NOT NULL REFERENCES users(key),
    pack_id     TEXT NOT NULL,
    credits     INTEGER NOT NULL,
    currency    TEXT NOT NULL,                 -- XTR (Stars) or USD (a Discord SKU's cents)
    price       INTEGER NOT NULL,              -- in that currency's smallest unit
    created_at  REAL NOT NULL,
    refunded_at REAL
);
CREATE INDEX purchases_day ON purchases (created_at);
