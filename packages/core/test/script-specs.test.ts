import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  ACTOR_KEYS,
  parseReply,
  SCRIPT_SPECS,
  type ScriptName,
  type ScriptSpec,
  VIEW_FIELDS,
} from '../src/script-specs.js';

/**
 * Every Lua script's header (lua/ and lua/queue/) names its KEYS, ARGV and reply as the spec
 * table does (`view` in lib.lua its fields as VIEW_FIELDS does, `reply` in queue/lib.lua its
 * fields as the worker scripts' spec does). The normalisation: a header entry is `<n> <name>`
 * with anything in parentheses dropped; the names must be the spec's, in the spec's order.
 */

const LUA = new URL('../src/lua/', import.meta.url);
const read = (file: string) => readFileSync(new URL(file, LUA), 'utf8');

/** The text of a header entry (`-- LABEL: …`) and the comment lines that continue it. */
function headerText(source: string, label: string): string | undefined {
  const lines = source.split('\n');
  const start = lines.findIndex((line) => line.startsWith(`-- ${label}:`));
  if (start < 0) return undefined;
  const parts = [(lines[start] as string).slice(`-- ${label}:`.length)];
  for (const line of lines.slice(start + 1)) {
    if (!/^--\s{2,}\S/.test(line)) break;
    parts.push(line.slice(2));
  }
  return parts.join(' ').replace(/\([^()]*\)/g, ' ');
}

/** `1 config  2 members …` as names; `none` as no names; positions must count up from 1. */
function numberedNames(text: string): string[] {
  if (text.trim() === 'none') return [];
  const entries = text.trim().split(/\s+(?=\d+ )/);
  return entries.map((entry, i) => {
    const [, position, name] = /^(\d+) (.*)$/.exec(entry.trim()) ?? [];
    return Number(position) === i + 1 ? (name ?? '').trim() : `position ${position ?? '?'} out of order: ${entry}`;
  });
}

/** The top-level names of a `{ a, b { … }, c }` reply. */
function fieldNames(text: string): string[] | undefined {
  const open = text.indexOf('{');
  if (open < 0 || text.slice(0, open).trim() !== '') return undefined;
  let depth = 0;
  let inner = '';
  for (const char of text.slice(open)) {
    depth += char === '{' ? 1 : char === '}' ? -1 : 0;
    if (depth === 0) break;
    inner += depth === 1 && char !== '{' ? char : char === ',' ? '' : ' ';
  }
  return inner.split(',').map((name) => name.trim().split(/\s+/)[0] ?? '');
}

function replyProblem(spec: ScriptSpec, text: string): string | undefined {
  const reply = spec.reply;
  const said = text.trim();
  if (reply.shape === 'view') {
    return said.startsWith("the member's view") && !said.includes('serverNow alone') ? undefined : `reply "${said}"`;
  }
  if (reply.shape === 'renewal') {
    return /^the member's view\s*, or serverNow alone/.test(said) ? undefined : `reply "${said}"`;
  }
  if (reply.shape === 'value') return said.startsWith(reply.of) ? undefined : `reply "${said}"`;
  const names = fieldNames(said);
  const expected = Object.keys(reply.fields);
  return JSON.stringify(names) === JSON.stringify(expected) ? undefined : `reply fields ${JSON.stringify(names)}`;
}

/** How a script's header disagrees with its spec (empty: it agrees). */
function headerProblems(name: ScriptName, source: string): string[] {
  const spec: ScriptSpec = SCRIPT_SPECS[name];
  const problems: string[] = [];
  const compare = (label: string, expected: readonly string[]) => {
    const text = headerText(source, label);
    const found = text === undefined ? undefined : numberedNames(text);
    if (JSON.stringify(found) !== JSON.stringify(expected)) {
      problems.push(`${label} ${JSON.stringify(found)}, the spec ${JSON.stringify(expected)}`);
    }
  };
  compare('KEYS', spec.keys);
  compare('ARGV', Object.keys(spec.argv));
  const reply = headerText(source, 'Reply');
  const problem = reply === undefined ? 'no Reply line' : replyProblem(spec, reply);
  if (problem) problems.push(problem);
  return problems;
}

