-- Stripe's largest amount is twelve digits in minor units for IDR and eight for every other
-- currency: "The amount value supports up to twelve digits for IDR (for example, a value of
-- 999999999999 for a charge of 9,999,999,999.99 IDR), and up to eight digits for all other
-- currencies" (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts). 0001 held
-- every price to eight, so an Indonesian shop could price nothing over Rp 999,999.99. The new
-- check is looser than the old, so every row already passes it; the products table is the
-- catalogue, small enough to check under the lock the statement takes anyway.
ALTER TABLE products
  DROP CONSTRAINT products_unit_amount_check,
  ADD CONSTRAINT products_unit_amount_check
    CHECK (unit_amount >= 0 AND unit_amount <= CASE WHEN currency = 'idr' THEN 999999999999 ELSE 99999999 END);
