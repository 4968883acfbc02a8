import { stripVTControlCharacters } from 'node:util';
import type { GroupSnapshot, MonitoredMember, ServerReach, Transition } from '@understudy/core';
import pc from 'picocolors';
import { clock, columns, headline, memberTable, shown, transitionLine } from '../../format.js';

export interface ViewOptions {
  /** Terminal size: the view never has more lines than `height` − 1, nor longer lines than `width`. */
  width: number;
  height: number;
  colour: boolean;
  /** Ages the leases since the snapshot was read. */
  elapsedMs: number;
  transitions: readonly Transition[];
  history: number;
  /** Since when (wall clock ms) Redis has not answered, if it has not. */
  unreachable?: { since: number; error: string; now: number };
  /** Quorum mode: each server's reachability, and Q. */
  servers?: { list: readonly ServerReach[]; quorum: number };
}

/** One line for the servers of a quorum: how many answer, and which do not and why. */
export function serversLine(list: readonly ServerReach[], quorum: number, colour: boolean): string {
  const answering = list.filter((r) => r.reachable).length;
  const down = list.filter((r) => !r.reachable).map((r) => `${shown(r.server)} unreachable: ${shown(r.error ?? '')}`);
  const text = `servers: ${answering} of ${list.length} reachable (a quorum is ${quorum})${down.length ? ` · ${down.join(' · ')}` : ''}`;
  if (!colour) return text;
  return answering === list.length ? pc.green(text) : answering >= quorum ? pc.yellow(text) : pc.red(text);
}

/**
 * The live view, fitted to the terminal: the headline and the members holding or about to
 * hold a slot always come first; standbys fill what room is left, best ranked first, and the
 * rest is summarised on one line; the latest transitions get the room nobody else needs.
 * Only what is shown is formatted, so a redraw costs the same for 20 members or 2,000.
 */
export function liveView(s: GroupSnapshot, o: ViewOptions): string[] {
  const rows = Math.max(1, o.height - 1); // log-update keeps the cursor on a line of its own
  const top = [o.unreachable ? unreachableLine(s, o.unreachable, o.colour) : headline(s, o.colour)];
  if (o.servers) top.push(serversLine(o.servers.list, o.servers.quorum, o.colour));
  if (s.members.length === 0) return fit([...top, '', '(no members)'].slice(0, rows), o.width);
  const busy = s.members.filter((m) => m.state !== 'standby');
  const standbys = s.members.filter((m) => m.state === 'standby');
  // Headline, blank line, table header, the busy members and a summary line; the blank line
  // goes first when room is short.
  const gap = rows >= top.length + 2 + busy.length + (standbys.length > 0 ? 1 : 0) ? [''] : [];
  const fixed = top.length + gap.length + 1;
  const recent = o.history > 0 ? o.transitions.slice(-o.history) : [];
  const transitionRoom = Math.max(0, Math.min(recent.length, rows - fixed - busy.length - 1 - 2));
  const memberRoom = Math.max(1, rows - fixed - (transitionRoom > 0 ? transitionRoom + 2 : 0));
  let shown: MonitoredMember[];
  if (s.members.length <= memberRoom) shown = s.members;
  else {
    const room = memberRoom - 1; // the summary line
    shown = [...busy.slice(0, room), ...standbys.slice(0, Math.max(0, room - busy.length))].sort(
      (a, b) => a.rank - b.rank,
    );
  }
  const hidden = s.members.length - shown.length;
  const table = memberTable({ ...s, members: shown }, o.colour, o.elapsedMs, idWidth(o.width));
  const lines = [...top, ...gap, ...table];
  if (hidden > 0) lines.push(summary(s.members, shown, hidden));
  if (transitionRoom > 0) {
    lines.push(
      '',
      'Latest transitions',
      ...columns(recent.slice(-transitionRoom).map(transitionLine)).map((l) => `  ${l}`),
    );
  }
  return fit(lines.slice(0, rows), o.width);
}

/** Room for member ids: what the other columns leave (at least 8 characters). */
function idWidth(width: number): number {
  return Math.max(8, width - 56);
}

function summary(members: readonly MonitoredMember[], shown: readonly MonitoredMember[], hidden: number): string {
  const counts = new Map<string, number>();
  const visible = new Set(shown);
  for (const m of members) if (!visible.has(m)) counts.set(m.state, (counts.get(m.state) ?? 0) + 1);
  const parts = [...counts].map(([state, n]) => `${n} ${state}`);
  return `… ${hidden} more ${hidden === 1 ? 'member' : 'members'} not shown (${parts.join(', ')})`;
}

function unreachableLine(s: GroupSnapshot, u: NonNullable<ViewOptions['unreachable']>, colour: boolean): string {
  const text =
    `group ${s.group} · Redis unreachable since ${clock(u.since)} (${((u.now - u.since) / 1000).toFixed(0)} s): ` +
    `${u.error} · showing what was read at ${clock(s.serverTime)}, which may be stale`;
  return colour ? pc.red(text) : text;
}

/** Cuts lines to the terminal's width (a wrapped line would push the headline off the top). */
function fit(lines: string[], width: number): string[] {
  return lines.map((line) => {
    const plain = stripVTControlCharacters(line);
    return plain.length <= width ? line : `${plain.slice(0, Math.max(0, width - 1))}…`;
  });
}