const files = readdirSync(LUA, { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.lua'));
const included = new Set(files.flatMap((file) => [...read(file).matchAll(/^--@include (\S+)$/gm)].map((m) => m[1])));
const scriptNames = Object.keys(SCRIPT_SPECS) as ScriptName[];

describe('script specs', () => {
  it('list every Lua file that runs as a script, and no other', () => {
    const runnable = files.filter((file) => !included.has(file)).map((file) => file.replace(/\.lua$/, ''));
    expect(scriptNames.sort()).toEqual(runnable.sort());
  });

  it.each(scriptNames)('hold the header of %s.lua to the spec', (name) => {
    expect(headerProblems(name, read(`${name}.lua`))).toEqual([]);
  });

  it("hold the fields of lib.lua's view to the member view", () => {
    expect(numberedNames(headerText(read('lib.lua'), 'View') ?? '')).toEqual(Object.keys(VIEW_FIELDS));
  });

  it("hold the fields of queue/lib.lua's reply to the worker scripts' reply", () => {
    const fields = numberedNames(headerText(read('queue/lib.lua'), 'Reply') ?? '');
    for (const name of ['queue/renew', 'queue/complete', 'queue/leave'] as const) {
      expect(fields, name).toEqual(Object.keys(SCRIPT_SPECS[name].reply.fields));
    }
  });

  it('name the keys of queue/lib.lua as the queue scripts do', () => {
    const named = [...read('queue/lib.lua').matchAll(/(\w+) = KEYS\[(\d+)\]/g)].map(([, key, i]) => `${i} ${key}`);
    expect(named).toEqual(SCRIPT_SPECS['queue/enqueue'].keys.map((key, i) => `${i + 1} ${key}`));
  });

  it('take the id of the member or worker whose key a script takes', () => {
    for (const name of scriptNames) {
      const spec: ScriptSpec = SCRIPT_SPECS[name];
      for (const [key, id] of Object.entries(ACTOR_KEYS)) {
        if (spec.keys.includes(key as keyof typeof ACTOR_KEYS)) expect(Object.keys(spec.argv), name).toContain(id);
      }
    }
  });

  it('take a list argument last', () => {
    for (const name of scriptNames) {
      const kinds = Object.values((SCRIPT_SPECS[name] as ScriptSpec).argv);
      expect(
        kinds.slice(0, -1).filter((kind) => typeof kind !== 'string'),
        name,
      ).toEqual([]);
    }
  });

  it("parse a renewal's reply in both shapes: the view, or the server's time alone", () => {
    const view = [
      'active',
      '17',
      0,
      'initial',
      4,
      1,
      3000,
      1000,
      '1700000000000',
      '0',
      '0',
      1,
      2,
      10,
      0,
      '1699999990000',
    ];
    expect(parseReply('renew', view)).toMatchObject({
      role: 'active',
      epoch: 17,
      version: 4,
      incarnation: 1699999990000,
    });
    expect(parseReply('renew', 1700000000123)).toEqual({ steady: true, serverNow: 1700000000123, watchDeadline: 0 });
    // To the next in line, with the holders' earliest lease deadline.
    expect(parseReply('renew', [1700000000123, 1700000000456])).toEqual({
      steady: true,
      serverNow: 1700000000123,
      watchDeadline: 1700000000456,
    });
    expect(() => parseReply('renew', [1700000000123, '1700000000456'])).toThrow(/unexpected reply/);
    expect(() => parseReply('renew', [0, 0])).toThrow(/unexpected reply/);
    expect(() => parseReply('renew', 'ok')).toThrow(/unexpected reply/);
    expect(() => parseReply('renew', view.slice(1))).toThrow(/unexpected reply/);
    // Other member scripts always answer with the whole view.
    expect(() => parseReply('join', 1700000000123)).toThrow(/unexpected reply/);
  });

  it('notice a header that disagrees with the spec', () => {
    const renew = read('renew.lua');
    const swapped = renew.replace('14 knownVersion', '14 epochFloor').replace('15 epochFloor', '15 knownVersion');
    expect(headerProblems('renew', swapped)).toHaveLength(1);
    expect(headerProblems('renew', renew.replace(' 7 heartbeat', ''))).toHaveLength(1);
    expect(headerProblems('renew', renew.replace('or serverNow alone', 'or the time'))).toHaveLength(1);
    const join = read('join.lua');
    expect(headerProblems('join', join.replace('lib.lua), or an error', 'lib.lua), or serverNow alone'))).toHaveLength(
      1,
    );
    expect(headerProblems('set_goal', read('set_goal.lua').replace('{ version,', '{ epoch,'))).toHaveLength(1);
    expect(headerProblems('forget', read('forget.lua').replace('keys deleted', 'members'))).toHaveLength(1);
    expect(headerProblems('leave', read('leave.lua').replace("member's view", 'reply'))).toHaveLength(1);
  });

  it('notice a queue header that disagrees with the spec', () => {
    const renew = read('queue/renew.lua');
    expect(headerProblems('queue/renew', renew)).toEqual([]);
    const swapped = renew.replace('2 weight  3 capacity', '2 capacity  3 weight');
    expect(headerProblems('queue/renew', swapped)).toHaveLength(1);
    expect(headerProblems('queue/renew', renew.replace('  9 inbox', ''))).toHaveLength(1);
    expect(headerProblems('queue/renew', renew.replace('12 claims', '12 tasks'))).toHaveLength(1);
    const complete = read('queue/complete.lua');
    expect(headerProblems('queue/complete', complete.replace('{ status, serverNow,', '{ status, now,'))).toHaveLength(
      1,
    );
    expect(headerProblems('queue/enqueue', read('queue/enqueue.lua').replace("task's id", 'id'))).toHaveLength(1);
    const observe = read('queue/observe.lua');
    expect(headerProblems('queue/observe', observe.replace('7 deadlines  8 dead', '7 dead  8 deadlines'))).toHaveLength(
      1,
    );
    expect(headerProblems('queue/observe', observe.replace('inFlight (tasks', 'flight (tasks'))).toHaveLength(1);
  });
});
