// Framer throughput on a 200k-DataRow result: `npx vitest bench --run test/unit/postgres`.
// MB/s = hz × stream size (printed below). Results are quoted in frontend-codec.ts.
import { Buffer } from 'node:buffer';
import { bench, describe } from 'vitest';
import { MessageFramer } from '../../../src/postgres/frontend-codec.js';
import { server } from '../../fixtures/pg-messages.js';

const ROWS = 200_000;
const messages: Buffer[] = [server.rowDescription([{ name: 'id', typeOid: 23 }, { name: 'email', typeOid: 25 }])];
for (let i = 0; i < ROWS; i++) {
  messages.push(server.dataRow([String(i), `user${i}@example.com`, i % 7 === 0 ? null : 'active', '2024-01-01 00:00:00+00']));
}
messages.push(server.commandComplete(`SELECT ${ROWS}`), server.readyForQuery('I'));
const stream = Buffer.concat(messages);
const chunks: Buffer[] = [];
for (let i = 0; i < stream.length; i += 65536) chunks.push(stream.subarray(i, i + 65536));
console.log(`stream: ${messages.length} messages, ${(stream.length / 1e6).toFixed(2)} MB, ${chunks.length} chunks of 64 KiB`);

function frameAll(input: Buffer[]): number {
  const framer = new MessageFramer({ maxMessageLength: 1 << 30 });
  let n = 0;
  for (const chunk of input) {
    framer.push(chunk);
    for (let f = framer.next(); f !== null; f = framer.next()) n++;
  }
  if (n !== messages.length) throw new Error(`framed ${n} of ${messages.length}`);
  return n;
}

describe('MessageFramer, 200k DataRows', () => {
  bench('64 KiB chunks (as a socket delivers them)', () => {
    frameAll(chunks);
  });
  bench('one chunk', () => {
    frameAll([stream]);
  });
});
