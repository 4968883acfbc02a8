import { readFileSync } from 'node:fs';

/** A line that includes a file of `lua/`; every such line of a file (`luaSource`). */
const INCLUDE_LINE = /^--@include (\S+)$/m;
const INCLUDE_LINES = new RegExp(INCLUDE_LINE.source, 'gm');
const sources = new Map<string, string>();

/** A script's first line naming its flags (`#!lua flags=no-writes`): it must stay the first line. */
export const SHEBANG = /^#!lua(?: flags=(\S*))?\n/;

/** A file of `lua/` as written, its `--@include` lines left in. */
export function luaRaw(file: string): string {
  return readFileSync(new URL(`./lua/${file}`, import.meta.url), 'utf8');
}

/**
 * A script's text split at its one `--@include` line: the code before it, the file it includes,
 * and the code after it; undefined for a script without one.
 */
export function splitAtInclude(
  file: string,
  raw: string,
): { before: string; include: string; body: string } | undefined {
  const include = INCLUDE_LINE.exec(raw);
  if (!include) return undefined;
  const body = raw.slice(include.index + include[0].length);
  if (INCLUDE_LINE.test(body)) throw new Error(`${file}: more than one --@include line`);
  return { before: raw.slice(0, include.index), include: include[1] as string, body };
}

/** The source of a file in `lua/`, with its `--@include` lines replaced by the included files. */
export function luaSource(file: string): string {
  let source = sources.get(file);
  if (source === undefined) {
    source = luaRaw(file).replace(INCLUDE_LINES, (_line, included: string) => luaSource(included));
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
  const split = splitAtInclude(file, raw);
  if (!split) return raw;
  // SEEN_HERE: a function library's table kept across calls (lua-library.ts); an EVAL keeps
  // nothing. Declared after the shebang.
  const shebang = SHEBANG.exec(split.before)?.[0] ?? '';
  const before = split.before.slice(shebang.length);
  return `${shebang}local SEEN_HERE = false\n${before}${luaSource(split.include)}\nreturn guarded(function()\n${split.body}\nend)\n`;
}
