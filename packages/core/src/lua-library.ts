import { createHash } from 'node:crypto';
import { luaRaw, luaSource, SHEBANG, splitAtInclude } from './lua.js';

/**
 * The scripts of `lua/` as Redis function libraries (Redis 7+): one for the group's scripts,
 * one for the queue's, assembled here from the same .lua files the EVALSHA path runs, so the
 * files stay the only source. A script's included code (lib.lua, queue/lib.lua, guard.lua with
 * what they include) is defined once per library load instead of once per call:
 *
 * - its top-level `local function`s (and `name = function` assignments to names it declared
 *   without a value) stay where they are, in a `do … end` block of their own;
 * - so are its constants (`local GROUP = 'workers'`: a number or a string that no code assigns to);
 * - every other top-level statement (`local K = { config = KEYS[1] … }`, `local memo = {}`,
 *   `key_kinds(…)`) is what an EVAL ran afresh per call: its names are declared at the top of
 *   the block and the statements run, in their order, at the start of every call;
 * - the script's own code is the function's body, as written: what stands before its
 *   `--@include` line (a fast path that needs none of the included code) runs first, then the
 *   per-call statements, then what follows the line, as a function of the block (defined once)
 *   that guard.lua's `guarded` runs (as `scriptSource` in lua.ts has an EVAL run it).
 *
 * `KEYS` and `ARGV` are locals of the block that each call sets first, so the included code sees
 * them as an EVAL did. Calls never overlap in Redis, so that state is the call's own.
 * `SEEN_HERE` is the one value kept from call to call: a table made when the library loads (an
 * EVAL has `false` there: it keeps nothing).
 *
 * The library's name is `understudy_<hash8>` (hash of its source): a new version of the scripts
 * loads beside the old one, and each version of the library calls its own functions.
 */

export type LibraryKind = 'group' | 'queue';

export interface FunctionLibrary {
  readonly kind: LibraryKind;
  /** `understudy_<hash8>`: the library's name, and its functions' prefix. */
  readonly name: string;
  /** The source to `FUNCTION LOAD` (its first line names the library). */
  readonly source: string;
}

interface Token {
  readonly text: string;
  readonly start: number;
  readonly end: number;
  /** The token begins its line (nothing but blanks before it). */
  readonly lineStart: boolean;
  readonly kind: 'name' | 'string' | 'number' | 'symbol';
}

