// One MySQL client connection and its upstream connection, after the
// handshake. The protocol is half duplex: one command, then its whole
// response. So the session is one state machine over `phase`:
//
//   idle ──command──▶ busy ──response done──▶ idle
//     │                 ├─ LOCAL INFILE ─▶ infile (client packets flow up until an empty one)
//     │                 └─ change user ──▶ auth (both directions flow until OK/ERR)
//     ├──(catalog/settings unknown)──▶ lookup ──▶ the same command again
//     └── a command over 16 MiB ──▶ streaming (its pieces flow up unread) ──▶ busy
//
// Commands a client pipelines wait in the framer until the session is idle.
// A cacheable read is answered from the cache without touching the upstream;
// a write's tables are bumped before its OK reaches the client.

import type net from 'node:net';
import type { Logger } from 'pino';
import type { ListenerStats } from '../core/stats.js';
import type { QueryCache } from '../core/query-cache.js';
import type { SessionView } from '../core/types.js';
import { AsideQueries } from './aside.js';
import { QueryPath } from './query-path.js';
import { requestDone } from './request-done.js';
import { UNREAD, type Request } from './request.js';
import { PacketFramer, payloadLength, payloadStart, type Packet } from './framer.js';
import { Command, MysqlProtocolError, Status } from './protocol.js';
import { WriteSet } from './qualify.js';
import { ERR, OK, ResponseReader, errPacket, type ResponseKind } from './responses.js';
import { MysqlSessionContext } from './session-context.js';
import { PreparedStatements } from './statements.js';

export interface MysqlAuthenticated {
  client: net.Socket;
  upstream: net.Socket;
  clientFramer: PacketFramer;
  upstreamFramer: PacketFramer;
  /** Negotiated (client ∧ server, minus what the proxy clears). */
  capabilities: number;
  mariaCapabilities: number;
  charset: number;
  user: string;
  database: string | null;
  status: number;
  /** The greeting's version names MariaDB (its variables differ from MySQL's). */
  mariadb: boolean;
}

export interface MysqlSessionDeps {
  queryCache: QueryCache;
  upstreamAddress: string;
  log: Logger;
  /** Databases this listener has seen: a write to unknown tables bumps them all. */
  databases: Set<string>;
  onClose(s: MysqlSession): void;
  /** The listener's counters (hits, misses, latency per listener). */
  meter?: ListenerStats;
}

type Phase = 'idle' | 'busy' | 'streaming' | 'infile' | 'auth' | 'lookup' | 'waiting' | 'closed';

/** Pause reading a client that pipelines more than this while a command runs. */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;

/**
 * Members without `private` are the seam the phase modules work through:
 * query-path.ts (COM_QUERY / COM_STMT_EXECUTE), aside.ts (look-ups, hit
 * replays) and request-done.ts (what a finished response changes).
 */
export class MysqlSession {
  readonly ctx: MysqlSessionContext;
  readonly queries: QueryPath;
  readonly aside: AsideQueries;
  readonly qc: QueryCache;
  readonly meter: ListenerStats | null;
  readonly client: net.Socket;
  private readonly upstream: net.Socket;
  private readonly clientFramer: PacketFramer;
  private readonly upstreamFramer: PacketFramer;
  private readonly caps: number;
  readonly mariadb: boolean;
  /** The handshake's collation id: the character set until the settings are read. */
  private readonly charset: number;
  readonly log: Logger;
  readonly debug: boolean;
  readonly statements = new PreparedStatements();
  phase: Phase = 'idle';
  status: number;
  private request: Request | null = null;
  /** Writes of the open transaction: bumped again at its end. */
  txnWrites = new WriteSet();
  private draining = false;
  /** A failed request may have run a USE: unqualified names resolve nowhere until DATABASE() is read again. */
  databaseKnown = true;
  private cachedView: SessionView | null = null;
  private viewVersion = -1;
  private viewStatus = -1;

