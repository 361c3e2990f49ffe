/**
 * Demo catalogue for local development (`npm run dev` seeds it on every start).
 * Idempotent: a run makes the demo rows exactly as listed here and touches nothing else.
 */
import pg from 'pg';

interface DemoProduct {
  id: string;
  name: string;
  description: string;
  imageUrl: string | null;
  /** Minor units (cents), as Stripe takes them. */
  unitAmount: number;
  currency: string;
}

// No image files ship with the Worker yet, so imageUrl stays null rather than a dead link.
export const DEMO_PRODUCTS: readonly DemoProduct[] = [
  {
    id: 'tshirt-classic',
    name: 'Classic T-shirt',
    description: 'Heavyweight organic cotton tee with a relaxed fit.',
    imageUrl: null,
    unitAmount: 2500,
    currency: 'usd',
  },
  {
    id: 'hoodie-zip',
    name: 'Zip Hoodie',
    description: 'Brushed fleece hoodie with a full-length zip and kangaroo pockets.',
    imageUrl: null,
    unitAmount: 5900,
    currency: 'usd',
  },
  {
    id: 'mug-ceramic',
    name: 'Ceramic Mug',
    description: '350 ml stoneware mug, dishwasher safe.',
    imageUrl: null,
    unitAmount: 1400,
    currency: 'usd',
  },
  {
    id: 'sticker-pack',
    name: 'Sticker Pack',
    description: 'Five vinyl stickers, weatherproof.',
    imageUrl: null,
    unitAmount: 500,
    currency: 'usd',
  },
];

/**
 * Inserts the demo products, or puts them back as listed (active, same price) when they were
 * changed. Returns how many rows it wrote: the number of demo products on a fresh database,
 * 0 when they already are as listed (updated_at is then left alone).
 */
export async function seedDemoProducts(databaseUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'edge-checkout-seed' });
  await client.connect();
  try {
    const { rowCount } = await client.query(
      `INSERT INTO products (id, name, description, image_url, unit_amount, currency, active)
       SELECT id, name, description, image_url, unit_amount, currency, true
       FROM jsonb_to_recordset($1::jsonb)
         AS demo(id text, name text, description text, image_url text, unit_amount bigint, currency text)
       ON CONFLICT (id) DO UPDATE
         SET name = EXCLUDED.name, description = EXCLUDED.description, image_url = EXCLUDED.image_url,
             unit_amount = EXCLUDED.unit_amount, currency = EXCLUDED.currency, active = true, updated_at = now()
         WHERE (products.name, products.description, products.image_url, products.unit_amount, products.currency, products.active)
               IS DISTINCT FROM
               (EXCLUDED.name, EXCLUDED.description, EXCLUDED.image_url, EXCLUDED.unit_amount, EXCLUDED.currency, true)`,
      [
        JSON.stringify(
          DEMO_PRODUCTS.map((p) => ({
            id: p.id,
            name: p.name,
            description: p.description,
            image_url: p.imageUrl,
            unit_amount: p.unitAmount,
            currency: p.currency,
          })),
        ),
      ],
    );
    return rowCount ?? 0;
  } finally {
    await client.end();
  }
}
