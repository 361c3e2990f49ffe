-- When Stripe says each reported fact happened (its event's `created`, a refund's `created`, or
-- when the Worker read a session back). A refund or dispute reported before its payment landed
-- is published when the payment lands, under its own event's id and time: this is where its
-- time is kept until then. Rows from before have none, and fall back to when they were received.
-- A nullable column without a default: no rewrite of the table.
ALTER TABLE payment_events ADD COLUMN occurred_at timestamptz;