  constructor(
    auth: MysqlAuthenticated,
    readonly deps: MysqlSessionDeps,
  ) {
    this.client = auth.client;
    this.upstream = auth.upstream;
    this.clientFramer = auth.clientFramer;
    this.upstreamFramer = auth.upstreamFramer;
    this.caps = auth.capabilities;
    this.mariadb = auth.mariadb;
    this.charset = auth.charset;
    this.status = auth.status;
    this.qc = deps.queryCache;
    this.meter = deps.meter ?? null;
    this.log = deps.log;
    this.debug = this.log.isLevelEnabled('debug');
    const connectionPart = `${auth.capabilities}/${auth.mariaCapabilities}/${auth.charset}`;
    this.ctx = new MysqlSessionContext(auth.user, auth.database, connectionPart);
    this.queries = new QueryPath(this);
    this.aside = new AsideQueries(this);
    if (auth.database !== null) this.noteDatabase(auth.database);

    this.client.on('data', (chunk: Buffer) => this.onClientData(chunk));
    this.upstream.on('data', (chunk: Buffer) => this.onUpstreamData(chunk));
    this.client.on('drain', () => this.upstream.resume());
    this.upstream.on('drain', () => this.client.resume());
    this.client.on('close', () => this.close('client closed'));
    this.upstream.on('close', () => this.upstreamClosed());
    this.client.on('error', (err) => this.log.debug({ err }, 'client socket error'));
    this.upstream.on('error', (err) => this.log.debug({ err }, 'upstream socket error'));
    this.client.resume();
    this.upstream.resume();
    // Either socket may have failed between the login and now ('close' already emitted).
    if (this.client.destroyed) {
      this.close('client closed');
      return;
    }
    if (this.upstream.destroyed) {
      this.upstreamClosed();
      return;
    }
    this.pumpClient();
    this.pumpUpstream();
  }

  /** Shutdown: close now when idle, else after the current command (at most graceMs). */
  drain(graceMs: number): void {
    this.draining = true;
    if (this.phase === 'idle') this.shutDown();
    else setTimeout(() => this.shutDown(), graceMs).unref();
  }

  // ---- client side ---------------------------------------------------------

  private onClientData(chunk: Buffer): void {
    this.clientFramer.push(chunk);
    this.pumpClient();
  }

  pumpClient(): void {
    try {
      while (this.phase !== 'closed') {
        if (this.phase === 'infile' || this.phase === 'auth' || this.phase === 'streaming') {
          const p = this.clientFramer.next();
          if (p === null) break;
          this.writeUpstream(p.buf.subarray(p.start, p.end));
          if (this.phase === 'streaming' && !p.continues) {
            this.phase = this.streamEnd;
            if (this.request !== null) this.pumpUpstream();
            continue;
          }
          // An empty packet (not the tail of a 16 MiB one) ends the file.
          if (this.phase === 'infile' && payloadLength(p) === 0 && !p.continuation) this.phase = 'busy';
          continue;
        }
        if (this.phase !== 'idle') break;
        const cmd = this.readCommand();
        if (cmd === null) break;
        this.dispatch(cmd.payload, cmd.raw, false);
      }
    } catch (err) {
      this.protocolViolation(err);
      return;
    }
    // Commands pipelined behind a running one wait in the framer, up to a
    // bound. While a command streams up (large command, LOCAL INFILE), the
    // framer holds at most one partial packet and must keep reading.
    const waiting = this.phase === 'busy' || this.phase === 'lookup' || this.phase === 'waiting';
    if (this.clientFramer.pending > MAX_QUEUED_BYTES && waiting) this.client.pause();
    else if (this.client.isPaused() && this.upstream.writableLength === 0) this.client.resume();
  }

