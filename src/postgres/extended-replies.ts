// Server replies to a batch of extended-protocol messages: each goes to the
// message that asked for it (the item's expectations, in order), feeds the
// cache captures, confirms statement names, and skips to the Sync after an
// error as the server does.

import { decodeReadyForQuery } from './backend-codec.js';
import { BackendCode, type Frame } from './messages.js';
import type { BatchItem } from './pipeline.js';
import type { PgSession } from './session.js';

export function onBatchReply(session: PgSession, item: BatchItem, f: Frame): void {
  const e = item.expect[item.next];
  switch (f.type) {
    case BackendCode.ParseComplete:
      item.next++;
      e?.commit?.();
      if (e?.kind === 'lazy-parse') return; // the proxy's own Parse
      break;
    case BackendCode.BindComplete:
    case BackendCode.CloseComplete:
      item.next++;
      e?.commit?.();
      break;
    case BackendCode.ParameterDescription:
      e?.fill?.capture.add(f.buf, f.start, f.end);
      break;
    case BackendCode.RowDescription:
    case BackendCode.NoData:
      e?.fill?.capture.add(f.buf, f.start, f.end);
      if (e?.kind === 'describe') {
        if (e.fill) item.fills.push(e.fill);
        item.next++;
      }
      break;
    case BackendCode.DataRow:
    case BackendCode.NoticeResponse:
      e?.fill?.capture.add(f.buf, f.start, f.end);
      break;
    case BackendCode.CommandComplete:
    case BackendCode.EmptyQueryResponse:
      if (e?.fill) {
        e.fill.capture.add(f.buf, f.start, f.end);
        item.fills.push(e.fill);
      }
      if (e?.writes) session.bump(e.writes);
      if (e?.kind === 'execute') item.next++; // a Query may have several
      break;
    case BackendCode.PortalSuspended:
      e?.fill?.capture.refuse('row-limit');
      item.next++;
      break;
    case BackendCode.CopyInResponse:
    case BackendCode.CopyOutResponse:
    case BackendCode.CopyBothResponse:
      e?.fill?.capture.refuse('not-a-read');
      break;
    case BackendCode.ErrorResponse: {
      item.errored = true;
      for (const x of item.expect) x.fill?.capture.refuse('error-result');
      // An error in a Query ends with its own ReadyForQuery; an error in an
      // extended message makes the server skip everything up to the Sync.
      if (e?.kind !== 'query') {
        item.skipping = true;
        while (item.next < item.expect.length && item.expect[item.next]!.kind !== 'sync') item.next++;
      }
      break;
    }
    case BackendCode.ReadyForQuery: {
      const status = decodeReadyForQuery(f.buf, f.start, f.end);
      item.next++;
      if (e?.kind === 'query' && item.skipping !== true) {
        // The Query's own: the batch goes on until its Sync.
        session.status = status;
        break;
      }
      session.requestDone(item, status);
      if (!item.internal) session.relayFrame(f);
      session.inflight.shift();
      session.flushLocals();
      return;
    }
  }
  if (!item.internal) session.relayFrame(f);
}
