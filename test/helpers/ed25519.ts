// MariaDB's client_ed25519 authentication for mysql2 (which has no such
// plugin), so tests can log in through an auth switch with a library client,
// not only with the mariadb CLI. MariaDB signs the server's 32-byte scramble
// with Ed25519 whose secret is SHA-512(password) rather than SHA-512(seed)
// (plugin/auth_ed25519/ref10/sign.c), which node:crypto cannot express; the
// curve arithmetic is done here in BigInt (slow, ~10 ms, fine for tests).

import { createHash } from 'node:crypto';

const P = 2n ** 255n - 19n;
const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const mod = (a: bigint, m: bigint = P): bigint => ((a % m) + m) % m;

function inv(a: bigint): bigint {
  // Fermat: a^(p-2) mod p
  let result = 1n;
  let base = mod(a);
  let e = P - 2n;
  while (e > 0n) {
    if (e & 1n) result = mod(result * base);
    base = mod(base * base);
    e >>= 1n;
  }
  return result;
}

const D = mod(-121665n * inv(121666n));
type Point = [bigint, bigint, bigint, bigint]; // extended coordinates X, Y, Z, T
const BASE_X = 15112221349535400772501151409588531511454012693041857206046113283949847762202n;
const BASE_Y = 46316835694926478169428394003475163141307993866256225615783033603165251855960n;
const BASE: Point = [BASE_X, BASE_Y, 1n, mod(BASE_X * BASE_Y)];

function add([x1, y1, z1, t1]: Point, [x2, y2, z2, t2]: Point): Point {
  const a = mod((y1 - x1) * (y2 - x2));
  const b = mod((y1 + x1) * (y2 + x2));
  const c = mod(t1 * 2n * D * t2);
  const d = mod(z1 * 2n * z2);
  const e = b - a;
  const f = d - c;
  const g = d + c;
  const h = b + a;
  return [mod(e * f), mod(g * h), mod(f * g), mod(e * h)];
}

function multiply(k: bigint): Point {
  let result: Point = [0n, 1n, 1n, 0n];
  let addend = BASE;
  while (k > 0n) {
    if (k & 1n) result = add(result, addend);
    addend = add(addend, addend);
    k >>= 1n;
  }
  return result;
}

function encode([x, y, z]: Point): Buffer {
  const zi = inv(z);
  const ax = mod(x * zi);
  const ay = mod(y * zi);
  const out = Buffer.alloc(32);
  let v = ay;
  for (let i = 0; i < 32; i += 1) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  if (ax & 1n) out[31]! |= 0x80;
  return out;
}

const le = (b: Uint8Array): bigint => b.reduceRight((acc, byte) => (acc << 8n) | BigInt(byte), 0n);
const sha512 = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return h.digest();
};

function scalarBytes(s: bigint): Buffer {
  const out = Buffer.alloc(32);
  for (let i = 0; i < 32; i += 1) {
    out[i] = Number(s & 0xffn);
    s >>= 8n;
  }
  return out;
}

/** MariaDB's ed25519 signature of `message` (the scramble) under `password`: R || S, 64 bytes. */
export function mariadbEd25519Sign(password: string, message: Uint8Array): Buffer {
  const az = sha512(Buffer.from(password, 'utf8'));
  az[0]! &= 248;
  az[31]! &= 63;
  az[31]! |= 64;
  const a = le(az.subarray(0, 32));
  const publicKey = encode(multiply(a));
  const r = mod(le(sha512(az.subarray(32, 64), message)), L);
  const R = encode(multiply(r));
  const k = mod(le(sha512(R, publicKey, message)), L);
  const s = mod(k * a + r, L);
  return Buffer.concat([R, scalarBytes(s)]);
}

/** mysql2 `authPlugins` entry: answers the server's client_ed25519 auth switch with the signature. */
export function ed25519AuthPlugins(password: string): Record<string, () => (data: Buffer) => Buffer> {
  return {
    client_ed25519: () => (data: Buffer) => mariadbEd25519Sign(password, data.subarray(0, 32)),
  };
}
