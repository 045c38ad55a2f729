// The benchmark's peers (bench/peers.ts): PgBouncer and Pgpool-II start on a
// free loopback port, answer through it, and leave nothing behind when stopped.
// Skipped where the Debian package is not installed.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { pgbouncerInstalled, pgpoolInstalled, startPgBouncer, startPgpool, type RunningPeer } from '../../../bench/peers.js';

async function selectOne(port: number): Promise<number> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'test' });
  await client.connect();
  try {
    const { rows } = await client.query<{ one: number }>('SELECT 1 AS one');
    return rows[0]?.one ?? NaN;
  } finally {
    await client.end();
  }
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Processes still in the peer's process group (pgpool's pre-forked children join it). */
function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Fields after the command name "(...)": state, ppid, pgrp.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
      if (pgrp === pgid) members.push(Number(entry));
    } catch {
      // the process exited while we looked
    }
  }
  return members;
}

async function expectCleanStop(peer: RunningPeer): Promise<void> {
  expect(groupMembers(peer.pid).length).toBeGreaterThan(0);
  await peer.stop();
  expect(groupMembers(peer.pid)).toEqual([]);
  expect(await portIsFree(peer.port)).toBe(true);
  expect(existsSync(peer.dir)).toBe(false);
}

describe('bench peers', () => {
  it.skipIf(!pgbouncerInstalled())('PgBouncer answers SELECT 1 on its own port and stops without leftovers', async () => {
    const bouncer = await startPgBouncer({ database: 'test' });
    try {
      expect(await selectOne(bouncer.port)).toBe(1);
    } finally {
      await expectCleanStop(bouncer);
    }
  }, 20_000);

  it.skipIf(!pgpoolInstalled())('Pgpool-II answers SELECT 1 on its own port and stops with all its pre-forked children', async () => {
    const pool = await startPgpool();
    try {
      expect(await selectOne(pool.port)).toBe(1);
      // pgpool started 32 children plus its workers, all in the one group stop() signals.
      expect(groupMembers(pool.pid).length).toBeGreaterThan(32);
    } finally {
      await expectCleanStop(pool);
    }
  }, 20_000);
});
