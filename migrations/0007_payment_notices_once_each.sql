-- What Stripe reports about a landed payment is published once per fact, whatever order its
-- events arrive in (noticeOf in worker/src/cart-state.ts): each refund that took the charge's
-- amount_refunded to a new total, each dispute opened, each dispute closed. Until now a fact
-- reported after a further one (a partial refund after the full one, a dispute's opening after
-- its closing) was dropped, so what was published depended on the order of arrival.

-- The notice the event reports (`partially_refunded:1500`, `disputed:dp_…`), kept so that those
-- arriving before their payment lands are published when it lands.
ALTER TABLE payment_events ADD COLUMN notice text;
UPDATE payment_events SET notice = CASE
  WHEN dispute_stage IS NOT NULL THEN (CASE dispute_stage WHEN 2 THEN 'dispute_closed:' ELSE 'disputed:' END) || (dispute ->> 'id')
  WHEN NOT full_refund AND refunded_amount > 0 THEN 'partially_refunded:' || refunded_amount
END;

-- What the event published besides status changes, each notice with the fact it reports:
-- [{ key, refundedAmount } | { key, dispute }]. Rows written before this migration hold the
-- notices' names only.
ALTER TABLE payment_events ALTER COLUMN notices TYPE jsonb USING to_jsonb(notices);

-- The notices of the checkout's payment published so far: none goes out twice. A payment that
-- has landed has had what was known of it published already.
ALTER TABLE checkouts ADD COLUMN noticed text[] NOT NULL DEFAULT '{}';
UPDATE checkouts k SET noticed = ARRAY(
  SELECT DISTINCT e.notice FROM payment_events e WHERE e.payment_intent_id = k.payment_intent_id AND e.notice IS NOT NULL)
FROM carts c
WHERE c.id = k.cart_id AND c.checkout_session_id = k.session_id AND c.status IN ('paid', 'refunded')
  AND k.payment_intent_id IS NOT NULL;
