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
import type { VersionSnapshot } from '../cache/store.js';
import type { QueryCache } from '../core/query-cache.js';
import { ResultCapture } from '../core/result-capture.js';
import type { Analysis, CacheDecision, Decision, SessionView } from '../core/types.js';
import { PacketFramer, payloadLength, payloadStart, type Packet } from './framer.js';
import { decodeTextRow, lookupPacket, relationFacts, relationLookupSql, settingsLookupSql } from './lookups.js';
import { Command, MysqlProtocolError, Status, SESSION_STATUS_BITS } from './protocol.js';
import { qualify, groupByDatabase, WriteSet } from './qualify.js';
import { ERR, OK, ResponseReader, errPacket, type ResponseEvent, type ResponseKind } from './responses.js';
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
}

interface FillPlan {
  decision: CacheDecision;
  key: string;
  snapshot: VersionSnapshot;
  capture: ResultCapture;
  /** Offset in the capture of the final status flags. */
  statusAt: number;
  sentAt: number;
}

interface Request {
  command: number;
  reader: ResponseReader;
  fill: FillPlan | null;
  writes: WriteSet | null;
  analysis: Analysis | null;
  /** COM_STMT_PREPARE: the text, registered when the server accepts it. */
  prepareSql?: string;
  prepareDb?: string | null;
  /** COM_INIT_DB / COM_CHANGE_USER / COM_RESET_CONNECTION: applied on OK. */
  onOk?: () => void;
}

type Phase = 'idle' | 'busy' | 'streaming' | 'infile' | 'auth' | 'lookup' | 'waiting' | 'closed';

/** Statements that read what the previous statement left on the connection. */
const READS_CONNECTION_STATE = /ROW_COUNT|FOUND_ROWS|WARNINGS|ERRORS|warning_count|error_count|DIAGNOSTICS/i;

/** Pause reading a client that pipelines more than this while a command runs. */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;
/** The text of a statement prepared in a command too large to read: unknown. */
const UNREAD = '\0unread';

export class MysqlSession {
  readonly ctx: MysqlSessionContext;
  readonly qc: QueryCache;
  private readonly client: net.Socket;
  private readonly upstream: net.Socket;
  private readonly clientFramer: PacketFramer;
  private readonly upstreamFramer: PacketFramer;
  private readonly caps: number;
  private readonly mariadb: boolean;
  private readonly log: Logger;
  private readonly debug: boolean;
  private readonly statements = new PreparedStatements();
  private phase: Phase = 'idle';
  private status: number;
  private request: Request | null = null;
  /** The command a look-up runs for, dispatched again when it answers. */
  private deferred: { payload: Buffer; raw: Buffer[]; last: boolean } | null = null;
  private lookup: { reader: ResponseReader; rows: string[][]; done: (rows: string[][] | null) => void; collect: boolean } | null = null;
  /** Writes of the open transaction: bumped again at its end. */
  private txnWrites = new WriteSet();
  private draining = false;
  /** A failed request may have run a USE: unqualified names resolve nowhere until DATABASE() is read again. */
  private databaseKnown = true;
  /** The last command answered from cache: the server did not run it, so its per-connection
   * state (FOUND_ROWS(), ROW_COUNT(), warnings) is the previous statement's. */
  private lastHit: Buffer[] | null = null;
  private cachedView: SessionView | null = null;
  private viewVersion = -1;
  private viewStatus = -1;

