import pg from 'pg';

/** A one-off query on a fresh connection, for tests that look at a database from outside. */
export async function queryOnce(url: string, text: string): Promise<Array<Record<string, unknown>>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text)).rows;
  } finally {
    await client.end();
  }
}
