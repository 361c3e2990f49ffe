-- Whether the payment was charged another amount or oversold, as it was when the outbox row was
-- written, as refunded_amount and dispute already are: an event published late (Pub/Sub down, a
-- row held back) must not say what only happened after it, and every copy of one event says the
-- same. Rows written before this keep reading the checkout's (NULL here).
ALTER TABLE outbox
  ADD COLUMN amount_mismatch boolean,
  ADD COLUMN oversold boolean;