  constructor(
    auth: MysqlAuthenticated,
    private readonly deps: MysqlSessionDeps,
  ) {
    this.client = auth.client;
    this.upstream = auth.upstream;
    this.clientFramer = auth.clientFramer;
    this.upstreamFramer = auth.upstreamFramer;
    this.caps = auth.capabilities;
    this.mariadb = auth.mariadb;
    this.status = auth.status;
    this.qc = deps.queryCache;
    this.log = deps.log;
    this.debug = this.log.isLevelEnabled('debug');
    const connectionPart = `${auth.capabilities}/${auth.mariaCapabilities}/${auth.charset}`;
    this.ctx = new MysqlSessionContext(auth.user, auth.database, connectionPart);
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

  private pumpClient(): void {
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

  /** The next whole command (joining 16 MiB pieces), or null until it has arrived. */
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

  private dispatch(payload: Buffer, raw: Buffer[], retried: boolean): void {
    // An empty packet: the server answers ERR 1047 and goes on.
    if (payload.length === 0) return this.forward(raw, this.simpleRequest(-1, 'single'));
    if (this.lastHit !== null && this.replayHitFirst(payload, raw)) return;
    const command = payload[0]!;
    if (raw[0]![3] !== 0) {
      // A command must start a new sequence: the server answers "Got packets
      // out of order" and closes. Never a hit in its place.
      return this.forward(raw, { ...this.simpleRequest(command, 'single'), writes: WriteSet.unknown() });
    }
    switch (command) {
      case Command.Query:
        return this.onQuery(payload, raw, retried);
      case Command.StmtExecute:
        return this.onExecute(payload, raw, retried);
      case Command.StmtPrepare: {
        const sql = this.decodeText(payload, 1).text;
        return this.forward(raw, { command, reader: this.reader('prepare'), fill: null, writes: null, analysis: null, prepareSql: sql, prepareDb: this.ctx.database });
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

  private reader(kind: ResponseKind): ResponseReader {
    return new ResponseReader(kind, this.caps);
  }

  // ---- queries ---------------------------------------------------------------

  private onQuery(payload: Buffer, raw: Buffer[], retried: boolean): void {
    const { text, unsafe } = this.decodeText(payload, 1);
    const a = qualify(this.qc.analyse('mysql', text, { backslashEscapes: this.backslashEscapes() }), this.databaseKnown ? this.ctx.database : null, unsafe);
    if (!retried && this.maybeLookUp(a, payload, raw)) return;
    const d = unsafe ? this.refuse(a, 'encoding', 'statement text is not in a character set the proxy keys safely') : this.decide(a);
    if (d.action === 'cache') {
      const key = this.qc.key(this.view(), 'Q', a.shaped.keyText, '');
      return this.cacheable(d, key, raw, a, Command.Query);
    }
    if (this.debug) this.trace(d);
    this.forward(raw, { command: Command.Query, reader: this.reader('result'), fill: null, writes: WriteSet.of(d, a.classification), analysis: a });
  }

  private onExecute(payload: Buffer, raw: Buffer[], retried: boolean): void {
    const exec = this.statements.execute(payload);
    const stmt = this.statements.get(exec.statementId);
    const request = (fill: FillPlan | null, d: Decision | null, a: Analysis | null): Request => ({
      command: Command.StmtExecute,
      reader: this.reader('result'),
      fill,
      writes: d === null || a === null ? WriteSet.unknown() : WriteSet.of(d, a.classification),
      analysis: a,
    });
    // Unknown id: the server answers the error. Unread text: may write anything.
    if (stmt === undefined || stmt.sql === UNREAD) return this.forward(raw, request(null, null, null));
    // Tables resolve in the database current at prepare time, not now.
    const a = qualify(this.qc.analyse('mysql', stmt.sql, { backslashEscapes: this.backslashEscapes() }), stmt.database, false);
    if (!retried && this.maybeLookUp(a, payload, raw)) return;
    let d = this.decide(a);
    if (d.action === 'cache' && exec.flags !== 0) d = this.refuse(a, 'row-limit', 'execute with a cursor');
    if (d.action === 'cache' && exec.params === null) d = this.refuse(a, 'session-state', 'parameters sent as long data');
    if (d.action === 'cache' && exec.params !== null && this.qc.isVolatileValue(exec.params)) {
      d = this.refuse(a, 'volatile-literal', 'a parameter holds a clock word');
    }
    if (d.action === 'cache') {
      const key = this.qc.key(this.view(), 'E', a.shaped.keyText, `${stmt.database ?? ''}\0${exec.params ?? ''}`);
      return this.cacheable(d, key, raw, a, Command.StmtExecute);
    }
    if (this.debug) this.trace(d);
    this.forward(raw, request(null, d, a));
  }

  private cacheable(d: CacheDecision, key: string, raw: Buffer[], a: Analysis, command: number): void {
    const started = performance.now();
    const entry = this.qc.lookup(d, key);
    const onEntry = (e: { head: Buffer | null; body: Buffer } | undefined): void => {
      if (e !== undefined && e.head !== null) {
        this.serveHit(d, e.head, e.body, started);
        this.lastHit = raw.map((b) => Buffer.from(b));
        return;
      }
      this.qc.stats.miss(d);
      if (this.debug) this.trace(d, 'miss');
      const snap = this.qc.snapshot(d);
      const send = (s: VersionSnapshot): void => {
        const fill: FillPlan = { decision: d, key, snapshot: s, capture: new ResultCapture(this.qc.maxEntrySize), statusAt: -1, sentAt: performance.now() };
        this.forward(raw, { command, reader: this.reader('result'), fill, writes: null, analysis: a });
      };
      if (snap instanceof Promise) this.await(snap, send);
      else send(snap);
    };
    if (entry instanceof Promise) this.await(entry, onEntry);
    else onEntry(entry);
  }

  /** Replays a cached result with the session's own status flags in its last packet. */
  private serveHit(d: CacheDecision, head: Buffer, body: Buffer, started: number): void {
    const at = head.readUInt32LE(0);
    const original = body.readUInt16LE(at);
    const status = ((original & ~(SESSION_STATUS_BITS | Status.SessionStateChanged)) | (this.status & SESSION_STATUS_BITS)) & 0xffff;
    const flags = Buffer.from([status & 0xff, status >> 8]);
    this.client.cork();
    this.client.write(body.subarray(0, at));
    this.client.write(flags);
    this.client.write(body.subarray(at + 2));
    this.client.uncork();
    const us = (performance.now() - started) * 1000;
    this.qc.stats.hit(d, us);
    if (this.debug) this.trace(d, 'hit', us);
  }

  /** The per-statement debug line (same fields as the PostgreSQL session's). */
  private trace(d: Decision, outcome?: 'hit' | 'miss', us?: number): void {
    let decision: string;
    if (outcome !== undefined) decision = outcome;
    else if (d.action === 'bypass' && (d.writesUnknown || d.writes.length > 0)) decision = `write:${d.writesUnknown ? '*' : d.writes.join(',')}`;
    else decision = d.action === 'bypass' ? `bypass:${d.reason}` : 'cache';
    this.log.debug(us === undefined ? { fingerprint: d.shape, decision } : { fingerprint: d.shape, decision, us: Math.round(us) }, 'statement');
  }

  decide(a: Analysis): Decision {
    let d = this.qc.decide(a, this.view());
    if (d.action !== 'cache') return d;
    if (!this.ctx.settingsKnown) return this.refuse(a, 'session-state', 'session variables not read yet');
    // Table versions live per database: a read over one database (the usual
    // case, qualified or not) is versioned there; one spanning databases is not cached.
    const groups = groupByDatabase(d.reads);
    if (groups.size !== 1) return this.refuse(a, 'cross-database', [...groups.keys()].join(', '));
    const [database, reads] = [...groups][0]!;
    this.noteDatabase(database);
    d = { ...d, database, reads: reads.sort() };
    return d;
  }

  refuse(a: Analysis, reason: 'encoding' | 'session-state' | 'cross-database' | 'row-limit' | 'volatile-literal', detail: string): Decision {
    this.qc.stats.bypass(reason, a.shaped.shape, detail);
    const c = a.classification;
    return { action: 'bypass', reason, detail, shape: a.shaped.shape, writes: [...c.writes], writesUnknown: c.writesUnknown };
  }

  /**
   * Where this session's catalog facts hold: information_schema shows each
   * user only what they may see, so facts are kept per user
   * (`${upstream}\0\0${user}`; `catalog.forget(upstream, '')` drops them all).
   */
  private get scope(): string {
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
    };
    return this.cachedView;
  }

  private inTransaction(status = this.status): boolean {
    // With autocommit off every statement opens (or continues) a transaction.
    return (status & Status.InTrans) !== 0 || (status & Status.Autocommit) === 0;
  }

  private backslashEscapes(): boolean {
    return (this.status & Status.NoBackslashEscapes) === 0;
  }

  /** SQL text in the client's character set. Unknown or multi-byte sets other than UTF-8 are flagged unsafe. */
  private decodeText(payload: Buffer, from: number): { text: string; unsafe: boolean } {
    const cs = this.ctx.clientCharset;
    if (cs === null || cs.startsWith('utf8') || cs === 'ascii') {
      const text = payload.toString('utf8', from);
      return { text, unsafe: text.includes('\uFFFD') };
    }
    // latin1 and binary: one character per byte, so the text keys exactly.
    return { text: payload.toString('latin1', from), unsafe: !(cs === 'latin1' || cs === 'binary') };
  }

  // ---- look-ups --------------------------------------------------------------

  /** Starts a settings or catalog look-up the decision needs; true if it did. */
  private maybeLookUp(a: Analysis, payload: Buffer, raw: Buffer[]): boolean {
    if (this.inTransaction() || this.ctx.taint !== null) return false;
    // A look-up resets ROW_COUNT(), FOUND_ROWS() and the warnings: never in
    // front of a statement that reads them (its write invalidates more instead).
    if (READS_CONNECTION_STATE.test(a.shaped.shape)) return false;
    const c = a.classification;
    const readable = c.kind === 'read' && c.cacheable;
    if (!readable && c.writes.length === 0 && this.databaseKnown) return false;
    if ((readable && !this.ctx.settingsKnown) || !this.databaseKnown) {
      // Then the catalog, if it is needed too: settings are known after this
      // one (or the session is tainted), so the second round cannot loop.
      this.runLookup(settingsLookupSql(this.mariadb), payload, raw, false, (rows) => {
        if (rows !== null && rows.length === 1) {
          this.ctx.settingsLookedUp(rows[0]!);
          this.databaseKnown = true;
        }
        else this.ctx.apply({ type: 'taint', reason: 'session-state', detail: 'session variables could not be read' });
      });
      return true;
    }
    if (this.qc.catalog.knowsAll(this.scope, c)) return false;
    const missing = this.qc.catalog.missing(this.scope, c).relations;
    const refs = missing.filter((r): r is { schema: string; name: string } => r.schema !== null);
    if (refs.length === 0) return false;
    this.runLookup(relationLookupSql(refs), payload, raw, true, (rows) => {
      if (rows !== null) this.qc.catalog.learnRelations(this.scope, relationFacts(refs, rows));
    });
    return true;
  }

  private runLookup(sql: string, payload: Buffer, raw: Buffer[], last: boolean, then: (rows: string[][] | null) => void): void {
    this.runAside([lookupPacket(sql)], payload, raw, last, then, true);
  }

  /** Sends `packets` upstream and reads their answer here, then dispatches the deferred command. */
  private runAside(packets: Buffer[], payload: Buffer, raw: Buffer[], last: boolean, then: (rows: string[][] | null) => void, collect = false): void {
    this.phase = 'lookup';
    this.deferred = { payload, raw, last };
    this.lookup = { reader: this.reader('result'), rows: [], done: then, collect };
    this.writeUpstream(packets);
  }

  /**
   * After a hit, the server's per-connection state (FOUND_ROWS(), ROW_COUNT(),
   * warnings) is still the previous statement's. A statement that reads it
   * gets the hit's command run upstream first (its answer dropped), so it sees
   * what it would have seen without the cache. True if it did.
   */
  private replayHitFirst(payload: Buffer, raw: Buffer[]): boolean {
    const hit = this.lastHit;
    this.lastHit = null;
    if (hit === null) return false;
    const command = payload[0];
    let text: string | null = null;
    if (command === Command.Query) text = payload.toString('latin1', 1);
    else if (command === Command.StmtExecute && payload.length >= 5) text = this.statements.get(payload.readUInt32LE(1))?.sql ?? null;
    if (text === null || !READS_CONNECTION_STATE.test(text)) return false;
    this.runAside(hit, payload, raw, false, () => undefined);
    return true;
  }

  private onLookupPacket(p: Packet): void {
    const l = this.lookup!;
    const isRow = l.reader.inRows && !p.continuation;
    const ev = l.reader.next(p);
    if (ev.done) {
      this.lookup = null;
      if (l.reader.status >= 0) this.status = l.reader.status;
      l.done(ev.error === null ? l.rows : null);
      if (ev.error !== null) this.log.warn({ error: ev.error }, 'look-up failed');
      const cmd = this.deferred!;
      this.deferred = null;
      this.phase = 'idle';
      this.dispatch(cmd.payload, cmd.raw, cmd.last);
      // A hit leaves the session idle: commands the client pipelined behind it wait in the framer.
      if (this.phase === 'idle') setImmediate(() => this.pumpClient());
      return;
    }
    // In the rows state, every packet that does not end the result is a row.
    if (isRow && l.collect) l.rows.push(decodeTextRow(p));
  }

  // ---- forwarding and the response ------------------------------------------

  private forward(raw: Buffer[], req: Request): void {
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
        return this.onLookupPacket(p);
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
    const bumped = this.responseDone(req, ev);
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

  /** Everything a finished response changes; a Promise when a bump is asynchronous. */
  private responseDone(req: Request, ev: ResponseEvent): Promise<unknown> | null {
    const before = this.status;
    if (req.reader.status >= 0) this.status = req.reader.status;
    const failed = ev.error !== null;
    const pending: Promise<unknown>[] = [];
    const bump = (w: WriteSet): void => {
      const r = w.bump(this.qc, this.deps.upstreamAddress, this.ctx.database, this.deps.databases, this.scope);
      if (r !== null) pending.push(r);
    };
    const c = req.analysis?.classification;
    if (c !== undefined) {
      for (const e of c.sessionEffects) {
        if (!failed || e.type === 'taint') this.ctx.apply(e);
        if (e.type === 'use' && !failed) this.noteDatabase(e.database);
      }
      // Which statements of a failed request took effect is unknown: read the settings (and database) again.
      if (failed && c.sessionEffects.some((e) => e.type !== 'none')) {
        this.ctx.forgetSettings();
        if (c.sessionEffects.some((e) => e.type === 'use')) this.databaseKnown = false;
      }
      // DROP DATABASE of the current one leaves none selected: read DATABASE() again.
      if (c.kind === 'ddl') this.ctx.forgetSettings();
      if (c.txnControl && failed) this.ctx.forgetSettings();
    }
    if (!failed && req.onOk) req.onOk();
    if (req.prepareSql !== undefined) {
      if (failed) this.statements.prepareFailed();
      else this.statements.prepared(req.reader.statementId, req.prepareSql, req.reader.paramCount, this.databaseKnown ? (req.prepareDb ?? null) : null);
    }
    const inTxn = this.inTransaction();
    // The open transaction, by the server's IN_TRANS flag: with autocommit
    // off, COMMIT leaves autocommit off but ends the transaction.
    const open = (this.status & Status.InTrans) !== 0;
    if (req.writes !== null && !req.writes.empty) {
      if (open) this.txnWrites.merge(req.writes);
      bump(req.writes); // harmless inside a transaction; required when it committed implicitly
    }
    if ((before & Status.InTrans) !== 0 && !open && !this.txnWrites.empty) {
      // COMMIT, ROLLBACK or an implicit commit: what the transaction wrote is visible (or gone) now.
      bump(this.txnWrites);
      this.txnWrites = new WriteSet();
    }
    const fill = req.fill;
    if (fill !== null) {
      const body = failed ? null : fill.capture.take();
      let refused = fill.capture.refused;
      if (!failed && refused === null) {
        if (req.reader.resultSets !== 1) refused = 'multi-statement';
        // A replay could not answer SHOW WARNINGS: results with warnings stay uncached.
        else if (req.reader.warnings > 0) refused = 'warnings';
        else if (this.inTransaction(before) || inTxn) refused = 'in-transaction';
        else if (req.reader.status & Status.SessionStateChanged) refused = 'session-state';
      }
      const stored = body !== null && refused === null && fill.statusAt >= 0;
      if (stored) {
        const head = Buffer.allocUnsafe(4);
        head.writeUInt32LE(fill.statusAt, 0);
        this.qc.fill(fill.decision, fill.key, fill.snapshot, head, body);
      } else if (refused !== null) this.qc.stats.notStored(refused, fill.decision.shape);
      this.qc.stats.upstreamDone(fill.decision.shape, performance.now() - fill.sentAt, fill.capture.bytes, stored);
    }
    if (pending.length === 0) return null;
    return Promise.all(pending);
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

  private noteDatabase(db: string): void {
    if (this.deps.databases.size < 10_000) this.deps.databases.add(db.toLowerCase());
  }

  private await<T>(p: Promise<T>, then: (v: T) => void): void {
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

  private writeUpstream(bytes: Buffer | Buffer[]): void {
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
