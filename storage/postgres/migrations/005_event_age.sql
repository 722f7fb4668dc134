-- Processed events are purged by age while the bot runs; without this the purge scans them all.
CREATE INDEX processed_events_age ON processed_events (created_at);
