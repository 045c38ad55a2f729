// What a finished MySQL response changes: the session's status, its
// context (USE, SET, taints), prepared statements, the tables to bump (now,
// or at the end of the transaction) and the result to store. Runs before the
// response's last packet is relayed, so a write's OK never overtakes its
// invalidation.

import { Status } from './protocol.js';
import { WriteSet } from './qualify.js';
import type { Request } from './request.js';
import type { ResponseEvent } from './responses.js';
import type { MysqlSession } from './session.js';

/** Everything a finished response changes. Returns a Promise when a bump is asynchronous: the caller holds the last packet until it settles. */
export function requestDone(s: MysqlSession, req: Request, ev: ResponseEvent): Promise<unknown> | null {
  const before = s.status;
  if (req.reader.status >= 0) s.status = req.reader.status;
  const failed = ev.error !== null;
  const pending: Promise<unknown>[] = [];
  const bump = (w: WriteSet): void => {
    const r = w.bump(s.qc, s.deps.upstreamAddress, s.ctx.database, s.deps.databases, s.scope);
    if (r !== null) pending.push(r);
  };
  const c = req.analysis?.classification;
  if (c !== undefined) {
    for (const e of c.sessionEffects) {
      if (!failed || e.type === 'taint') s.ctx.apply(e);
      if (e.type === 'use' && !failed) s.noteDatabase(e.database);
    }
    // Which statements of a failed request took effect is unknown: read the settings (and database) again.
    if (failed && c.sessionEffects.some((e) => e.type !== 'none')) {
      s.ctx.forgetSettings();
      if (c.sessionEffects.some((e) => e.type === 'use')) s.databaseKnown = false;
    }
    // DROP DATABASE of the current one leaves none selected: read DATABASE() again.
    if (c.kind === 'ddl') s.ctx.forgetSettings();
    if (c.txnControl && failed) s.ctx.forgetSettings();
  }
  // A write that reached tables we cannot name may have run triggers or
  // stored code that SET session variables; a text we could not lex may hide
  // a SET or a USE: read the settings (and the database) again.
  if (req.unsafeText === true || (req.writes !== null && req.writes.unknown)) {
    s.ctx.forgetSettings();
    if (req.unsafeText === true) s.databaseKnown = false;
  }
  if (!failed && req.onOk) req.onOk();
  if (req.prepareSql !== undefined) {
    if (failed) s.statements.prepareFailed();
    else s.statements.prepared(req.reader.statementId, req.prepareSql, req.reader.paramCount, s.databaseKnown ? (req.prepareDb ?? null) : null, req.unsafeText === true);
  }
  const inTxn = s.inTransaction();
  // The open transaction, by the server's IN_TRANS flag: with autocommit
  // off, COMMIT leaves autocommit off but ends the transaction.
  const open = (s.status & Status.InTrans) !== 0;
  if (req.writes !== null && !req.writes.empty) {
    if (open) s.txnWrites.merge(req.writes);
    bump(req.writes); // harmless inside a transaction; required when it committed implicitly
  }
  if ((before & Status.InTrans) !== 0 && !open && !s.txnWrites.empty) {
    // COMMIT, ROLLBACK or an implicit commit: what the transaction wrote is visible (or gone) now.
    bump(s.txnWrites);
    s.txnWrites = new WriteSet();
  }
  const fill = req.fill;
  if (fill !== null) {
    const body = failed ? null : fill.capture.take();
    let refused = fill.capture.refused;
    if (!failed && refused === null) {
      if (req.reader.resultSets !== 1) refused = 'multi-statement';
      // A replay could not answer SHOW WARNINGS: results with warnings stay uncached.
      else if (req.reader.warnings > 0) refused = 'warnings';
      else if (s.inTransaction(before) || inTxn) refused = 'in-transaction';
      else if (req.reader.status & Status.SessionStateChanged) refused = 'session-state';
    }
    const stored = body !== null && refused === null && fill.statusAt >= 0;
    if (stored) {
      const head = Buffer.allocUnsafe(4);
      head.writeUInt32LE(fill.statusAt, 0);
      s.qc.fill(fill.decision, fill.key, fill.snapshot, head, body);
    } else if (refused !== null) s.qc.stats.notStored(refused, fill.decision.shape);
    s.qc.stats.upstreamDone(fill.decision.shape, performance.now() - fill.sentAt, fill.capture.bytes, stored, s.meter);
  }
  if (pending.length === 0) return null;
  return Promise.all(pending);
}
