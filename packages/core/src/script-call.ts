import { createHash } from 'node:crypto';
import { Cluster, type Redis } from 'ioredis';
import { scriptSource } from './lua.js';
import { type FunctionLibrary, functionLibrary, functionName, type LibraryKind } from './lua-library.js';
import { SCRIPT_SPECS, type ScriptName } from './script-specs.js';

/**
 * How a script reaches Redis: as a function of understudy's function library (FCALL, FCALL_RO
 * for the read-only ones) where the server has Redis Functions and the user may call them, else
 * as a script (EVALSHA, EVAL on NOSCRIPT; EVALSHA_RO / EVAL_RO for the read-only ones). The
 * decision is taken per connection, from what the server answered, and kept:
 *
 * - the library is loaded (`FUNCTION LOAD`, every master of a Cluster) before a connection's
 *   first call; "already exists" is a library another client loaded, the same code by its name;
 * - a call answered "Function not found" did not run (a Cluster node or promoted replica that
 *   never got the library, a `FUNCTION FLUSH`, a restart without persistence): the library is
 *   loaded again and the call sent once more. Nothing else is ever sent twice (S5): any other
 *   failure may come from a call that ran, and is the caller's;
 * - a server without functions (Redis < 7: unknown command), or a user refused FCALL / FCALL_RO,
 *   runs the scripts from then on; so does a user that may not load the library when nobody
 *   loaded it (a monitor's read-only user: its reads use EVALSHA_RO then).
 */

type Connection = Redis | Cluster;
type Argument = string | number | Buffer;

interface ServerState {
  /** The connection runs the writing scripts with EVALSHA / EVAL. */
  scripts: boolean;
  /** The connection runs the read-only scripts with EVALSHA_RO / EVAL_RO. */
  readScripts: boolean;
  /** False once the server refused this user FUNCTION LOAD: it calls what someone else loaded. */
  mayLoad: boolean;
  loaded: Set<LibraryKind>;
  loading: Map<LibraryKind, Promise<void>>;
}

const states = new WeakMap<Connection, ServerState>();

function stateOf(connection: Connection): ServerState {
  let state = states.get(connection);
  if (state === undefined) {
    state = { scripts: false, readScripts: false, mayLoad: true, loaded: new Set(), loading: new Map() };
    states.set(connection, state);
  }
  return state;
}

const GROUP_SCRIPTS = (Object.keys(SCRIPT_SPECS) as ScriptName[]).filter((name) => !name.startsWith('queue/'));
const QUEUE_SCRIPTS = (Object.keys(SCRIPT_SPECS) as ScriptName[]).filter((name) => name.startsWith('queue/'));

/** The library that holds a script: the queue's for `queue/…`, else the group's. */
export function libraryOf(name: ScriptName): FunctionLibrary {
  return name.startsWith('queue/') ? functionLibrary('queue', QUEUE_SCRIPTS) : functionLibrary('group', GROUP_SCRIPTS);
}

const functionNames = new Map<ScriptName, string>();

/** The name of a script's function in this version's library (worked out once per process). */
function functionNameOf(name: ScriptName): string {
  let named = functionNames.get(name);
  if (named === undefined) {
    named = functionName(libraryOf(name), name);
    functionNames.set(name, named);
  }
  return named;
}

/** What a refused function call or load says about the server and the user; undefined: neither. */
type Refusal = 'missing' | 'unavailable' | 'not-permitted' | 'exists' | 'clash' | 'rejected';

function refusal(error: unknown): Refusal | undefined {
  if (!(error instanceof Error)) return undefined;
  const message = error.message;
  if (/^ERR Function not found/.test(message)) return 'missing';
  if (/^ERR unknown command/i.test(message)) return 'unavailable';
  // The command itself refused by ACL (before anything ran), not a key or a command inside it.
  if (/^NOPERM .*'(fcall|fcall_ro|function\|load)' command/i.test(message)) return 'not-permitted';
  if (/^ERR Library '[^']*' already exists/.test(message)) return 'exists';
  // Another library holds a function of ours by its name: its code is not ours to run.
  if (/^ERR Function \S+ already exists/.test(message)) return 'clash';
  // The server would not take the library's code (a limit of its Lua): the scripts still run.
  if (/^ERR Error (compiling|registering) function/.test(message)) return 'rejected';
  return undefined;
}

/** Loads `library` where this connection's calls go: the server, or every master of a Cluster. */
async function load(connection: Connection, state: ServerState, library: FunctionLibrary): Promise<void> {
  const nodes: Redis[] = connection instanceof Cluster ? connection.nodes('master') : [connection];
  // A Cluster that has not read its slots yet knows no node: its first call finds the library missing.
  if (nodes.length === 0) return;
  const outcomes = await Promise.allSettled(nodes.map((node) => node.call('FUNCTION', 'LOAD', library.source)));
  let loaded = true;
  for (const outcome of outcomes) {
    if (outcome.status === 'fulfilled') continue;
    const reason = refusal(outcome.reason);
    if (reason === 'exists') continue;
    loaded = false;
    if (reason === 'unavailable' || reason === 'clash' || reason === 'rejected') {
      state.scripts = true;
      state.readScripts = true;
    } else if (reason === 'not-permitted') {
      state.mayLoad = false;
    } else {
      throw outcome.reason;
    }
  }
  if (loaded) state.loaded.add(library.kind);
}

