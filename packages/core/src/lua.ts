import { readFileSync } from 'node:fs';

const INCLUDE = /^--@include (\S+)$/m;
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
