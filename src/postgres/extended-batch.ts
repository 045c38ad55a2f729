// The vocabulary of an extended-protocol batch: the statements and portals
// a client names, the stages of the one batch shape the cache can answer,
// and the batch being received until its Sync.

import type { Analysis, Classification, Decision, SessionView } from '../core/types.js';
import type { Frame } from './messages.js';
import type { BatchItem } from './pipeline.js';
import type { VersionSnapshot } from '../cache/store.js';

export interface Statement {
  name: string;
  sql: string;
  paramTypes: number[];
  /** paramTypes joined: part of every key of this statement. */
  typesKey: string;
  /** sql + parameter types: what the server would have prepared. */
  signature: string;
  analysis: Analysis;
  /** standard_conforming_strings was off when the text was analysed. */
  escapes: boolean;
  /** Key prefixes (QueryCache.keyPrefix) per mode, for one session view. */
  keys: StatementKeys | null;
}

/** A statement's key prefixes, valid while the session's view object is this one
 * (the view is rebuilt whenever the context that goes into a key changes). */
export interface StatementKeys {
  view: SessionView;
  E: string | null;
  DS: string | null;
  DP: string | null;
}

export interface Portal {
  statement: Statement;
  /** Parameter formats, values and result formats, exactly as bound. */
  params: string;
  /** A text parameter like 'now': the result changes with every call. */
  volatile: boolean;
  /** An Execute already ran on it: what follows is not the whole result. */
  started: boolean;
}

/** How far a held batch has got through the servable shape. */
export const enum Stage {
  Start = 0,
  Parsed = 1,
  DescribedStatement = 2,
  Bound = 3,
  DescribedPortal = 4,
  Executed = 5,
}

export interface Batch {
  held: Frame[];
  item: BatchItem | null;
  stage: Stage;
  parse: Statement | null;
  describeStatement: boolean;
  bind: Portal | null;
  bindPortal: string;
  describePortal: boolean;
  // The maps below are created on first use: a batch answered from cache
  // needs none of them, and five Map constructions per batch showed in the
  // profile of extended hits (Builtins_MapConstructor, ~0.6 %).
  /** Portals bound in this batch (forwarding mode). */
  portals: Map<string, Portal> | null;
  /** Decisions already taken in this batch, per statement. */
  decisions: Map<Statement, Decision> | null;
  /** Versions an asynchronous store (Redis) gave before the batch went
   * upstream, per cache decision: the fill plans read them. */
  snapshots: Map<Decision, VersionSnapshot> | null;
  /** Names this batch's forwarded Parse/Close will change once the server
   * confirms them (null: closed). Later messages of the batch see them. */
  pending: Map<string, Statement | null> | null;
  pendingUpstream: Map<string, string | null> | null;
}

export function newBatch(): Batch {
  return {
    held: [],
    item: null,
    stage: Stage.Start,
    parse: null,
    describeStatement: false,
    bind: null,
    bindPortal: '',
    describePortal: false,
    portals: null,
    decisions: null,
    snapshots: null,
    pending: null,
    pendingUpstream: null,
  };
}

/** A name taken by SQL-level PREPARE: its text is the server's secret, so
 * nothing bound to it is cached and it is never prepared again lazily. */
const OPAQUE_SIGNATURE = '\u0000opaque';

export function opaqueStatement(name: string): Statement {
  const classification: Classification = {
    kind: 'other',
    reads: [],
    writes: [],
    relations: [],
    writesUnknown: true,
    cacheable: false,
    reason: 'not-a-read',
    detail: 'a statement prepared with SQL PREPARE',
    functions: [],
    builtins: [],
    operators: [],
    sessionEffects: [{ type: 'none' }],
    statementCount: 1,
    txnControl: false,
  };
  const shaped = { shape: `EXECUTE ${name}`, keyText: `EXECUTE ${name}`, hints: {}, volatileLiteral: false };
  return {
    name,
    sql: '',
    paramTypes: [],
    typesKey: '',
    signature: OPAQUE_SIGNATURE,
    analysis: { shaped, classification },
    escapes: false,
    keys: null,
  };
}