/** `load`, once at a time per connection and library. */
function loadOnce(connection: Connection, state: ServerState, library: FunctionLibrary): Promise<void> {
  let loading = state.loading.get(library.kind);
  if (loading === undefined) {
    loading = load(connection, state, library).finally(() => state.loading.delete(library.kind));
    state.loading.set(library.kind, loading);
  }
  return loading;
}

const shas = new Map<string, string>();

function shaOf(source: string): string {
  let sha = shas.get(source);
  if (sha === undefined) {
    sha = createHash('sha1').update(source).digest('hex');
    shas.set(source, sha);
  }
  return sha;
}

/** EVALSHA, and EVAL on NOSCRIPT (the script did not run); `_RO` for the read-only scripts. */
async function evalScript(
  connection: Connection,
  name: ScriptName,
  keys: readonly string[],
  argv: readonly Argument[],
  readOnly: boolean,
): Promise<unknown> {
  const source = scriptSource(`${name}.lua`);
  const suffix = readOnly ? '_ro' : '';
  try {
    return await connection.call(`evalsha${suffix}`, shaOf(source), keys.length, ...keys, ...argv);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return await connection.call(`eval${suffix}`, source, keys.length, ...keys, ...argv);
  }
}

/**
 * Runs script `name` on `keys` and `argv` (in the script's positions) and returns Redis's reply
 * as it is; a failure is Redis's or ioredis's error, for the caller to classify. `readOnly`:
 * one of the monitors' scripts (FCALL_RO / EVALSHA_RO, which a user without writes may run).
 */
export async function callScript(
  connection: Connection,
  name: ScriptName,
  keys: readonly string[],
  argv: readonly Argument[],
  readOnly: boolean,
): Promise<unknown> {
  const state = stateOf(connection);
  if (!(readOnly ? state.readScripts : state.scripts)) {
    const library = libraryOf(name);
    if (state.mayLoad && !state.loaded.has(library.kind)) await loadOnce(connection, state, library);
    for (let attempt = 0; !(readOnly ? state.readScripts : state.scripts); attempt++) {
      try {
        return await connection.call(
          readOnly ? 'fcall_ro' : 'fcall',
          functionNameOf(name),
          keys.length,
          ...keys,
          ...argv,
        );
      } catch (error) {
        const reason = refusal(error);
        if (reason === 'missing' && attempt === 0 && state.mayLoad) {
          state.loaded.delete(library.kind);
          await loadOnce(connection, state, library);
          continue;
        }
        if (reason === 'unavailable') {
          state.scripts = true;
          state.readScripts = true;
        } else if (reason === 'not-permitted' || (reason === 'missing' && !state.mayLoad)) {
          // This user may not call functions, or may not load what nobody loaded: scripts it is.
          if (readOnly) state.readScripts = true;
          else state.scripts = true;
        } else if (reason !== 'missing') {
          throw error;
        }
        // Not found even after loading it (a slot that moved on, a flush in between): the
        // function did not run, so the script runs instead, this once.
        break;
      }
    }
  }
  return await evalScript(connection, name, keys, argv, readOnly);
}

/** What an operator's load did: each library, on how many servers, loaded there now (else already there). */
export interface LoadedLibrary {
  kind: LibraryKind;
  name: string;
  servers: number;
  loadedNow: number;
}

/**
 * Loads both libraries on the server, or on every master of a Cluster: an operator's step, so
 * that users that may not load functions (understudy acl) call them. Any refusal is thrown.
 */
export async function loadLibraries(connection: Connection): Promise<LoadedLibrary[]> {
  const nodes: Redis[] = connection instanceof Cluster ? connection.nodes('master') : [connection];
  if (nodes.length === 0) throw new Error('the Cluster client knows no master');
  const result: LoadedLibrary[] = [];
  for (const library of [libraryOf('renew'), libraryOf('queue/renew')]) {
    let loadedNow = 0;
    for (const node of nodes) {
      try {
        await node.call('FUNCTION', 'LOAD', library.source);
        loadedNow += 1;
      } catch (error) {
        if (refusal(error) !== 'exists') throw error;
      }
    }
    result.push({ kind: library.kind, name: library.name, servers: nodes.length, loadedNow });
  }
  return result;
}

/** How a connection runs scripts now (for tests and diagnostics). */
export function scriptTransport(connection: Connection): { scripts: boolean; readScripts: boolean } {
  const state = stateOf(connection);
  return { scripts: state.scripts, readScripts: state.readScripts };
}
