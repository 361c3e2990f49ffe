-- Products, carts and cart items. Integrity rules live here, not only in the Worker:
-- a request that slips past a check in code still cannot break them.

-- btree_gist lets one exclusion constraint say "one currency per cart" (cart_items below).
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE products (
  id          text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'),
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  description text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
  image_url   text CHECK (length(image_url) <= 2000),
  -- Minor units, as Stripe takes them; Stripe's ceiling is eight digits.
  unit_amount bigint NOT NULL CHECK (unit_amount BETWEEN 0 AND 99999999),
  currency    text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
  active      boolean NOT NULL DEFAULT true,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TYPE cart_status AS ENUM (
  'open', 'checkout_pending', 'awaiting_payment', 'paid', 'payment_failed', 'refunded'
);

CREATE TABLE carts (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id    text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 255),
  status     cart_status NOT NULL DEFAULT 'open',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- At most one active cart per user, so concurrent "give me my cart" requests converge on one row.
CREATE UNIQUE INDEX carts_one_active_per_user ON carts (user_id)
  WHERE status IN ('open', 'checkout_pending', 'payment_failed');
CREATE INDEX carts_by_user_newest ON carts (user_id, created_at DESC, id);

CREATE TABLE cart_items (
  cart_id    uuid NOT NULL REFERENCES carts (id) ON DELETE CASCADE,
  product_id text NOT NULL REFERENCES products (id),
  -- The product's currency when the item was added: the cart's currency is its items' currency.
  currency   text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
  quantity   integer NOT NULL CHECK (quantity BETWEEN 1 AND 99),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (cart_id, product_id),
  CONSTRAINT cart_items_one_currency EXCLUDE USING gist (cart_id WITH =, currency WITH <>)
);