  /**
   * The next command, or null until it has arrived. A command over 16 MiB
   * (several packets) is not buffered: its pieces are streamed upstream as
   * they come (`streaming`), unread, and it counts as a write of unknown tables.
   */
  private readCommand(): { payload: Buffer; raw: Buffer[] } | null {
    const p = this.clientFramer.next();
    if (p === null) return null;
    const raw = [p.buf.subarray(p.start, p.end)];
    const payload = p.buf.subarray(payloadStart(p), p.end);
    if (!p.continues) return { payload, raw };
    this.streamCommand(payload[0] ?? -1, raw);
    return null;
  }

  private streamCommand(command: number, raw: Buffer[]): void {
    const unknown = { command, reader: this.reader(command === Command.StmtPrepare ? 'prepare' : command === Command.Query || command === Command.StmtExecute ? 'result' : 'single'), fill: null, writes: WriteSet.unknown(), analysis: null };
    // COM_STMT_SEND_LONG_DATA has no answer: nothing to wait for after the last piece.
    const req: Request | null = command === Command.StmtSendLongData ? null : command === Command.StmtPrepare ? { ...unknown, prepareSql: UNREAD, prepareDb: null } : unknown;
    this.request = req;
    this.phase = 'streaming';
    this.streamEnd = req === null ? 'idle' : 'busy';
    this.writeUpstream(raw);
  }

  private streamEnd: 'idle' | 'busy' = 'busy';

  dispatch(payload: Buffer, raw: Buffer[], retried: boolean): void {
    // An empty packet: the server answers ERR 1047 and goes on.
    if (payload.length === 0) return this.forward(raw, this.simpleRequest(-1, 'single'));
    const command = payload[0]!;
    // A COM_QUERY in sequence checks its text against the last hit in
    // onQuery, once decoded (one decode per query, not two).
    if (this.aside.lastHit !== null && !(command === Command.Query && raw[0]![3] === 0) && this.aside.replayHitFirst(payload, raw)) return;
    if (raw[0]![3] !== 0) {
      // A command must start a new sequence: the server answers "Got packets
      // out of order" and closes. Never a hit in its place.
      return this.forward(raw, { ...this.simpleRequest(command, 'single'), writes: WriteSet.unknown() });
    }
    switch (command) {
      case Command.Query:
        return this.queries.onQuery(payload, raw, retried);
      case Command.StmtExecute:
        return this.queries.onExecute(payload, raw, retried);
      case Command.StmtPrepare: {
        const { text, unsafe } = this.decodeText(payload, 1);
        return this.forward(raw, { command, reader: this.reader('prepare'), fill: null, writes: null, analysis: null, prepareSql: text, prepareDb: this.ctx.database, unsafeText: unsafe });
      }
      case Command.StmtClose:
        this.statements.close(PreparedStatements.idOf(payload));
        this.writeUpstream(raw);
        return;
      case Command.StmtSendLongData: {
        const stmt = this.statements.get(PreparedStatements.idOf(payload));
        if (stmt) stmt.longData = true;
        this.writeUpstream(raw);
        return;
      }
      case Command.StmtReset: {
        const stmt = this.statements.get(PreparedStatements.idOf(payload));
        if (stmt) stmt.longData = false;
        return this.forward(raw, this.simpleRequest(command, 'ok'));
      }
      case Command.StmtFetch:
        return this.forward(raw, this.simpleRequest(command, 'fetch'));
      case Command.Quit:
        this.writeUpstream(raw);
        this.upstream.end();
        this.close('client quit');
        return;
      case Command.InitDb: {
        const db = this.decodeText(payload, 1).text;
        return this.forward(raw, { ...this.simpleRequest(command, 'ok'), onOk: () => this.useDatabase(db) });
      }
      case Command.Ping:
      case Command.ProcessKill:
        return this.forward(raw, this.simpleRequest(command, 'ok'));
      case Command.ResetConnection:
        return this.forward(raw, {
          ...this.simpleRequest(command, 'ok'),
          onOk: () => {
            this.ctx.reset(this.ctx.user, this.ctx.database);
            this.statements.clear();
          },
        });
      case Command.SetOption:
      case Command.Debug:
        return this.forward(raw, this.simpleRequest(command, 'eof'));
      case Command.Statistics:
        return this.forward(raw, this.simpleRequest(command, 'single'));
      case Command.FieldList:
        return this.forward(raw, this.simpleRequest(command, 'field-list'));
      case Command.ChangeUser:
        return this.changeUser(payload, raw);
      case 0x12: // COM_BINLOG_DUMP
      case 0x15: // COM_REGISTER_SLAVE
      case 0x1e: // COM_BINLOG_DUMP_GTID
        // A replication stream has no end the session could frame, and
        // replicating through a query cache makes no sense: refused here.
        this.writeClient(errPacket(1, 1047, '08S01', 'sqlcached: replication commands are not proxied; connect to the server directly'));
        return;
      default:
        // Anything else the server answers with one packet (ERR 1047 for an
        // unknown command); it may have written anything.
        return this.forward(raw, { ...this.simpleRequest(command, 'single'), writes: WriteSet.unknown() });
    }
  }

