// Units of config/default.yaml: durations ("60s"), sizes ("256mb") and
// addresses ("127.0.0.1:6432", "[::1]:6432") → plain numbers and objects.
// Every parser throws UnitError, which says what was expected and what came.

import { isIPv6 } from 'node:net';
import type { HostPort } from './schema.js';

/** A value that does not read as the unit asked for. `expected` is the phrase
 * config errors quote after "expected" (`a duration like "60s"`). */
export class UnitError extends RangeError {
  readonly expected: string;
  readonly got: unknown;
  constructor(expected: string, got: unknown) {
    super(`expected ${expected}, got ${describeValue(got)}`);
    this.name = 'UnitError';
    this.expected = expected;
    this.got = got;
  }
}

/** How a config value is quoted in a message: strings as JSON, the rest by kind. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : 'a list';
  if (typeof value === 'object') return 'a mapping';
  return String(value);
}

const DURATION_UNITS_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};
const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/i;
export const DURATION_EXPECTED = 'a duration like "60s"';
const DURATION_NON_NEGATIVE = 'a duration ≥ 0 like "60s"';

/**
 * "250ms" | "60s" | "5m" | "1h" | "1d" (case-insensitive, decimals allowed:
 * "1.5s") → milliseconds, rounded to a whole ms. `0` and `"0"` mean zero.
 * Any other bare number is refused: `ttl: 60` could mean seconds or ms, and a
 * guess would be wrong for half the readers.
 */
export function parseDuration(value: unknown): number {
  if (value === 0) return 0;
  if (typeof value === 'number') {
    throw new UnitError(value < 0 ? DURATION_NON_NEGATIVE : DURATION_EXPECTED, value);
  }
  if (typeof value !== 'string') throw new UnitError(DURATION_EXPECTED, value);
  const text = value.trim();
  if (text === '0') return 0;
  if (text.startsWith('-')) throw new UnitError(DURATION_NON_NEGATIVE, value);
  const match = DURATION.exec(text);
  if (!match) throw new UnitError(DURATION_EXPECTED, value);
  const ms = Math.round(Number(match[1]) * DURATION_UNITS_MS[match[2]!.toLowerCase()]!);
  if (!Number.isSafeInteger(ms)) throw new UnitError(DURATION_EXPECTED, value);
  return ms;
}

// Binary multiples, as pgbouncer, Redis (maxmemory 1mb = 1048576) and most
// ops people read them: 1kb = 1024 bytes, 1mb = 1 MiB, 1gb = 1 GiB. The
// explicit IEC spellings (kib, mib, gib) mean the same.
const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};
const SIZE = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i;
export const SIZE_EXPECTED = 'a size like "256mb"';

/**
 * "512kb" | "256mb" | "1gb" | "1.5mb" | "1024" (case-insensitive) or a
 * number of bytes → bytes, rounded to a whole byte. 1mb = 1 MiB = 1048576.
 */
export function parseBytes(value: unknown): number {
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value >= 0) return value;
    throw new UnitError(SIZE_EXPECTED, value);
  }
  if (typeof value !== 'string') throw new UnitError(SIZE_EXPECTED, value);
  const match = SIZE.exec(value.trim());
  const multiple = match ? SIZE_UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || multiple === undefined) throw new UnitError(SIZE_EXPECTED, value);
  const bytes = Math.round(Number(match[1]) * multiple);
  if (!Number.isSafeInteger(bytes)) throw new UnitError(SIZE_EXPECTED, value);
  return bytes;
}

export const ADDRESS_EXPECTED = 'an address like "127.0.0.1:6432" or "[::1]:6432"';
const PORT_EXPECTED = 'a port 0..65535';
// A host name or IPv4 address: letters, digits, dots, dashes, underscores.
const HOST_NAME = /^[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?$/i;

/**
 * "127.0.0.1:6432" | "localhost:6432" | "[::1]:6432" → {host, port}. IPv6
 * addresses need brackets ("::1:6432" is ambiguous) and come back without
 * them. Port 0 asks the OS for a free port (the tests use it).
 */
export function parseHostPort(value: unknown): HostPort {
  if (typeof value !== 'string') throw new UnitError(ADDRESS_EXPECTED, value);
  const text = value.trim();
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') throw new UnitError(ADDRESS_EXPECTED, value);
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    if (!isIPv6(host)) throw new UnitError(ADDRESS_EXPECTED, value);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) throw new UnitError(ADDRESS_EXPECTED, value);
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (!HOST_NAME.test(host)) throw new UnitError(ADDRESS_EXPECTED, value);
  }
  if (!/^\d{1,5}$/.test(portText)) throw new UnitError(ADDRESS_EXPECTED, value);
  const port = Number(portText);
  if (port > 65535) throw new UnitError(PORT_EXPECTED, value);
  return { host, port };
}

/** The inverse of parseHostPort, for messages and logs: IPv6 gets its brackets back. */
export function formatHostPort({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
