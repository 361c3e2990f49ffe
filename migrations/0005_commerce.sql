-- Commerce around the payment: stock held during checkout, shipping, tax, promotion codes,
-- refunds and disputes.

-- Stock. `stock` is what is on hand (null: not counted, unlimited); `reserved` is what live
-- checkouts hold of it, so a product has stock - reserved available. Checkout adds to
-- `reserved` in the statement that moves the cart; the end of the checkout gives it back
-- (expired, cancelled, payment failed) or takes it from `stock` too (paid).
ALTER TABLE products ADD COLUMN stock integer CHECK (stock >= 0);
ALTER TABLE products ADD COLUMN reserved integer NOT NULL DEFAULT 0 CHECK (reserved >= 0);
-- Stripe Tax's product tax code (txcd_ and eight digits), sent with the line item.
ALTER TABLE products ADD COLUMN tax_code text CHECK (tax_code ~ '^txcd_[0-9]{8}$');

-- What one checkout holds of each counted product. Rows are deleted when the hold is given
-- back or consumed, so each hold ends once, whatever events arrive twice.
CREATE TABLE stock_holds (
  session_id text NOT NULL REFERENCES checkouts (session_id),
  product_id text NOT NULL REFERENCES products (id),
  quantity   integer NOT NULL CHECK (quantity > 0),
  PRIMARY KEY (session_id, product_id)
);
CREATE INDEX stock_holds_by_product ON stock_holds (product_id);

-- The shipping rates offered in the session, with the ids Stripe gave them:
-- [{ id, name, amount, minDays, maxDays }], to name the rate the shopper chose.
ALTER TABLE checkouts ADD COLUMN shipping_options jsonb NOT NULL DEFAULT '[]';
-- At completion: { subtotal, discount, shipping, tax, total } from Stripe, and
-- { name, address, rate } when an address was collected.
ALTER TABLE checkouts ADD COLUMN amounts jsonb;
ALTER TABLE checkouts ADD COLUMN shipping jsonb;
-- What Stripe reported about the payment after it landed: the amount refunded so far (the
-- charge's amount_refunded, which only grows) and the dispute { id, status, reason, amount, closed }.
ALTER TABLE checkouts ADD COLUMN refunded_amount bigint NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0);
ALTER TABLE checkouts ADD COLUMN dispute jsonb;
-- The payment landed for stock that was gone: paid all the same, for a person to resolve.
ALTER TABLE checkouts ADD COLUMN oversold boolean NOT NULL DEFAULT false;

-- Facts each event reported, so that those arriving before their payment's completion are
-- applied when it lands: the charge's amount_refunded, and the dispute with its stage
-- (1 open, 2 closed).
ALTER TABLE payment_events ADD COLUMN refunded_amount bigint;
ALTER TABLE payment_events ADD COLUMN dispute jsonb;
ALTER TABLE payment_events ADD COLUMN dispute_stage smallint CHECK (dispute_stage IN (1, 2));
-- What the event published besides status changes (partially_refunded, disputed, dispute_closed)
-- and what it did to the stock held for the checkout.
ALTER TABLE payment_events ADD COLUMN notices text[];
ALTER TABLE payment_events ADD COLUMN stock_move text CHECK (stock_move IN ('release', 'consume'));
DROP INDEX payment_events_refunds;
CREATE INDEX payment_events_payment_facts ON payment_events (payment_intent_id)
  WHERE full_refund OR refunded_amount IS NOT NULL OR dispute_stage IS NOT NULL;

-- Operators list carts by status, most recently changed first.
CREATE INDEX carts_by_status ON carts (status, updated_at DESC);

-- The refund and dispute as they were when the outbox row was written: a cart's later refund
-- must not change what an earlier event said.
ALTER TABLE outbox ADD COLUMN refunded_amount bigint NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN dispute jsonb;
