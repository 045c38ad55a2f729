// Config reload: SIGHUP, POST /reload and (reload.watch) a change of the
// file all come here. The new file is validated whole before anything
// applies; an invalid one is logged and refused, and the running config
// stays in force. Rules, TTLs, in_transactions, max_entry_size, the admin
// token and log.level apply at once, to connections already open; sockets
// and the store are built once, so their settings wait for a restart.

import { statSync, unwatchFile, watchFile, type Stats as FileStats } from 'node:fs';
import type { Logger } from 'pino';
import type { ReloadOutcome } from './admin/route.js';
import { ConfigError, changedSections, loadConfig } from './config/load.js';
import { formatHostPort } from './config/units.js';
import { isLoopback, type Config, type HostPort } from './config/schema.js';

/** How often reload.watch looks at the file. Polling (stat) rather than
 * fs.watch: it follows the symlink swaps of Kubernetes ConfigMaps and the
 * rename-into-place of editors, which inotify on the old inode misses. */
const WATCH_INTERVAL_MS = 1000;
const SETTLE_MS = 300;

export class ConfigReloader {
  private current: Config;
  private watching = false;
  /** Where the admin port listens until a restart, whatever a reloaded file says. */
  private readonly adminListen: HostPort;
  private watchTimer: NodeJS.Timeout | null = null;

  constructor(
    initial: Config,
    private readonly apply: (next: Config) => void,
    private readonly log: Logger,
  ) {
    this.current = initial;
    this.adminListen = initial.admin.listen;
  }

  get config(): Config {
    return this.current;
  }

  /** Read the file again and apply it, or refuse it. Never throws. */
  reload(): ReloadOutcome {
    const file = this.current.file;
    if (file === null) return { ok: false, file, error: 'the proxy was started without a config file' };
    let next: Config;
    try {
      // An empty file is valid at start-up (all defaults), but on a reload it
      // is far more often a save caught half-way: it would drop every rule
      // and the admin token.
      if (statSync(file, { throwIfNoEntry: false })?.size === 0) throw new ConfigError(file, '', 'a non-empty file', 'the file is empty (a save in progress?)');
      next = loadConfig(file);
      // admin.listen changes only at a restart, admin.token at once: the
      // token must still be there while the port listens beyond loopback.
      if (next.admin.token === null && !isLoopback(this.adminListen.host)) {
        throw new ConfigError(file, 'admin.token', 'a token', `expected a token: the admin port listens on ${formatHostPort(this.adminListen)} until a restart, got none`);
      }
    } catch (err) {
      const error = err instanceof ConfigError ? err.message : String(err);
      this.log.error({ file, error }, 'config reload refused; keeping the running config');
      return { ok: false, file, error };
    }
    const changed = changedSections(this.current, next);
    this.log.info({ file, changed }, 'reloading config');
    try {
      this.apply(next);
    } catch (err) {
      this.log.error({ err, file }, 'config reload refused; keeping the running config');
      return { ok: false, file, error: (err as Error)?.message ?? String(err) };
    }
    const restart = restartOnlyChanges(this.current, next);
    if (restart.length > 0) this.log.warn({ settings: restart }, 'these settings take effect at the next start');
    this.current = next;
    return { ok: true, file, changed, restart_required: restart };
  }

  /** Reload whenever the file's size or modification time changes. */
  watch(): void {
    const file = this.current.file;
    if (file === null || this.watching) return;
    this.watching = true;
    watchFile(file, { interval: WATCH_INTERVAL_MS, persistent: false }, this.onFileChange);
    this.log.info({ file }, 'watching the config file');
  }

  close(): void {
    if (this.watchTimer !== null) clearTimeout(this.watchTimer);
    if (!this.watching || this.current.file === null) return;
    unwatchFile(this.current.file, this.onFileChange);
    this.watching = false;
  }

  private readonly onFileChange = (now: FileStats, before: FileStats): void => {
    if (now.mtimeMs === before.mtimeMs && now.size === before.size) return;
    if (now.nlink === 0 && now.mtimeMs === 0) {
      this.log.warn({ file: this.current.file }, 'config file gone; keeping the running config');
      return;
    }
    // Settle first: an editor may still be writing. Reload once it has been
    // quiet for SETTLE_MS (a later change restarts the wait).
    if (this.watchTimer !== null) clearTimeout(this.watchTimer);
    this.watchTimer = setTimeout(() => {
      this.watchTimer = null;
      this.reload();
    }, SETTLE_MS);
    this.watchTimer.unref();
  };
}

/** What a reload cannot apply to a running proxy: sockets and the store are
 * built once (rules, TTLs, in_transactions, max_entry_size, admin.token and
 * log.level apply at once). */
export function restartOnlyChanges(before: Config, after: Config): string[] {
  const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
  const out: string[] = [];
  if (!same(before.listeners, after.listeners)) out.push('listeners');
  if (!same(before.admin.listen, after.admin.listen)) out.push('admin.listen');
  if (before.admin.metricsTableLimit !== after.admin.metricsTableLimit) out.push('admin.metrics_table_limit');
  if (before.cache.store !== after.cache.store) out.push('cache.store');
  if (before.cache.maxMemoryBytes !== after.cache.maxMemoryBytes) out.push('cache.max_memory');
  if (!same(before.cache.redis, after.cache.redis)) out.push('cache.redis');
  if (before.reload.watch !== after.reload.watch) out.push('reload.watch');
  if (before.log.pretty !== after.log.pretty) out.push('log.pretty');
  return out;
}
