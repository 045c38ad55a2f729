// Units in config/default.yaml: what "60s", "256mb" and "[::1]:6432" mean.

import { describe, expect, it } from 'vitest';
import { UnitError, parseBytes, parseDuration, parseHostPort } from '../../../src/config/units.js';

describe('parseDuration', () => {
  it.each([
    ['250ms', 250],
    ['60s', 60_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['1.5s', 1_500],
    ['60S', 60_000],
    ['5M', 300_000],
    ['250MS', 250],
    [' 60 s ', 60_000],
    [0, 0],
    ['0', 0],
    ['0s', 0],
  ] as const)('reads %j as %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each([60, '60', 'lots', '5 minutes', '1w', '', null, true, {}, '1e3s'])(
    'refuses %j: a bare number or unknown unit is ambiguous',
    (input) => {
      expect(() => parseDuration(input)).toThrow(new UnitError('a duration like "60s"', input));
    },
  );

  it.each(['-5m', -1])('refuses the negative %j as "a duration ≥ 0"', (input) => {
    expect(() => parseDuration(input)).toThrowError(/^expected a duration ≥ 0 like "60s", got/);
  });
});

describe('parseBytes', () => {
  it.each([
    ['256mb', 256 * 1024 * 1024],
    ['1mb', 1024 * 1024],
    ['512kb', 512 * 1024],
    ['1gb', 1024 ** 3],
    ['1MB', 1024 * 1024],
    ['1MiB', 1024 * 1024],
    ['1m', 1024 * 1024],
    ['1.5kb', 1536],
    ['100b', 100],
    ['100', 100],
    [' 2 GB ', 2 * 1024 ** 3],
    [4096, 4096],
    [0, 0],
  ] as const)('reads %j as %d bytes (binary multiples: 1mb = 1 MiB)', (input, bytes) => {
    expect(parseBytes(input)).toBe(bytes);
  });

  it.each(['lots', '1xb', '-1mb', -1, 1.5, '', null, [], '1mb2'])('refuses %j', (input) => {
    expect(() => parseBytes(input)).toThrow(new UnitError('a size like "256mb"', input));
  });

  it('reports what it got in its message', () => {
    expect(() => parseBytes('lots')).toThrowError('expected a size like "256mb", got "lots"');
  });
});

describe('parseHostPort', () => {
  it.each([
    ['127.0.0.1:6432', { host: '127.0.0.1', port: 6432 }],
    ['[::1]:6432', { host: '::1', port: 6432 }],
    ['[::]:0', { host: '::', port: 0 }],
    ['localhost:5432', { host: 'localhost', port: 5432 }],
    ['postgres:5432', { host: 'postgres', port: 5432 }],
    ['db-1.internal.example:5432', { host: 'db-1.internal.example', port: 5432 }],
    ['0.0.0.0:65535', { host: '0.0.0.0', port: 65535 }],
    ['127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
  ] as const)('reads %j', (input, expected) => {
    expect(parseHostPort(input)).toEqual(expected);
  });

  it.each(['6432', 6432, '::1:6432', '[::1]6432', '[nothost]:1', '127.0.0.1:', ':6432', '127.0.0.1:port', 'a b:1', null])(
    'refuses %j with the address forms it accepts',
    (input) => {
      expect(() => parseHostPort(input)).toThrow(
        new UnitError('an address like "127.0.0.1:6432" or "[::1]:6432"', input),
      );
    },
  );

  it('refuses a port above 65535 as a port error', () => {
    expect(() => parseHostPort('127.0.0.1:65536')).toThrowError(
      'expected a port 0..65535, got "127.0.0.1:65536"',
    );
  });
});
