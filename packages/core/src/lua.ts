import { readFileSync } from 'node:fs';

const INCLUDE = /^--@include (\S+)$/gm;
const sources = new Map<string, string>();

/** A file of `lua/` as written, its `--@include` lines left in. */
export function luaRaw(file: string): string {
  return readFileSync(new URL(`./lua/${file}`, import.meta.url), 'utf8');
}

/** The source of a file in `lua/`, with its `--@include` lines replaced by the included files. */
export function luaSource(file: string): string {
  let source = sources.get(file);
  if (source === undefined) {
    source = luaRaw(file).replace(INCLUDE, (_line, included: string) => luaSource(included));
    sources.set(file, source);
  }
  return source;
}

/**
 * A script of `lua/` as an EVAL runs it: the included code in place of its `--@include` line, and
 * the script's code after that line run by guard.lua's `guarded` (which every include brings), as
 * the function library runs it (lua-library.ts).
 */
export function scriptSource(file: string): string {
  const raw = luaRaw(file);
  const include = /^--@include (\S+)$/m.exec(raw);
  if (!include) return raw;
  const after = raw.slice(include.index + include[0].length);
  return `${raw.slice(0, include.index)}${luaSource(include[1] as string)}\nreturn guarded(function()\n${after}\nend)\n`;
}
