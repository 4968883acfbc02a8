import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runTypeScript } from '@understudy/testkit';
import { describe, expect, it } from 'vitest';

const bin = join(import.meta.dirname, '../bin/understudy.js');
const { version } = JSON.parse(readFileSync(join(import.meta.dirname, '../package.json'), 'utf8')) as {
  version: string;
};

function understudy(...args: string[]) {
  const result = spawnSync(process.execPath, [...runTypeScript(), bin, ...args], { encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('understudy', () => {
  it('prints its usage, every command and the exit codes with --help', () => {
    const { code, stdout } = understudy('--help');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Usage: understudy \[options\] \[command\]/);
    for (const command of ['run', 'monitor', 'status', 'queue', 'group', 'acl', 'functions', 'demo']) {
      expect(stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    }
    expect(stdout).toContain('Exit codes (see docs/CLI.md):');
    expect(stdout).toContain('3    Redis cannot be reached');
    expect(stdout).toContain('run: 1 also when a live member of the group already uses --member-id');
    expect(stdout).toContain('5    Redis refused the user (ACL NOPERM)');
  });

  it('prints the package version with --version', () => {
    const { code, stdout } = understudy('--version');
    expect(code).toBe(0);
    expect(stdout.trim()).toBe(version);
  });

  it('rejects an unknown option with exit code 2 and says what was wrong', () => {
    const { code, stderr } = understudy('--frobnicate');
    expect(code).toBe(2);
    expect(stderr).toContain("unknown option '--frobnicate'");
  });

  it('prints help and exits 2 when given nothing to do', () => {
    const { code, stdout } = understudy();
    expect(code).toBe(2);
    expect(stdout).toContain('Usage: understudy');
  });
});
