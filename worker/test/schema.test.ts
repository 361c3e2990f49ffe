import { describe, expect, it } from 'vitest';
import { ACTIVE_STATUSES, CART_STATUSES } from '../src/cart-state.ts';
import { db, unique } from './helpers.ts';

// The statuses are written in TypeScript (cart-state.ts) and, as they must be, in the migrations.
describe('the database agrees with cart-state.ts', () => {
  it('has the cart statuses of the state machine, in its order', async () => {
    const [row] = await db().query('SELECT enum_range(NULL::cart_status)::text[] AS statuses');
    expect(row!.statuses).toEqual([...CART_STATUSES]);
  });

  it('counts a cart as active exactly in the active statuses, unless superseded', async () => {
    for (const status of CART_STATUSES) {
      for (const superseded of [false, true]) {
        const [row] = await db().query(
          'INSERT INTO carts (user_id, status, superseded) VALUES ($1, $2, $3) RETURNING active',
          [unique('schema'), status, superseded],
        );
        expect({ status, superseded, active: row!.active }).toEqual({
          status,
          superseded,
          active: !superseded && ACTIVE_STATUSES.includes(status),
        });
      }
    }
  });
});
