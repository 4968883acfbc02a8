/**
 * For the repository's own tools (the benchmark), not for applications: the scripts' spec table
 * and their source as Redis runs it. No compatibility promise: it follows core's scripts.
 */
export { luaSource, scriptSource } from './lua.js';
export { type FunctionLibrary, functionName } from './lua-library.js';
export { libraryOf } from './script-call.js';
export {
  isSteady,
  type MemberView,
  parseReply,
  type RenewalReply,
  SCRIPT_SPECS,
  type ScriptArgs,
  type ScriptInvocation,
  type ScriptName,
  type ScriptReply,
  scriptInvocation,
} from './script-specs.js';
