// The startup phase of a PostgreSQL client connection, the proxy playing the
// server until authentication is done: SSLRequest / GSSENCRequest (answered
// 'N', or TLS when the listener has a certificate), CancelRequest (forwarded
// to the upstream: keys are relayed untouched, so the client's key is the
// server's), StartupMessage (relayed byte for byte), then the authentication
// exchange relayed both ways until the server's first ReadyForQuery. The
// proxy never sees a password it could keep: SCRAM, MD5 and cleartext all
// pass through as opaque 'p' / 'R' messages.

import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { decodeBackendKeyData, decodeErrorResponse, decodeParameterStatus, decodeReadyForQuery } from './backend-codec.js';
import { decodeStartupPacket, MessageFramer, startupPacketLength } from './frontend-codec.js';
import { BackendCode, ProtocolError, type TransactionStatus } from './messages.js';
import { CONNECTION_FAILURE, PROTOCOL_VIOLATION, QUERY_CANCELED, errorResponse } from './sqlstate.js';
import { sslResponse } from './writer.js';

/** Client messages are small; 1 GiB is the server's own limit for COPY data. */
export const MAX_CLIENT_MESSAGE = 1024 * 1024 * 1024;
export const MAX_SERVER_MESSAGE = 1024 * 1024 * 1024;
const CONNECT_TIMEOUT_MS = 10_000;
/** PostgreSQL's authentication_timeout default. */
const STARTUP_TIMEOUT_MS = 60_000;

export interface StartupOptions {
  upstream: { host: string; port: number };
  tls: tls.SecureContext | null;
  log: Logger;
}

export interface Authenticated {
  client: net.Socket;
  upstream: net.Socket;
  clientFramer: MessageFramer;
  upstreamFramer: MessageFramer;
  parameters: Map<string, string>;
  serverParameters: Map<string, string>;
  status: TransactionStatus;
}

/**
 * Runs the startup phase on `socket`. Resolves with both sockets once the
 * server says ReadyForQuery, or null when the connection ended here (cancel
 * request, failed login, bad input: the client already got its answer).
 */
