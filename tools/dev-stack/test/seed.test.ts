import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { migrate } from '@edge-checkout/migrate';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningPostgres, startPostgres } from '../src/postgres.ts';
import { DEMO_PRODUCTS, seedDemoProducts } from '../src/seed.ts';

let postgres: RunningPostgres;

beforeAll(async () => {
  postgres = await startPostgres({ dataDir: mkdtempSync(path.join(tmpdir(), 'seed-test-')), persistent: false });
  await migrate(postgres.url);
});
afterAll(async () => {
  await postgres?.stop();
});

async function query(text: string, values: unknown[] = []): Promise<Array<Record<string, unknown>>> {
  const client = new pg.Client({ connectionString: postgres.url });
  await client.connect();
  try {
    return (await client.query(text, values)).rows;
  } finally {
    await client.end();
  }
}

describe('seedDemoProducts', () => {
  it('inserts the demo catalogue, then leaves it alone, and restores a demo product that was changed', async () => {
    expect(await seedDemoProducts(postgres.url)).toBe(DEMO_PRODUCTS.length);
    const rows = await query('SELECT id, name, unit_amount, currency, active, updated_at FROM products ORDER BY id');
    expect(rows.map((r) => r.id)).toEqual(DEMO_PRODUCTS.map((p) => p.id).sort());
    const tshirt = rows.find((r) => r.id === 'tshirt-classic')!;
    expect(tshirt).toMatchObject({ name: 'Classic T-shirt', unit_amount: '2500', currency: 'usd', active: true });
    expect(DEMO_PRODUCTS.length).toBeGreaterThanOrEqual(4);

    expect(await seedDemoProducts(postgres.url)).toBe(0);
    const [again] = await query('SELECT updated_at FROM products WHERE id = $1', ['tshirt-classic']);
    expect(again!.updated_at).toEqual(tshirt.updated_at);

    await query(`UPDATE products SET unit_amount = 1, active = false WHERE id = 'mug-ceramic'`);
    await query(`INSERT INTO products (id, name, unit_amount, currency) VALUES ('not-demo', 'Mine', 700, 'usd')`);
    expect(await seedDemoProducts(postgres.url)).toBe(1);
    expect(await query(`SELECT unit_amount, active FROM products WHERE id = 'mug-ceramic'`)).toEqual([
      { unit_amount: '1400', active: true },
    ]);
    expect(await query(`SELECT name FROM products WHERE id = 'not-demo'`)).toEqual([{ name: 'Mine' }]);
  });
});
