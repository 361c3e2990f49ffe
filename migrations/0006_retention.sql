-- What the scheduled job's retention (worker/src/retention.ts) looks for each run, oldest
-- first, without reading whole tables: published outbox rows, processed events, and checkouts
-- that still hold a customer's email.
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
CREATE INDEX payment_events_received ON payment_events (received_at);
CREATE INDEX checkouts_with_email ON checkouts (created_at) WHERE customer ->> 'email' IS NOT NULL;
