// The connection phase of a MySQL client connection. Here the server speaks
// first: the proxy connects upstream, relays the server's greeting with the
// capabilities it cannot carry cleared, reads the client's handshake response
// (capabilities, character set, user, initial database), relays it with the
// same bits cleared, then relays the authentication exchange both ways —
// mysql_native_password, caching_sha2_password, ed25519, auth switch
// requests — until the server's OK or ERR. The proxy never sees a password it
// could keep: the scramble and the answers pass through untouched.

import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { PacketFramer, payloadStart, type Packet } from './framer.js';
import { decodeGreeting, decodeHandshakeResponse, rewriteGreeting, rewriteHandshakeResponse } from './handshake.js';
import { CLEARED_CAPS, CLEARED_MARIA_CAPS, Cap, MysqlProtocolError, packet } from './protocol.js';
import { ERR, OK, errPacket, statusOffset } from './responses.js';
import type { MysqlAuthenticated } from './session.js';

const CONNECT_TIMEOUT_MS = 10_000;
/** MariaDB's connect_timeout default: the whole handshake must finish in it. */
const LOGIN_TIMEOUT_MS = 10_000;
/** A handshake packet is small; more is garbage. */
const MAX_HANDSHAKE_PACKET = 64 * 1024;
/** What a session's packets may grow to (the server's max_allowed_packet caps them anyway). */
const MAX_LOGICAL_PACKET = 1024 * 1024 * 1024;

export interface MysqlStartupOptions {
  upstream: { host: string; port: number };
  /** Terminate TLS for clients that ask (CLIENT_SSL is offered only then). */
  tls: tls.SecureContext | null;
  log: Logger;
  loginTimeoutMs?: number;
}

type Step = 'greeting' | 'response' | 'auth' | 'done';

/** A stream that yields `first`, then whatever `socket` receives, and writes to `socket`. */
function replaying(socket: net.Socket, first: Buffer[]): Duplex {
  const d = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _enc, done) {
      socket.write(chunk, (err) => done(err ?? null));
    },
    final(done) {
      socket.end(done);
    },
    destroy(err, done) {
      socket.destroy(err ?? undefined);
      done(err);
    },
  });
  for (const b of first) d.push(b);
  socket.on('data', (chunk: Buffer) => {
    if (!d.push(chunk)) socket.pause();
  });
  socket.on('end', () => d.push(null));
  socket.on('close', () => d.destroy());
  socket.on('error', (err) => d.destroy(err));
  return d;
}

/** A packet with its sequence id moved by `by` (TLS: the SSLRequest took one id on the client side only). */
function shifted(p: Packet, by: number): Buffer {
  const bytes = p.buf.subarray(p.start, p.end);
  if (by === 0) return bytes;
  const copy = Buffer.from(bytes);
  copy[3] = (p.seq + by) & 0xff;
  return copy;
}

