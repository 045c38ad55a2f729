// A named statement the client prepared in a batch answered from cache
// exists for the client only; the proxy prepares it upstream when a later
// batch needs the server (lazy Parse). Two such batches pipelined in one
// write must not both send that Parse: the server would answer the second
// with "prepared statement … already exists" (seen with postgres.js in the
// pipelined stress test under load).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directQuery, endDirect, uniqueName } from '../helpers/db.js';
import { startProxy, type TestProxy } from '../helpers/proxy.js';
import { B, E, P, S } from '../helpers/transcript.js';
import { RawClient } from '../helpers/wire.js';

const T = uniqueName('lazy_parse');
let proxy: TestProxy;

beforeAll(async () => {
  await directQuery(`CREATE TABLE ${T} (id int PRIMARY KEY, v text); INSERT INTO ${T} SELECT g, 'v' || g FROM generate_series(1, 10) g`);
  proxy = await startProxy();
});

afterAll(async () => {
  await proxy?.stop();
  await directQuery(`DROP TABLE IF EXISTS ${T}`);
  await endDirect();
});

async function client(): Promise<RawClient> {
  const raw = await RawClient.connect(proxy.port, { parse: true });
  await raw.startup({ user: 'postgres', database: 'test' });
  return raw;
}

describe('pipelined batches that need a statement the server does not have yet', () => {
  it('the proxy prepares it upstream once; both batches get their rows, no error', async () => {
    const sql = `SELECT v FROM ${T} WHERE id = $1`;
    const warm = await client();
    // Another connection caches id = 1 (twice: the second is a hit).
    for (let i = 0; i < 2; i++) await warm.request(Buffer.concat([P(sql, 'st'), B('st', ['1']), E(), S()]));
    warm.destroy();

    const raw = await client();
    const ready = () => raw.count('readyForQuery');
    const base = ready();
    // Parse answered from cache: the server never saw 'st' on this connection.
    raw.write(Buffer.concat([P(sql, 'st'), B('st', ['1']), E(), S()]));
    expect(await raw.until(() => ready() === base + 1)).toBe(true);
    expect(raw.count('parseComplete')).toBe(1);
    // Two misses in one write: both need 'st' upstream.
    raw.write(Buffer.concat([B('st', ['2']), E(), S(), B('st', ['3']), E(), S()]));
    expect(await raw.until(() => ready() === base + 3)).toBe(true);
    expect(raw.errors().map((e) => e.message)).toEqual([]);
    const rows = raw.messages.filter((m) => m.name === 'dataRow').map((m) => (m as unknown as { fields: string[] }).fields[0]);
    expect(rows.slice(-3)).toEqual(['v1', 'v2', 'v3']);
    raw.destroy();
  });
});