  private simpleRequest(command: number, kind: ResponseKind): Request {
    return { command, reader: this.reader(kind), fill: null, writes: null, analysis: null };
  }

  reader(kind: ResponseKind): ResponseReader {
    return new ResponseReader(kind, this.caps);
  }

  // ---- queries ---------------------------------------------------------------

  /**
   * Where this session's catalog facts hold: information_schema shows each
   * user only what they may see, so facts are kept per user
   * (`${upstream}\0\0${user}`; `catalog.forget(upstream, '')` drops them all).
   */
  get scope(): string {
    return `${this.deps.upstreamAddress}\0\0${this.ctx.user}`;
  }

  view(): SessionView {
    if (this.cachedView !== null && this.viewVersion === this.ctx.version && this.viewStatus === this.status) return this.cachedView;
    this.viewVersion = this.ctx.version;
    this.viewStatus = this.status;
    this.cachedView = {
      dialect: 'mysql',
      upstream: this.deps.upstreamAddress,
      database: this.ctx.database ?? '',
      user: this.ctx.user,
      contextKey: this.ctx.contextKey(),
      catalogScope: this.scope,
      taint: this.ctx.taint,
      inTransaction: this.inTransaction(),
      listener: this.meter,
    };
    return this.cachedView;
  }

  inTransaction(status = this.status): boolean {
    // With autocommit off every statement opens (or continues) a transaction.
    return (status & Status.InTrans) !== 0 || (status & Status.Autocommit) === 0;
  }

  backslashEscapes(): boolean {
    return (this.status & Status.NoBackslashEscapes) === 0;
  }

  /**
   * SQL text in the client's character set, flagged unsafe when the proxy may
   * not lex it as the server does: a character set other than UTF-8, ASCII,
   * latin1 or binary (in gbk, sjis, big5… a multibyte character may end in
   * 0x5C, a backslash to our lexer), invalid UTF-8, or a double quote while
   * ANSI_QUOTES is on (or sql_mode not read yet): then "…" is an identifier.
   */
  decodeText(payload: Buffer, from: number): { text: string; unsafe: boolean } {
    const cs = this.ctx.clientCharset ?? charsetOfCollation(this.charset);
    let text: string;
    let unsafe: boolean;
    if (cs === 'utf8' || cs.startsWith('utf8') || cs === 'ascii') {
      text = payload.toString('utf8', from);
      unsafe = text.includes('\uFFFD');
    } else {
      // latin1 and binary: one character per byte, so the text keys exactly.
      text = payload.toString('latin1', from);
      unsafe = !(cs === 'latin1' || cs === 'binary');
    }
    if (!unsafe && this.ctx.ansiQuotes !== false && payload.includes(0x22, from)) unsafe = true;
    return { text, unsafe };
  }

  // ---- look-ups --------------------------------------------------------------

  // ---- forwarding and the response ------------------------------------------

