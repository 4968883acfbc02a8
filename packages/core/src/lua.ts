import { readFileSync } from 'node:fs';

const INCLUDE = /^--@include (\S+)$/gm;
const sources = new Map<string, string>();

/** A file of `lua/` as written, its `--@include` lines left in. */
export function luaRaw(file: string): string {
  return readFileSync(new URL(`./lua/${file}`, import.meta.url), 'utf8');
}

/** The source of a script in `lua/`, with its `--@include` lines replaced by the included files. */
export function luaSource(file: string): string {
  let source = sources.get(file);
  if (source === undefined) {
    source = luaRaw(file).replace(INCLUDE, (_line, included: string) => luaSource(included));
    sources.set(file, source);
  }
  return source;
}
