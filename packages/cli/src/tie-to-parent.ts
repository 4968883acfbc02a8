import { accessSync, constants } from 'node:fs';

const SETPRIV = '/usr/bin/setpriv';

function hasSetpriv(): boolean {
  try {
    accessSync(SETPRIV, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Whether children can be tied to this process's life (Linux `setpriv --pdeathsig`). */
export const canTieToParent = hasSetpriv();

/**
 * The file and arguments that run `command` so the kernel sends it `signal` when this
 * process dies, however it dies; unchanged where setpriv is missing. `run` ties its command
 * with KILL, `demo` its member processes with TERM.
 */
export function tiedToParent(command: string, args: readonly string[], signal: 'KILL' | 'TERM'): [string, string[]] {
  return canTieToParent ? [SETPRIV, ['--pdeathsig', signal, '--', command, ...args]] : [command, [...args]];
}
