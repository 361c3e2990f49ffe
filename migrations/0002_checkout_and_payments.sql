-- Checkout sessions, received Stripe events and the outbox of payment events for Pub/Sub.

-- Bumped by every change to a cart (items or status). A Checkout Session is created with the
-- Stripe idempotency key (cart, version): a double tap reuses the session, an edit makes a new one,
-- and the write that moves the cart to checkout_pending only lands if the version is unchanged.
ALTER TABLE carts ADD COLUMN version integer NOT NULL DEFAULT 0;

-- One row per Checkout Session we created: what the shopper is paying for, as it was at checkout.
CREATE TABLE checkouts (
  session_id        text PRIMARY KEY,
  cart_id           uuid NOT NULL REFERENCES carts (id),
  url               text NOT NULL,
  expires_at        timestamptz NOT NULL,
  currency          text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
  amount_total      bigint NOT NULL CHECK (amount_total >= 0),
  -- [{ productId, name, unitAmount, quantity, lineTotal }] as sent to Stripe.
  items             jsonb NOT NULL,
  payment_intent_id text UNIQUE,
  -- customer_details from Stripe ({ email, name }) once the session completes.
  customer          jsonb,
  -- Stripe's amount_total or currency at completion differed from the snapshot above.
  amount_mismatch   boolean NOT NULL DEFAULT false,
  created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX checkouts_by_cart ON checkouts (cart_id);

-- The cart's current session: events about any other session never move the cart.
ALTER TABLE carts ADD COLUMN checkout_session_id text REFERENCES checkouts (session_id);
CREATE INDEX carts_checkout_pending ON carts (updated_at) WHERE status = 'checkout_pending';

-- Every event that can move a cart, once: Stripe webhooks (id evt_…), sessions read back from
-- Stripe by the success page or the scheduled job (reconcile:…), and API cancellations (cancel:…).
-- The primary key is what makes a replayed event a no-op.
CREATE TABLE payment_events (
  id                text PRIMARY KEY,
  type              text NOT NULL,
  source            text NOT NULL CHECK (source IN ('webhook', 'reconcile', 'api')),
  cart_id           uuid,
  session_id        text,
  payment_intent_id text,
  -- charge.refunded for the whole amount: kept so a refund that arrives before its payment's
  -- completion is applied once the completion lands.
  full_refund       boolean NOT NULL DEFAULT false,
  -- applied: moved the cart; ignored: the state machine does not allow it in from_status;
  -- stale_session: about a session that is not the cart's current one; unknown_cart: no cart found.
  outcome           text NOT NULL CHECK (outcome IN ('applied', 'ignored', 'stale_session', 'unknown_cart')),
  from_status       cart_status,
  to_status         cart_status,
  received_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_events_refunds ON payment_events (payment_intent_id) WHERE full_refund;

-- Payment events waiting for (or done with) Pub/Sub, written in the transaction of the transition.
CREATE TABLE outbox (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(), -- the published eventId
  -- Order of writing, which is the order of a cart's transitions (several can share a transaction).
  seq             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  cart_id         uuid NOT NULL REFERENCES carts (id),
  event_type      text NOT NULL,
  stripe_event_id text NOT NULL,
  payload         jsonb NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  -- A relay that claimed the row holds it until then; another relay leaves it alone meanwhile.
  claimed_until   timestamptz,
  last_error      text,
  published_at    timestamptz,
  message_id      text,
  -- Set when Pub/Sub refused the row for a reason retrying cannot fix; kept for operators.
  failed_at       timestamptz
);
CREATE INDEX outbox_pending ON outbox (seq) WHERE published_at IS NULL AND failed_at IS NULL;
