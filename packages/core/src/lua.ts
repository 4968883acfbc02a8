import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';

const INCLUDE = /^--@include (\S+)$/gm;
const sources = new Map<string, string>();

/** The source of a script in `lua/`, with its `--@include` lines replaced by the included files. */
export function luaSource(file: string): string {
  let source = sources.get(file);
  if (source === undefined) {
    source = readFileSync(new URL(`./lua/${file}`, import.meta.url), 'utf8').replace(
      INCLUDE,
      (_line, included: string) => luaSource(included),
    );
    sources.set(file, source);
  }
  return source;
}

const shas = new Map<string, string>();

/**
 * Runs a read-only script with EVALSHA_RO, falling back to EVAL_RO on NOSCRIPT (ioredis's
 * defineCommand always sends EVALSHA / EVAL, which a user without write permission may not run).
 */
export async function evalReadOnly(
  connection: Redis | Cluster,
  file: string,
  keys: readonly string[],
  args: readonly (string | number | Buffer)[] = [],
): Promise<unknown> {
  const source = luaSource(file);
  let sha = shas.get(file);
  if (sha === undefined) {
    sha = createHash('sha1').update(source).digest('hex');
    shas.set(file, sha);
  }
  try {
    return await connection.call('EVALSHA_RO', sha, keys.length, ...keys, ...args);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return await connection.call('EVAL_RO', source, keys.length, ...keys, ...args);
  }
}
