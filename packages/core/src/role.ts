import { type ProcessRole, RoleConflictError } from './errors.js';

/**
 * The process's role (DESIGN §7), kept on `globalThis` under a registered symbol so that two
 * copies of the library in one process see one registry. Its shape is part of the contract
 * between versions: `{ role, names }`, `names` counting the joins per group or queue name.
 */
const REGISTRY = Symbol.for('understudy.role');

interface RoleEntry {
  role: ProcessRole;
  names: Map<string, number>;
}

type Holder = { [REGISTRY]?: RoleEntry };

/**
 * Records that this process joins `name` as `role`; throws RoleConflictError if it holds the other
 * role. Returns the release, to call once when the member or worker has left.
 */
export function claimRole(role: ProcessRole, name: string): () => void {
  const holder = globalThis as Holder;
  const entry = holder[REGISTRY];
  if (entry && entry.names.size > 0 && entry.role !== role) {
    throw new RoleConflictError({ role, name }, { role: entry.role, name: [...entry.names.keys()][0] ?? '' });
  }
  const held = entry && entry.names.size > 0 ? entry : { role, names: new Map<string, number>() };
  holder[REGISTRY] = held;
  held.names.set(name, (held.names.get(name) ?? 0) + 1);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const count = (held.names.get(name) ?? 1) - 1;
    if (count > 0) held.names.set(name, count);
    else held.names.delete(name);
  };
}
