// Reading a config: file → YAML → validated Config, or one ConfigError that
// names the file, the path in it, what was expected and what was there.

import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { defaultConfig, validateConfig, type Config, type ConfigProblem } from './schema.js';

export { defaultConfig };

/**
 * Why a config was refused. `message` reads
 * `config/my.yaml: cache.max_memory: expected a size like "256mb", got "lots"`;
 * the CLI prints it as is (no stack) and exits 2.
 */
export class ConfigError extends Error {
  readonly code = 'SQLCACHED_ERR_CONFIG';
  /** The file as the user named it; null for an object validated in code. */
  readonly file: string | null;
  /** "cache.max_memory", "listeners[1].listen"; "" for the file as a whole. */
  readonly path: string;
  /** What the value should have been: `a size like "256mb"`, `valid YAML`. */
  readonly expected: string;

  constructor(file: string | null, path: string, expected: string, detail: string) {
    super([file ?? '', path, detail].filter((part) => part !== '').join(': '));
    this.name = 'ConfigError';
    this.file = file;
    this.path = path;
    this.expected = expected;
  }

  static from(file: string | null, problem: ConfigProblem): ConfigError {
    return new ConfigError(file, problem.path, problem.expected, problem.detail);
  }
}

/** Read, parse and validate a YAML config file. Throws ConfigError. */
export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new ConfigError(file, '', 'a readable YAML file', `cannot read the file (${reason})`);
  }
  return configFromObject(parseYaml(text, file), file);
}

/** Validate a value in the YAML's shape (snake_case keys). Throws ConfigError. */
export function configFromObject(raw: unknown, file: string | null): Config {
  const result = validateConfig(raw, file);
  if (!result.ok) throw ConfigError.from(file, result.problem);
  return result.config;
}

/** The sections whose values differ, for the reload log line. */
export function changedSections(before: Config, after: Config): (keyof Config)[] {
  const keys = ['listeners', 'cache', 'rules', 'admin', 'reload', 'log'] as const;
  return keys.filter((key) => JSON.stringify(before[key]) !== JSON.stringify(after[key]));
}

function parseYaml(text: string, file: string): unknown {
  // Duplicate keys are errors (the yaml default): a second `cache:` must not
  // silently replace the first.
  const document = parseDocument(text);
  const error = document.errors[0];
  if (error) {
    const at = error.linePos?.[0];
    const where = at ? `line ${at.line}, column ${at.col}: ` : '';
    const reason = error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new ConfigError(file, '', 'valid YAML', `${where}invalid YAML: ${reason}`);
  }
  try {
    return document.toJS();
  } catch (err) {
    // An alias to an unknown anchor (`*x`) only fails here.
    throw new ConfigError(file, '', 'valid YAML', `invalid YAML: ${(err as Error).message}`);
  }
}
