-- The schema of storage/migrations/003_payments.sql in PostgreSQL's types: purchases of
-- credit packs (Telegram Stars, Discord SKUs) and their refunds.

-- A forced refund of a pack the buyer already spent may take the balance below zero (by at
-- most that pack); overdraft by jobs is still refused by the reservation's guarded UPDATE.
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_balance_check;

-- The platform's id of the payment behind a ledger row: telegram_payment_charge_id or the
-- Discord entitlement id. One purchase row and at most one refund row per charge.
ALTER TABLE ledger ADD COLUMN charge_id text;
CREATE UNIQUE INDEX ledger_charge_kind ON ledger (charge_id, kind) WHERE charge_id IS NOT NULL;

-- What was bought, for refunds and revenue statistics. The credits moved are in the ledger.
CREATE TABLE purchases (
    charge_id   text PRIMARY KEY,
    platform    text NOT NULL,
    user_key    text NOT NULL REFERENCES users (key),
    pack_id     text NOT NULL,
    credits     bigint NOT NULL,
    currency    text NOT NULL,                      -- XTR (Stars) or USD (a SKU's cents)
    price       bigint NOT NULL,                    -- in that currency's smallest unit
    created_at  double precision NOT NULL,
    refunded_at double precision
);
CREATE INDEX purchases_day ON purchases (created_at);