const LONG_BRACKET = /^\[(=*)\[/;

/** Lua 5.1 tokens of `source`, comments left out: enough to find statements and blocks. */
function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let lineStart = true;
  const longEnd = (at: number, level: string): number => {
    const close = source.indexOf(`]${level}]`, at);
    if (close < 0) throw new Error(`unterminated long bracket at ${at}`);
    return close + level.length + 2;
  };
  while (i < source.length) {
    const c = source[i] as string;
    if (c === '\n') {
      lineStart = true;
      i++;
      continue;
    }
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (source.startsWith('--', i)) {
      const long = LONG_BRACKET.exec(source.slice(i + 2, i + 2 + 64));
      if (long) i = longEnd(i + 2 + long[0].length, long[1] as string);
      else {
        const newline = source.indexOf('\n', i);
        i = newline < 0 ? source.length : newline;
      }
      continue;
    }
    const start = i;
    let kind: Token['kind'] = 'symbol';
    if (/[A-Za-z_]/.test(c)) {
      kind = 'name';
      while (i < source.length && /\w/.test(source[i] as string)) i++;
    } else if (/\d/.test(c) || (c === '.' && /\d/.test(source[i + 1] ?? ''))) {
      kind = 'number';
      while (i < source.length && /[\w.]/.test(source[i] as string)) i++;
    } else if (c === '"' || c === "'") {
      kind = 'string';
      i++;
      while (i < source.length && source[i] !== c) {
        if (source[i] === '\\') i++;
        if (source[i] === '\n') throw new Error(`unterminated string at ${start}`);
        i++;
      }
      i++;
    } else if (LONG_BRACKET.test(source.slice(i, i + 64))) {
      kind = 'string';
      const long = LONG_BRACKET.exec(source.slice(i, i + 64)) as RegExpExecArray;
      i = longEnd(i + long[0].length, long[1] as string);
    } else {
      const three = source.slice(i, i + 3);
      const two = source.slice(i, i + 2);
      i += three === '...' ? 3 : ['==', '~=', '<=', '>=', '..'].includes(two) ? 2 : 1;
    }
    tokens.push({ text: source.slice(start, i), start, end: i, lineStart, kind });
    lineStart = false;
  }
  return tokens;
}

const LITERAL = new Set(['number', 'string']);
const OPENERS = new Set(['function', 'if', 'do', 'repeat', '(', '{', '[']);
const CLOSERS = new Set(['end', 'until', ')', '}', ']']);

/**
 * The top-level statements of a chunk: one starts at a token of depth 0 that begins its line
 * (the scripts' style: a statement's continuation lines are indented or close a bracket).
 */
function statements(source: string): Token[][] {
  const result: Token[][] = [];
  let depth = 0;
  for (const token of tokenize(source)) {
    if (depth === 0 && token.lineStart) result.push([]);
    const current = result[result.length - 1];
    if (!current) throw new Error(`code before the first statement at ${token.start}`);
    current.push(token);
    // `for … do` and `while … do` open their block at `do`; `elseif … then` opens none.
    if (token.kind !== 'name' && token.kind !== 'symbol') continue;
    if (OPENERS.has(token.text)) depth++;
    else if (CLOSERS.has(token.text)) depth--;
    if (depth < 0) throw new Error(`unbalanced '${token.text}' at ${token.start}`);
  }
  if (depth !== 0) throw new Error('unbalanced blocks at the end');
  return result;
}

/** Names before the `=` of a `local a, b = …` (or all of them, without one). */
function declaredNames(statement: Token[]): { names: string[]; assigned: boolean } {
  const names: string[] = [];
  let k = 1;
  for (; k < statement.length; k++) {
    const token = statement[k] as Token;
    if (token.kind === 'name') names.push(token.text);
    else if (token.text !== ',') break;
  }
  return { names, assigned: statement[k]?.text === '=' };
}

/** Included code split into what is defined once per library and what runs per call. */
interface Module {
  /** Every name the included code declares at its top level. */
  names: Set<string>;
  /** The code kept at the block's top level: declarations and function definitions, in order. */
  definitions: string[];
  /** Names of the per-call values (declared first in the block, assigned per call). */
  values: string[];
  /** The per-call statements, in order (`local` dropped from the value declarations). */
  perCall: string[];
}

/**
 * Names that `sources` may assign to after declaring them: any name followed by `=` or `,` (a
 * target of an assignment, or one of several; a call's argument counts too, which only costs a
 * constant its definition once per load).
 */
function assignedNames(sources: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (const source of sources) {
    const tokens = tokenize(source);
    tokens.forEach((token, i) => {
      const next = tokens[i + 1]?.text;
      if (token.kind === 'name' && tokens[i - 1]?.text !== 'local' && (next === '=' || next === ','))
        names.add(token.text);
    });
  }
  return names;
}

function splitModule(file: string, source: string, assigned: ReadonlySet<string>): Module {
  const module: Module = { names: new Set(), definitions: [], values: [], perCall: [] };
  const seen = module.names;
  const declare = (name: string) => {
    // One name declared twice at the top would be one variable here: refuse rather than guess.
    if (seen.has(name)) throw new Error(`${file}: top-level local '${name}' is declared twice`);
    seen.add(name);
  };
  const forward = new Set<string>();
  const forwardDefined = new Set<string>();
  const text = (statement: Token[], from = 0) =>
    source.slice((statement[from] as Token).start, (statement[statement.length - 1] as Token).end);
  for (const statement of statements(source)) {
    const [first, second, third] = statement as [Token, Token | undefined, Token | undefined];
    if (first.text === 'local' && second?.text === 'function') {
      declare((third as Token).text);
      module.definitions.push(text(statement));
    } else if (
      first.text === 'local' &&
      statement.length === 4 &&
      statement[2]?.text === '=' &&
      LITERAL.has(statement[3]?.kind as string) &&
      !assigned.has((second as Token).text)
    ) {
      // A constant (`local GROUP = 'workers'`) that no code assigns to: defined once.
      declare((second as Token).text);
      module.definitions.push(text(statement));
    } else if (first.text === 'local') {
      const { names, assigned } = declaredNames(statement);
      for (const name of names) declare(name);
      if (assigned) {
        module.values.push(...names);
        module.perCall.push(text(statement, 1));
      } else {
        for (const name of names) forward.add(name);
        module.definitions.push(text(statement));
      }
    } else if (first.kind === 'name' && forward.has(first.text) && second?.text === '=' && third?.text === 'function') {
      forwardDefined.add(first.text);
      module.definitions.push(text(statement));
    } else if (first.text === 'function') {
      throw new Error(`${file}: a global function (${second?.text}) cannot be defined in a library`);
    } else {
      module.perCall.push(text(statement));
    }
  }
  // A name declared without a value and not defined as a function starts every call as nil.
  const unset = [...forward].filter((name) => !forwardDefined.has(name));
  if (unset.length > 0) module.perCall.unshift(`${unset.join(', ')} = nil`);
  return module;
}

interface Script {
  name: string;
  include?: string;
  flags: string[];
  /** The script's own code before its `--@include` line (a fast path that needs none of it). */
  before: string;
  /** Its code after that line. */
  body: string;
}

/** The names a chunk declares at its top level (`local function f`, `local a, b`). */
function topLevelNames(source: string): string[] {
  return statements(source).flatMap((statement) => {
    if (statement[0]?.text !== 'local') return [];
    if (statement[1]?.text === 'function') return [statement[2]?.text as string];
    return declaredNames(statement).names;
  });
}

/** A script as a function: the file it includes, its flags, and its own code. */
function splitScript(name: string): Script {
  const file = `${name}.lua`;
  let raw = luaRaw(file);
  const shebang = SHEBANG.exec(raw);
  const flags = shebang?.[1] ? shebang[1].split(',') : [];
  if (shebang) raw = raw.slice(shebang[0].length);
  const split = splitAtInclude(file, raw);
  return split ? { name, flags, ...split } : { name, flags, before: '', body: raw };
}

/** The library of one kind's scripts (`files` relative to `lua/`, without `.lua`). */
function assemble(kind: LibraryKind, names: readonly string[]): FunctionLibrary {
  const byInclude = new Map<string, Script[]>();
  for (const name of names) {
    const script = splitScript(name);
    const key = script.include ?? '';
    byInclude.set(key, [...(byInclude.get(key) ?? []), script]);
  }
  const blocks: string[] = [];
  for (const [include, scripts] of byInclude) {
    const module: Module =
      include === ''
        ? { names: new Set(), definitions: [], values: [], perCall: [] }
        : splitModule(
            include,
            luaSource(include),
            assignedNames([luaSource(include), ...scripts.flatMap((script) => [script.before, script.body])]),
          );
    // SEEN_HERE: the library's own table, made at its load and kept across calls (a restarted
    // server, or a promoted replica, loads it afresh): what a script noted on this server since.
    const lines = ['local KEYS, ARGV', 'local SEEN_HERE = {}'];
    if (module.values.length > 0) lines.push(`local ${module.values.join(', ')}`);
    lines.push(...module.definitions);
    lines.push(`local function __per_call()\n${module.perCall.join('\n')}\nend`);
    for (const script of scripts) {
      // Code before the include runs first, as in an EVAL; what the included code declares
      // again would be the script's own there and the included one after: refuse the ambiguity.
      const shadowed = topLevelNames(script.before).filter((n) => module.names.has(n));
      if (shadowed.length > 0) {
        throw new Error(
          `${script.name}.lua: declares ${shadowed.join(', ')} before including ${include}, which does too`,
        );
      }
      const flags = script.flags.length > 0 ? `, flags = { ${script.flags.map((f) => `'${f}'`).join(', ')} }` : '';
      const name = script.name.replace('/', '_');
      const run = include === '' ? script.body.trim() : `return guarded(__${name})`;
      if (include !== '') lines.push(`local function __${name}()\n${script.body.trim()}\nend`);
      lines.push(
        `redis.register_function{ function_name = '@NAME@_${name}'${flags}, callback = function(keys, args)\n` +
          `KEYS, ARGV = keys, args\n${script.before.trim()}\n__per_call()\n${run}\nend }`,
      );
    }
    blocks.push(`do -- ${include || '(no include)'}\n${lines.join('\n\n')}\nend`);
  }
  const code = blocks.join('\n\n');
  const name = `understudy_${createHash('sha1').update(code).digest('hex').slice(0, 8)}`;
  return { kind, name, source: `#!lua name=${name}\n${code.replaceAll('@NAME@', name)}\n` };
}

const libraries = new Map<LibraryKind, FunctionLibrary>();

/** The group's or the queue's function library (assembled once per process). */
export function functionLibrary(kind: LibraryKind, scripts: readonly string[]): FunctionLibrary {
  let library = libraries.get(kind);
  if (library === undefined) {
    library = assemble(kind, scripts);
    libraries.set(kind, library);
  }
  return library;
}

/** The name a script's function has in its library: `understudy_<hash8>_renew`, `…_queue_renew`. */
export function functionName(library: FunctionLibrary, script: string): string {
  return `${library.name}_${script.replace('/', '_')}`;
}