  forward(raw: Buffer[], req: Request): void {
    this.request = req;
    this.phase = 'busy';
    this.writeUpstream(raw);
  }

  private onUpstreamData(chunk: Buffer): void {
    this.upstreamFramer.push(chunk);
    this.pumpUpstream();
  }

  private pumpUpstream(): void {
    this.client.cork();
    try {
      while (this.phase !== 'closed' && this.phase !== 'waiting') {
        const p = this.upstreamFramer.next();
        if (p === null) break;
        this.onServerPacket(p);
      }
    } catch (err) {
      this.log.warn({ err }, 'upstream protocol error');
      this.sendError(1105, 'HY000', `sqlcached: malformed packet from the server: ${(err as Error).message}`);
      this.close('upstream protocol error');
    } finally {
      this.client.uncork();
    }
  }

  private onServerPacket(p: Packet): void {
    const bytes = p.buf.subarray(p.start, p.end);
    switch (this.phase) {
      case 'lookup':
        return this.aside.onPacket(p);
      case 'auth':
        this.writeClient(bytes);
        if (!p.continuation && (p.buf[payloadStart(p)] === OK || p.buf[payloadStart(p)] === ERR)) this.changeUserDone(p);
        return;
      case 'busy':
      case 'infile':
        return this.onResponsePacket(p, bytes);
      default: {
        // Unsolicited (the server shutting down, a killed connection): relay and stop.
        this.writeClient(bytes);
        if (p.buf[payloadStart(p)] === ERR) this.close('server sent an error outside a command');
      }
    }
  }

  private onResponsePacket(p: Packet, bytes: Buffer): void {
    const req = this.request!;
    const ev = req.reader.next(p);
    const fill = req.fill;
    if (fill !== null) {
      if (ev.statusAt >= 0) fill.statusAt = fill.capture.bytes + (ev.statusAt - p.start);
      fill.capture.add(p.buf, p.start, p.end);
    }
    if (ev.localInfile) {
      fill?.capture.refuse('not-a-read');
      this.phase = 'infile';
    }
    if (!ev.done) {
      this.writeClient(bytes);
      return;
    }
    const bumped = requestDone(this, req, ev);
    if (bumped === null) {
      this.writeClient(bytes);
      this.becomeIdle();
      return;
    }
    // An asynchronous store: the acknowledgement waits for its invalidation.
    this.phase = 'waiting';
    bumped.then(
      () => this.resumeAfterWait(bytes),
      () => this.resumeAfterWait(bytes),
    );
  }

  private resumeAfterWait(bytes: Buffer): void {
    if (this.phase === 'closed') return;
    this.writeClient(bytes);
    this.becomeIdle();
    this.pumpUpstream();
  }

  private becomeIdle(): void {
    this.request = null;
    this.phase = 'idle';
    if (this.draining) {
      this.shutDown();
      return;
    }
    setImmediate(() => this.pumpClient());
  }

  // ---- change user -----------------------------------------------------------

  private changeUser(payload: Buffer, raw: Buffer[]): void {
    // COM_CHANGE_USER: user NUL, auth data, database NUL… then an auth
    // exchange like the handshake's, relayed until OK or ERR.
    const userEnd = payload.indexOf(0, 1);
    const user = payload.toString('utf8', 1, userEnd < 0 ? payload.length : userEnd);
    let database: string | null = null;
    if (userEnd > 0 && userEnd + 1 < payload.length) {
      const authLen = payload[userEnd + 1]!;
      const dbStart = userEnd + 2 + authLen;
      const dbEnd = payload.indexOf(0, dbStart);
      if (dbStart < payload.length) database = payload.toString('utf8', dbStart, dbEnd < 0 ? payload.length : dbEnd) || null;
    }
    this.pendingUser = { user, database };
    this.phase = 'auth';
    this.writeUpstream(raw);
  }

  private pendingUser: { user: string; database: string | null } | null = null;

