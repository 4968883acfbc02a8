import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sweepLeftovers } from '../redis/registry.js';

/**
 * Gives the suite one folder for every server it starts; at the end, anything still running
 * from it is killed and reported, so a leak fails the run instead of lingering.
 */
export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), 'understudy-suite-'));
  process.env.UNDERSTUDY_TESTKIT_ROOT = root;
  return () => {
    const leftovers = sweepLeftovers(root);
    rmSync(root, { recursive: true, force: true });
    if (leftovers.length > 0) {
      throw new Error(`the test kit's cleanup missed redis-server processes ${leftovers.join(', ')}; killed them now`);
    }
  };
}
