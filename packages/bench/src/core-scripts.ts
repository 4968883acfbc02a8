import { readFileSync } from 'node:fs';

/** The folder of @understudy/core's Lua scripts (its sources, or its build's copy). */
const LUA_DIR = new URL('./lua/', import.meta.resolve('@understudy/core'));

function read(name: string): string {
  return readFileSync(new URL(`${name}.lua`, LUA_DIR), 'utf8');
}

/**
 * A member script of @understudy/core as Redis runs it: the file with its `--@include` lines
 * replaced by the included files (what core's lua.ts does when it defines the commands).
 */
export function coreScript(name: string): string {
  return read(name).replace(/^--@include (\S+)$/m, (_line, file: string) => coreScript(file.replace(/\.lua$/, '')));
}

/** Names of the ARGV entries a script's header lists, as the benchmark knows them. */
const KNOWN_ARGUMENTS = [
  'channel',
  'member id',
  'weight',
  'activeGoal',
  'activationInterval',
  'heartbeatInterval',
  'preparationInterval',
  'host',
  'pid',
  'claimed epoch',
  'claimed slot',
  'nonce',
  'the group’s incarnation',
  'the group’s version',
  'epoch floor',
  'lease end',
] as const;

export type ScriptArgument = (typeof KNOWN_ARGUMENTS)[number];

/**
 * The order of a script's ARGV, read from its header (`-- ARGV: 1 channel  2 member id …`),
 * so the benchmark sends what the script expects even when core adds an argument. An
 * argument the benchmark does not know is an error that says where to teach it.
 */
export function scriptArguments(name: string): ScriptArgument[] {
  const header = read(name).split('\n');
  const start = header.findIndex((line) => line.startsWith('-- ARGV:'));
  if (start < 0) throw new Error(`core's ${name}.lua has no ARGV line in its header`);
  const lines: string[] = [];
  for (let i = start; i < header.length; i++) {
    const line = header[i] as string;
    if (i > start && !/^--\s+\d+ /.test(line)) break;
    lines.push(line.replace(/^-- (ARGV:)?/, '').trim());
  }
  const entries = lines.join('  ').split(/\s{2,}(?=\d+ )/);
  return entries.map((entry, index) => {
    const [, position, text] = /^(\d+) (.*)$/.exec(entry.trim()) ?? [];
    const known = KNOWN_ARGUMENTS.find((k) => text?.startsWith(k));
    if (Number(position) !== index + 1 || !known) {
      throw new Error(
        `core's ${name}.lua takes ARGV ${position ?? index + 1} "${text ?? entry}", which the benchmark does not know: ` +
          'teach packages/bench/src/core-scripts.ts and scenarios/driver.ts',
      );
    }
    return known;
  });
}
