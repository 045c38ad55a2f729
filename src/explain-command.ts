// `sqlcached explain "<sql>"`: what the proxy would do with one statement,
// under the rules of a config file, without starting anything. --json prints
// exactly what GET /explain answers.

import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { explainStatement, type Explanation } from './core/explain.js';
// main.ts imports this module too; the cycle is harmless because these
// bindings are read only when the command runs, long after both have loaded.
import { defaultConfigFile, EXIT_OK, EXIT_USAGE, type MainIo } from './main.js';
import { Classifier } from './sql/classifier.js';

export const EXPLAIN_USAGE = `Usage: sqlcached explain "<sql>" [--dialect postgres|mysql] [--config FILE] [--json]

Prints what the proxy would do with the statement: its kind, the tables it
reads and writes, whether it is cached (or the exact reason not), its
fingerprint, the rule and TTL that apply, what a write invalidates, and the
checks made only at run time against the live catalog and session.

Options:
      --dialect D    postgres or mysql. Default: postgres, or mysql when every
                     listener of the config is a mysql one.
  -c, --config FILE  the YAML config whose rules apply (default as for
                     sqlcached itself).
      --json         print the JSON GET /explain answers.
  -h, --help         print this help and exit.
`;

export async function explainCommand(argv: string[], io: MainIo): Promise<number> {
  let parsed: { values: { dialect?: string; config?: string; json?: boolean; help?: boolean }; positionals: string[] };
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        dialect: { type: 'string' },
        config: { type: 'string', short: 'c' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    return usageError(io, (err as Error).message);
  }
  const flags = parsed.values;
  if (flags.help) {
    io.stdout.write(EXPLAIN_USAGE);
    return EXIT_OK;
  }
  if (parsed.positionals.length !== 1) {
    return usageError(io, parsed.positionals.length === 0 ? 'explain needs a statement' : 'explain takes one statement: quote it');
  }
  const sql = parsed.positionals[0]!;
  if (sql.trim() === '') return usageError(io, 'the statement is empty');
  const dialect = flags.dialect;
  if (dialect !== undefined && dialect !== 'postgres' && dialect !== 'mysql') {
    return usageError(io, `--dialect must be postgres or mysql, not ${JSON.stringify(dialect)}`);
  }

  let config: Config;
  try {
    config = loadConfig(flags.config ?? defaultConfigFile());
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.stderr.write(`${err.message}\n`);
    return EXIT_USAGE;
  }
  const classifier = await Classifier.load();
  const e = explainStatement({ classifier, config, sql, dialect });
  // The admin server writes JSON.stringify(body) + "\n": the same bytes here.
  io.stdout.write(flags.json ? `${JSON.stringify(e)}\n` : formatExplanation(e));
  return EXIT_OK;
}

function usageError(io: MainIo, message: string): number {
  io.stderr.write(`sqlcached explain: ${message}\nTry 'sqlcached explain --help'.\n`);
  return EXIT_USAGE;
}

/** Aligned "key: value" lines; lists continue under their first item. */
export function formatExplanation(e: Explanation): string {
  const none = (xs: readonly string[]) => (xs.length === 0 ? ['(none)'] : xs);
  const rows: Array<[string, string[]]> = [
    ['dialect', [e.dialect]],
    ['sql', [e.sql]],
    ['fingerprint', [e.fingerprint]],
    ['kind', [e.kind]],
    ['statements', [String(e.statement_count)]],
    ['reads', [none(e.reads).join(', ')]],
    ['writes', [e.writes_unknown ? 'tables it cannot name (writes_unknown)' : none(e.writes).join(', ')]],
    ['cacheable', [e.cacheable ? 'yes' : 'no']],
  ];
  if (e.reason !== null) rows.push(['reason', [e.detail === null ? e.reason : `${e.reason} (${e.detail})`]]);
  if (e.cacheable) {
    rows.push(['rule', [e.rule ?? 'cache.default_ttl (no rule matched)']]);
    rows.push(['ttl', [e.ttl_ms === 0 ? `${e.ttl}` : `${e.ttl} (${e.ttl_ms} ms)`]]);
  } else if (e.rule !== null) {
    rows.push(['rule', [e.rule]]);
  }
  rows.push(['invalidates', [typeof e.invalidates === 'string' ? e.invalidates : none(e.invalidates).join(', ')]]);
  if (e.read_tables !== null && e.read_tables.join() !== e.reads.join()) rows.push(['read tables', [e.read_tables.join(', ')]]);
  rows.push(['dependency graph', [e.dependency_graph]]);
  if (e.session_effects.length > 0) rows.push(['session effects', e.session_effects]);
  if (e.runtime_checks.length > 0) rows.push(['at run time', e.runtime_checks]);

  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  let out = '';
  for (const [key, values] of rows) {
    values.forEach((v, i) => {
      // A statement written over several lines keeps its lines, indented.
      out += `${(i === 0 ? `${key}:` : '').padEnd(width)}${v.replace(/\r?\n/g, `\n${' '.repeat(width)}`)}\n`;
    });
  }
  return out;
}