  private changeUserDone(p: Packet): void {
    const ok = p.buf[payloadStart(p)] === OK;
    const next = this.pendingUser!;
    this.pendingUser = null;
    this.statements.clear();
    if (ok) {
      this.ctx.reset(next.user, next.database);
      this.status = Status.Autocommit;
    } else {
      // The server ends the connection after a failed change of user; be sure nothing is served meanwhile.
      this.ctx.apply({ type: 'taint', reason: 'session-state', detail: 'COM_CHANGE_USER failed' });
    }
    this.phase = 'idle';
    setImmediate(() => this.pumpClient());
  }

  // ---- plumbing --------------------------------------------------------------

  private useDatabase(db: string): void {
    this.ctx.useDatabase(db);
    this.noteDatabase(db);
  }

  noteDatabase(db: string): void {
    if (this.deps.databases.size < 10_000) this.deps.databases.add(db.toLowerCase());
  }

  await<T>(p: Promise<T>, then: (v: T) => void): void {
    const resumeTo = this.phase;
    this.phase = 'waiting';
    p.then(
      (v) => {
        if (this.phase !== 'waiting') return;
        this.phase = resumeTo;
        then(v);
        this.pumpUpstream();
        if (this.phase === 'idle') this.pumpClient();
      },
      (err: unknown) => {
        this.log.error({ err }, 'store failed past fail-open');
        this.close('internal error');
      },
    );
  }

  private writeClient(bytes: Buffer): void {
    if (this.phase === 'closed') return;
    if (!this.client.write(bytes)) this.upstream.pause();
  }

  writeUpstream(bytes: Buffer | Buffer[]): void {
    if (this.phase === 'closed') return;
    if (Array.isArray(bytes)) {
      let ok = true;
      for (const b of bytes) ok = this.upstream.write(b) && ok;
      if (!ok) this.client.pause();
    } else if (!this.upstream.write(bytes)) this.client.pause();
  }

  private sendError(code: number, sqlState: string, message: string): void {
    if (this.phase === 'closed' || this.client.destroyed) return;
    this.client.write(errPacket(this.request === null ? 1 : 1, code, sqlState, message));
  }

  private protocolViolation(err: unknown): void {
    const e = err instanceof MysqlProtocolError ? err : new MysqlProtocolError(String(err), 1047, '08S01');
    this.log.info({ err: e.message }, 'client broke the protocol');
    if (this.phase === 'idle' || this.phase === 'busy') this.client.write(errPacket(1, e.code, e.sqlState, e.message));
    this.close('protocol violation');
  }

  private upstreamClosed(): void {
    if (this.phase === 'closed') return;
    // 1927 (ER_CONNECTION_KILLED), not the client-side 2013: libmariadb takes
    // an ERR packet carrying a 2xxx client code for a malformed packet.
    if (this.phase !== 'idle') this.sendError(1927, '70100', 'sqlcached: lost the connection to the database server during the query');
    this.close('upstream closed');
  }

  private shutDown(): void {
    if (this.phase === 'closed') return;
    this.client.write(errPacket(0, 1053, '08S01', 'Server shutdown in progress'));
    this.close('shutdown');
  }

  close(why: string): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.log.info({ why }, 'connection closed');
    this.client.end();
    this.upstream.destroy();
    setTimeout(() => this.client.destroy(), 1000).unref();
    this.deps.onClose(this);
  }
}

/** The character set of a handshake collation id, as far as the proxy needs to know ('other' otherwise). */
function charsetOfCollation(id: number): string {
  if (id === 33 || id === 83 || (id >= 192 && id <= 215) || id === 76) return 'utf8mb3';
  if (id === 45 || id === 46 || (id >= 224 && id <= 247) || id >= 255) return 'utf8mb4';
  if (id === 11 || id === 65) return 'ascii';
  if (id === 5 || id === 8 || id === 15 || id === 31 || id === 47 || id === 48 || id === 49 || id === 94) return 'latin1';
  if (id === 63) return 'binary';
  return 'other';
}
