-- When the scheduled job last read a session back from Stripe. Delayed payments stay
-- awaiting_payment for days; this lets the job check each of them every so often, least
-- recently checked first, instead of the same few every run.
ALTER TABLE checkouts ADD COLUMN reconciled_at timestamptz;
CREATE INDEX carts_awaiting_payment ON carts (updated_at) WHERE status = 'awaiting_payment';
