import { stripVTControlCharacters } from 'node:util';
import type { GroupSnapshot, MonitoredState, Transition } from '@understudy/core';
import pc from 'picocolors';

/**
 * Anything read from Redis, made safe for a terminal: control characters (C0, DEL, C1) and
 * the invisible bidirectional and formatting marks are shown as \xNN / \uNNNN escapes, so a
 * planted value can neither drive the terminal (titles, clears, cursor moves) nor disguise
 * itself.
 */
export function shown(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters it escapes
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

/** Renders rows as left-aligned columns (ANSI colour codes do not count towards width). */
export function columns(rows: readonly (readonly string[])[], gap = 2): string[] {
  const visible = (s: string) => stripVTControlCharacters(s).length;
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, visible(cell));
    });
  }
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - visible(cell) + gap)))
      .join('')
      .trimEnd(),
  );
}

const STATE_COLOUR: Record<MonitoredState, (s: string) => string> = {
  active: pc.green,
  releasing: pc.yellow,
  preparing: pc.cyan,
  standby: pc.dim,
};

export function state(s: MonitoredState, colour: boolean): string {
  return colour ? STATE_COLOUR[s](s) : s;
}

/** `1.8s`: ms as seconds with one decimal, 0 at the least. */
export function seconds(ms: number): string {
  return `${(Math.max(0, ms) / 1000).toFixed(1)}s`;
}

/** `██████░░░░ 1.8s`: the part of the lease still ahead. */
export function leaseBar(remainingMs: number, leaseMs: number, width = 10): string {
  const fraction = leaseMs > 0 ? Math.min(1, Math.max(0, remainingMs / leaseMs)) : 0;
  const full = Math.round(fraction * width);
  return `${'█'.repeat(full)}${'░'.repeat(width - full)} ${seconds(remainingMs)}`;
}

export function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 23);
}

/** `1 member`, `2 members`. */
export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

export function headline(s: GroupSnapshot, colour: boolean): string {
  const counted = activeCount(s, colour, ' active');
  const quarantine = s.quarantineRemainingMs > 0 ? ` · quarantine ${seconds(s.quarantineRemainingMs)}` : '';
  return `group ${shown(s.group)} · ${counted} · ${plural(s.members.length, 'member')} · version ${s.version}${quarantine}`;
}

/** `active/goal` and `suffix`: green when as many are active as the members allow, else yellow. */
export function activeCount(s: GroupSnapshot, colour: boolean, suffix = ''): string {
  const count = `${s.activeCount}/${s.activeGoal}${suffix}`;
  if (!colour) return count;
  return s.activeCount === Math.min(s.activeGoal, s.members.length) ? pc.green(count) : pc.yellow(count);
}

/** A table's header row: bold on a terminal. */
export function header(cells: string[], colour: boolean): string[] {
  return colour ? cells.map((c) => pc.bold(c)) : cells;
}

/**
 * The members table; `elapsedMs` ages the leases since the snapshot was read; ids longer
 * than `idWidth` are cut (with …).
 */
export function memberTable(
  s: GroupSnapshot,
  colour: boolean,
  elapsedMs = 0,
  idWidth = Number.POSITIVE_INFINITY,
): string[] {
  const titles = ['RANK', 'MEMBER', 'WEIGHT', 'STATE', 'EPOCH', 'LEASE'];
  const rows = s.members.map((m) => {
    const id = shown(m.id);
    return [
      String(m.rank),
      id.length > idWidth ? `${id.slice(0, idWidth - 1)}…` : id,
      String(m.weight),
      state(m.state, colour),
      m.epoch === undefined ? '-' : String(m.epoch),
      leaseBar(m.leaseRemainingMs - elapsedMs, s.activationInterval),
    ];
  });
  return columns([header(titles, colour), ...rows]);
}

/** A server of a quorum (DESIGN §9) as an operator call saw it. */
export interface ServerRow {
  index: number;
  server: string;
  reachable: boolean;
  error?: string;
  activeGoal?: number;
  activeCount?: number;
  version?: number;
}

/**
 * One row per server of a quorum: reachable or why not, and its own goal, actives and version,
 * so that a server whose view differs from the majority's shows.
 */
export function serverTable(servers: readonly ServerRow[], quorum: number, colour: boolean): string[] {
  const rows = servers.map((r) => {
    const reach = r.reachable ? 'reachable' : `unreachable: ${shown(r.error ?? 'no answer')}`;
    return [
      String(r.index + 1),
      shown(r.server),
      colour ? (r.reachable ? pc.green(reach) : pc.red(reach)) : reach,
      r.activeGoal === undefined ? '-' : String(r.activeGoal),
      r.activeCount === undefined ? '-' : String(r.activeCount),
      r.version === undefined ? '-' : String(r.version),
    ];
  });
  const answering = servers.filter((r) => r.reachable).length;
  return [
    `servers: ${answering} of ${servers.length} reachable, a quorum is ${quorum}`,
    ...columns([header(['#', 'SERVER', 'STATE', 'GOAL', 'ACTIVE HERE', 'VERSION'], colour), ...rows]).map(
      (l) => `  ${l}`,
    ),
  ];
}

export function transitionLine(t: Transition): string[] {
  const details = [
    t.epoch === undefined ? '' : `epoch ${t.epoch}`,
    t.weight === undefined ? '' : `weight ${t.weight}`,
    t.goal === undefined ? '' : `goal ${t.goal}`,
    t.reason ? shown(t.reason) : '',
  ].filter(Boolean);
  return [clock(t.time), shown(t.type), t.member ? shown(t.member) : '-', details.join(' ')];
}

/**
 * JSON for the terminal: JSON.stringify escapes C0 control characters but not DEL, the C1
 * controls (U+0080–U+009F, which some terminals obey) or the invisible bidirectional marks.
 */
export function json(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(
    UNSAFE_IN_JSON,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

const UNSAFE_IN_JSON = /[\u007f-\u009f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;
