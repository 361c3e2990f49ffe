-- Outbox rows an operator discarded (refused by Pub/Sub, never published) are forgotten after
-- RETENTION_DAYS too, as published ones are (worker/src/retention.ts); found by this index.
CREATE INDEX outbox_discarded ON outbox (discarded_at) WHERE discarded_at IS NOT NULL;
