-- Named leases: a role only one process may play at a time (the Telegram long poller).
-- The holder renews its lease before ``until``; anyone may take it once ``until`` has passed.
CREATE TABLE leases (
    name   TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until  REAL NOT NULL
);