export function runStartup(socket: net.Socket, opts: StartupOptions): Promise<Authenticated | null> {
  return new Promise((resolve) => {
    let client: net.Socket = socket;
    let pending: Buffer = Buffer.alloc(0);
    let upstream: net.Socket | null = null;
    let done = false;
    const clientFramer = new MessageFramer({ maxMessageLength: MAX_CLIENT_MESSAGE });
    const upstreamFramer = new MessageFramer({ maxMessageLength: MAX_SERVER_MESSAGE });
    const serverParameters = new Map<string, string>();
    let parameters: Map<string, string> | null = null;
    /** Client bytes after the startup packet not yet relayed (see relayAuthAnswers). */
    let early: Buffer = Buffer.alloc(0);
    let holdingEarly = false;

    const finish = (value: Authenticated | null): void => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      client.off('data', onClientData);
      client.off('error', onClientGone);
      client.off('close', onClientGone);
      if (upstream) {
        upstream.off('data', onUpstreamData);
        upstream.off('error', onUpstreamError);
        upstream.off('close', onUpstreamClose);
      }
      if (value === null) {
        // A write the peer no longer reads fails on a later tick: that error
        // must find a listener, or it would take the whole proxy down.
        client.on('error', () => undefined);
        upstream?.on('error', () => undefined);
        upstream?.destroy();
        if (!client.destroyed) client.end();
      } else {
        // Held still until the session attaches its own handlers. A write
        // made in this tick can still fail on the next one (EPIPE is emitted
        // from process.nextTick, before the session's constructor runs after
        // the await): that error must find a listener, or it would take the
        // whole proxy down. The session sees the socket destroyed.
        value.client.on('error', () => undefined);
        value.upstream.on('error', () => undefined);
        value.client.pause();
        value.upstream.pause();
      }
      resolve(value);
    };

    const fail = (code: string, message: string): void => {
      if (!client.destroyed && client.writable) client.write(errorResponse(code, message));
      finish(null);
    };

    function onClientGone(): void {
      finish(null);
    }

    function onClientData(chunk: Buffer): void {
      try {
        if (parameters !== null) {
          relayAuthAnswers(chunk);
          return;
        }
        pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
        readStartupPackets();
      } catch (err) {
        const message = err instanceof ProtocolError ? err.message : 'invalid startup packet';
        opts.log.warn({ err: message }, 'protocol violation during startup');
        fail(PROTOCOL_VIOLATION, message);
      }
    }

    /**
     * Authentication answers ('p') go to the server as they are. Anything
     * else (a client that pipelines its first Query behind the startup
     * packet) waits, in order, for the session: it must be seen by the
     * session to be routed, cached and answered.
     */
    function relayAuthAnswers(chunk: Buffer): void {
      early = early.length === 0 ? chunk : Buffer.concat([early, chunk]);
      while (!holdingEarly && early.length >= 5) {
        if (early[0] !== 0x70) {
          holdingEarly = true;
          break;
        }
        const length = early.readInt32BE(1);
        if (length < 4 || length > MAX_CLIENT_MESSAGE) throw new ProtocolError(`invalid message length ${length}`);
        if (early.length < length + 1) break;
        upstream?.write(early.subarray(0, length + 1));
        early = early.subarray(length + 1);
      }
    }

    function readStartupPackets(): void {
      while (parameters === null && !done) {
        const length = startupPacketLength(pending, 0);
        if (length === null || pending.length < length) return;
        const packet = pending.subarray(0, length);
        const rest = pending.subarray(length);
        pending = Buffer.alloc(0);
        const decoded = decodeStartupPacket(packet);
        switch (decoded.type) {
          case 'ssl-request':
            if (opts.tls !== null && !(client instanceof tls.TLSSocket)) {
              client.write(sslResponse('S'));
              upgradeToTls(rest);
              return;
            }
            client.write(sslResponse('N'));
            pending = rest;
            break;
          case 'gssenc-request':
            client.write(sslResponse('N'));
            pending = rest;
            break;
          case 'cancel-request':
            forwardCancel(packet);
            finish(null);
            return;
          case 'startup':
            parameters = decoded.parameters;
            connectUpstream(packet);
            if (rest.length > 0) relayAuthAnswers(rest);
            return;
        }
      }
    }

    function upgradeToTls(rest: Buffer): void {
      client.off('data', onClientData);
      client.off('error', onClientGone);
      client.off('close', onClientGone);
      const secure = new tls.TLSSocket(client, { isServer: true, secureContext: opts.tls! });
      client = secure;
      client.on('data', onClientData);
      client.on('error', onClientGone);
      client.on('close', onClientGone);
      if (rest.length > 0) {
        // Bytes after SSLRequest but before the handshake are a protocol
        // violation (CVE-2021-23214): refuse rather than mix them in.
        fail(PROTOCOL_VIOLATION, 'unexpected data after SSLRequest');
      }
    }

    function forwardCancel(packet: Buffer): void {
      const copy = Buffer.from(packet);
      const conn = net.connect(opts.upstream.port, opts.upstream.host);
      conn.setTimeout(CONNECT_TIMEOUT_MS, () => conn.destroy());
      conn.on('connect', () => conn.end(copy));
      conn.on('error', (err) => opts.log.warn({ err: err.message }, 'cancel request could not reach upstream'));
    }

    function connectUpstream(startupPacket: Buffer): void {
      const copy = Buffer.from(startupPacket);
      const conn = net.connect(opts.upstream.port, opts.upstream.host);
      upstream = conn;
      conn.setNoDelay(true);
      conn.setTimeout(CONNECT_TIMEOUT_MS, () => conn.destroy(new Error('connect timeout')));
      // Written at once: Node queues it until the connection is up, so the
      // client's next messages (sent with the startup packet) follow it.
      conn.write(copy);
      conn.on('connect', () => conn.setTimeout(0));
      conn.on('data', onUpstreamData);
      conn.on('error', onUpstreamError);
      conn.on('close', onUpstreamClose);
    }

    function onUpstreamError(err: Error): void {
      opts.log.warn({ err: err.message, upstream: `${opts.upstream.host}:${opts.upstream.port}` }, 'upstream connection failed');
      fail(CONNECTION_FAILURE, `sqlcached: could not connect to the database server: ${err.message}`);
    }

    function onUpstreamClose(): void {
      fail(CONNECTION_FAILURE, 'sqlcached: the database server closed the connection during startup');
    }

    function onUpstreamData(chunk: Buffer): void {
      try {
        upstreamFramer.push(chunk);
        for (let f = upstreamFramer.next(); f !== null; f = upstreamFramer.next()) {
          const bytes = f.buf.subarray(f.start, f.end);
          switch (f.type) {
            case BackendCode.ParameterStatus: {
              const p = decodeParameterStatus(f.buf, f.start, f.end);
              serverParameters.set(p.name, p.value);
              break;
            }
            case BackendCode.BackendKeyData:
              decodeBackendKeyData(f.buf, f.start, f.end); // validated; relayed as is
              break;
            case BackendCode.ErrorResponse: {
              const e = decodeErrorResponse(f.buf, f.start, f.end);
              opts.log.info({ code: e.code, user: parameters?.get('user') }, 'login refused by the server');
              client.write(bytes);
              finish(null);
              return;
            }
            case BackendCode.ReadyForQuery: {
              const status = decodeReadyForQuery(f.buf, f.start, f.end);
              client.write(bytes);
              // What the client sent ahead is the session's first input.
              if (early.length > 0) clientFramer.push(Buffer.from(early));
              const auth: Authenticated = {
                client,
                upstream: upstream!,
                clientFramer,
                upstreamFramer,
                parameters: parameters!,
                serverParameters,
                status,
              };
              finish(auth);
              return;
            }
          }
          client.write(bytes);
        }
      } catch (err) {
        opts.log.warn({ err: (err as Error).message }, 'bad message from upstream during startup');
        fail(PROTOCOL_VIOLATION, 'sqlcached: invalid message from the database server');
      }
    }

    // Like the server's authentication_timeout: a client that never finishes
    // logging in does not hold its socket (and an upstream backend) forever.
    const deadline = setTimeout(() => fail(QUERY_CANCELED, 'sqlcached: canceling authentication due to timeout'), STARTUP_TIMEOUT_MS);
    deadline.unref();
    client.on('data', onClientData);
    client.on('error', onClientGone);
    client.on('close', onClientGone);
  });
}
