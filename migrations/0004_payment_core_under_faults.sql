-- The payment core under faults: paths that failed on every retry now end or recover.

-- A delayed payment can fail after its shopper started another cart. The failed cart still
-- becomes payment_failed (and is published), but it is then not the shopper's active cart: the
-- newer one keeps that place. `active` is the one definition of "the shopper's active cart";
-- the statuses are those of ACTIVE_STATUSES in worker/src/cart-state.ts (a test compares them).
ALTER TABLE carts ADD COLUMN superseded boolean NOT NULL DEFAULT false;
ALTER TABLE carts ADD COLUMN active boolean NOT NULL
  GENERATED ALWAYS AS (status IN ('open', 'checkout_pending', 'payment_failed') AND NOT superseded) STORED;
DROP INDEX carts_one_active_per_user;
CREATE UNIQUE INDEX carts_one_active_per_user ON carts (user_id) WHERE active;

-- Stripe saves the first result of an idempotency key, failures included, and refuses the key
-- with other parameters. Each checkout attempt has its own key (cart, version, attempt) and its
-- own fixed expires_at; a failure Stripe may have saved moves the cart to the next attempt.
ALTER TABLE carts ADD COLUMN checkout_attempt integer NOT NULL DEFAULT 0;
ALTER TABLE carts ADD COLUMN checkout_attempt_expires_at timestamptz;

-- The scheduled job stamps failed read-backs too and backs off on them, so sessions that keep
-- failing cannot starve the others.
ALTER TABLE checkouts ADD COLUMN reconcile_failures integer NOT NULL DEFAULT 0;

-- The statuses an applied event moved its cart through (two when a refund recorded earlier is
-- applied right after the payment lands); the later steps of the same transaction read them.
ALTER TABLE payment_events ADD COLUMN path cart_status[];

-- The published event is built in TypeScript (worker/src/payment-event.ts) from these facts and
-- from the checkout they belong to, instead of a JSON payload assembled in SQL.
ALTER TABLE outbox ADD COLUMN cart_status cart_status;
ALTER TABLE outbox ADD COLUMN session_id text REFERENCES checkouts (session_id);
ALTER TABLE outbox ADD COLUMN occurred_at timestamptz;
UPDATE outbox SET cart_status = (payload -> 'cart' ->> 'status')::cart_status,
                  session_id = payload -> 'stripe' ->> 'sessionId',
                  occurred_at = (payload ->> 'occurredAt')::timestamptz;
ALTER TABLE outbox ALTER COLUMN cart_status SET NOT NULL;
ALTER TABLE outbox ALTER COLUMN session_id SET NOT NULL;
ALTER TABLE outbox ALTER COLUMN occurred_at SET NOT NULL;
ALTER TABLE outbox DROP COLUMN payload;

-- A row Pub/Sub refused for good holds back its cart's later rows, as an ordering key does,
-- until an operator queues it again or discards it.
ALTER TABLE outbox ADD COLUMN discarded_at timestamptz;
DROP INDEX outbox_pending;
CREATE INDEX outbox_unpublished ON outbox (cart_id, seq) WHERE published_at IS NULL AND discarded_at IS NULL;
CREATE INDEX outbox_due ON outbox (seq) WHERE published_at IS NULL AND failed_at IS NULL AND discarded_at IS NULL;