/** Resolves once the server accepted the login, or null when the connection ended here. */
export function runMysqlStartup(socket: net.Socket, opts: MysqlStartupOptions): Promise<MysqlAuthenticated | null> {
  return new Promise((resolve) => {
    let client: net.Socket = socket;
    /** CLIENT_SSL is kept only when this listener can terminate TLS. */
    const clearForClient = CLEARED_CAPS | (opts.tls === null ? Cap.Ssl : 0);
    /** After an SSLRequest the client counts one packet more than the server saw. */
    let seqShift = 0;
    const clientFramer = new PacketFramer(MAX_HANDSHAKE_PACKET);
    const upstreamFramer = new PacketFramer(MAX_LOGICAL_PACKET);
    const target = `${opts.upstream.host}:${opts.upstream.port}`;
    let step: Step = 'greeting';
    let serverCaps = 0;
    let serverMariaCaps = 0;
    let mariadb = false;
    let negotiated: Omit<MysqlAuthenticated, 'client' | 'upstream' | 'clientFramer' | 'upstreamFramer' | 'status'> | null = null;

    const upstream = net.connect(opts.upstream.port, opts.upstream.host);
    upstream.setNoDelay(true);
    upstream.setTimeout(CONNECT_TIMEOUT_MS, () => upstream.destroy(new Error('connect timeout')));
    upstream.on('connect', () => upstream.setTimeout(0));
    const timer = setTimeout(() => fail(1152, '08S01', 'Lost connection to server at handshake: login timeout', 2), opts.loginTimeoutMs ?? LOGIN_TIMEOUT_MS);
    timer.unref();

    function finish(result: MysqlAuthenticated | null): void {
      if (step === 'done') return;
      step = 'done';
      clearTimeout(timer);
      client.off('data', onClientData);
      upstream.off('data', onUpstreamData);
      if (client !== socket) socket.off('error', onClientGone);
      client.off('error', onClientGone);
      client.off('close', onClientGone);
      upstream.off('error', onUpstreamError);
      upstream.off('close', onUpstreamClose);
      // A write made before now can still fail on a later tick (EPIPE is
      // emitted from process.nextTick): that error must find a listener, or
      // it would take the whole proxy down. The session sees the socket
      // destroyed; a failed login has nothing left to do with it.
      client.on('error', () => undefined);
      upstream.on('error', () => undefined);
      if (result === null) {
        upstream.destroy();
        client.end();
        setTimeout(() => client.destroy(), 1000).unref();
      } else {
        client.pause();
        upstream.pause();
      }
      resolve(result);
    }

    function fail(code: number, sqlState: string, message: string, seq: number): void {
      if (step === 'done') return;
      if (!client.destroyed) client.write(errPacket(seq, code, sqlState, message));
      opts.log.info({ code, message }, 'login failed in the proxy');
      finish(null);
    }

    function onUpstreamError(err: Error): void {
      if (step === 'greeting') {
        opts.log.warn({ err: err.message, upstream: target }, 'upstream connection failed');
        // ProxySQL's code for an unreachable backend, with 2003's words: libmariadb
        // reports an ERR packet carrying a client-side 2xxx code as malformed.
        fail(9001, 'HY000', `Can't connect to server on '${target}' (${(err as NodeJS.ErrnoException).code ?? err.message})`, 0);
      } else {
        fail(1927, '70100', 'sqlcached: lost the connection to the database server during the handshake', step === 'response' ? 2 : 3);
      }
    }

    function onUpstreamClose(): void {
      onUpstreamError(new Error('the server closed the connection'));
    }

    function onClientGone(): void {
      finish(null);
    }

    function onUpstreamData(chunk: Buffer): void {
      upstreamFramer.push(chunk);
      try {
        for (let p = upstreamFramer.next(); p !== null && step !== 'done'; p = upstreamFramer.next()) serverPacket(p);
      } catch (err) {
        fail(1105, 'HY000', `sqlcached: malformed packet from the server: ${(err as Error).message}`, 1);
      }
    }

    function onClientData(chunk: Buffer): void {
      clientFramer.push(chunk);
      try {
        for (let p = clientFramer.next(); p !== null && step !== 'done'; p = clientFramer.next()) clientPacket(p);
      } catch (err) {
        const e = err instanceof MysqlProtocolError ? err : new MysqlProtocolError(String(err));
        fail(1043, '08S01', `Bad handshake: ${e.message}`, 2);
      }
    }

    function serverPacket(p: Packet): void {
      const payload = p.buf.subarray(payloadStart(p), p.end);
      if (step === 'greeting') {
        if (payload[0] === ERR) {
          // Too many connections, host blocked…: the client gets the server's own refusal.
          client.write(p.buf.subarray(p.start, p.end));
          finish(null);
          return;
        }
        const g = decodeGreeting(payload);
        mariadb = g.serverVersion.includes('MariaDB');
        serverCaps = (g.capabilities & ~(CLEARED_CAPS | Cap.Ssl)) >>> 0;
        serverMariaCaps = (g.mariaCapabilities & ~CLEARED_MARIA_CAPS) >>> 0;
        // A listener with a certificate offers TLS whether or not the server does.
        client.write(packet(p.seq, rewriteGreeting(payload, g, clearForClient, CLEARED_MARIA_CAPS, opts.tls === null ? 0 : Cap.Ssl)));
        step = 'response';
        client.on('data', onClientData);
        return;
      }
      // The authentication exchange: relay everything until OK or ERR.
      client.write(shifted(p, seqShift));
      if (step !== 'auth' || p.continuation) return;
      if (payload[0] === ERR) {
        finish(null);
        return;
      }
      if (payload[0] === OK && negotiated !== null) {
        const s = statusOffset(payload, 0, payload.length);
        const status = s >= 0 ? payload.readUInt16LE(s) : 2;
        const leftover = clientFramer.drain();
        const framer = new PacketFramer(MAX_LOGICAL_PACKET);
        for (const b of leftover) framer.push(b);
        const auth: MysqlAuthenticated = { ...negotiated, client, upstream, clientFramer: framer, upstreamFramer, status };
        finish(auth);
      }
    }

    function clientPacket(p: Packet): void {
      if (step === 'response') {
        const payload = p.buf.subarray(payloadStart(p), p.end);
        const r = decodeHandshakeResponse(payload);
        if (r.sslRequest) {
          if (opts.tls === null || client instanceof tls.TLSSocket) throw new MysqlProtocolError('this listener does not offer TLS (CLIENT_SSL was not advertised)');
          upgradeToTls();
          return;
        }
        const clientCaps = (r.capabilities & ~(CLEARED_CAPS | Cap.Ssl)) >>> 0;
        negotiated = {
          capabilities: (clientCaps & serverCaps) >>> 0,
          mariaCapabilities: (r.mariaCapabilities & serverMariaCaps & ~CLEARED_MARIA_CAPS) >>> 0,
          charset: r.charset,
          user: r.user,
          database: r.database,
          mariadb,
        };
        // The upstream link is plain: CLIENT_SSL never goes to the server.
        upstream.write(packet(p.seq - seqShift, rewriteHandshakeResponse(payload, CLEARED_CAPS | Cap.Ssl, CLEARED_MARIA_CAPS)));
        step = 'auth';
        return;
      }
      upstream.write(shifted(p, -seqShift)); // auth switch answers, public key requests…
    }

    function upgradeToTls(): void {
      client.off('data', onClientData);
      client.off('error', onClientGone);
      client.off('close', onClientGone);
      // MySQL has no answer to an SSLRequest: a client may send its TLS
      // ClientHello right behind it (mysql2 does), and those bytes are
      // already read. Then the TLS socket runs over a stream that replays
      // them first; otherwise it takes the socket itself (faster).
      const early = clientFramer.drain();
      const secureContext = opts.tls!;
      const secure =
        early.length === 0
          ? new tls.TLSSocket(client, { isServer: true, secureContext })
          : new tls.TLSSocket(replaying(client, early), { isServer: true, secureContext });
      client = secure;
      seqShift = 1;
      client.on('data', onClientData);
      client.on('error', onClientGone);
      client.on('close', onClientGone);
    }

    client.on('error', onClientGone);
    client.on('close', onClientGone);
    upstream.on('error', onUpstreamError);
    upstream.on('close', onUpstreamClose);
    upstream.on('data', onUpstreamData);
  });
}
