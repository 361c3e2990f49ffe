import type { z } from '@hono/zod-openapi';
import type { Sql } from './db.ts';
import type { ProductOut, ProductUpsert } from './schemas.ts';

const columns = `id, name, description, image_url AS "imageUrl", unit_amount::int AS "unitAmount", currency`;

export async function listActiveProducts(sql: Sql): Promise<ProductOut[]> {
  return (await sql.query(`SELECT ${columns} FROM products WHERE active ORDER BY name, id`)) as ProductOut[];
}

/** Creates or replaces a product in one statement; `created` tells which happened. */
export async function upsertProduct(
  sql: Sql,
  id: string,
  p: z.infer<typeof ProductUpsert>,
): Promise<{ product: ProductOut; active: boolean; created: boolean }> {
  const rows = await sql.query(
    `INSERT INTO products (id, name, description, image_url, unit_amount, currency, active)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (id) DO UPDATE SET
       name = EXCLUDED.name, description = EXCLUDED.description, image_url = EXCLUDED.image_url,
       unit_amount = EXCLUDED.unit_amount, currency = EXCLUDED.currency, active = EXCLUDED.active,
       updated_at = now()
     RETURNING ${columns}, active, (xmax = 0) AS created`,
    [id, p.name, p.description, p.imageUrl, p.unitAmount, p.currency, p.active],
  );
  const { active, created, ...product } = rows[0] as ProductOut & { active: boolean; created: boolean };
  return { product, active, created };
}
