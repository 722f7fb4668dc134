-- The schema of storage/migrations/004_leases.sql in PostgreSQL's types: named leases for a
-- role only one process may play at a time (the Telegram long poller).
CREATE TABLE leases (
    name   text PRIMARY KEY,
    holder text NOT NULL,
    until  double precision NOT NULL
);
