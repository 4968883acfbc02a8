import { fileURLToPath } from 'node:url';

/**
 * Node arguments that run a TypeScript file against the workspace's sources, as the tests do:
 * `spawn(process.execPath, [...runTypeScript(), file, ...args])`.
 */
export function runTypeScript(): string[] {
  return ['--conditions=@understudy/source', '--import', fileURLToPath(import.meta.resolve('tsx'))];
}
