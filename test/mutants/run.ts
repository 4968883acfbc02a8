// `pnpm mutants`: applies each semantic mutant of mutants.ts to a scratch copy of the
// repository, runs the tests it names, and prints which tests killed it and which mutants
// survived. A survivor is a missing test or fault kind. A mutant whose `find` no longer occurs
// exactly once fails loudly: update it.
//
//   pnpm mutants                 every mutant
//   pnpm mutants --only ID …     these (repeat, or separate with commas)
//   pnpm mutants --list          the mutants, without running anything
//   pnpm mutants --baseline      first run every named test on the unmutated copy
//   pnpm mutants --keep          keep the scratch copy (its logs/ hold every run's output)
import { execFileSync, spawn } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { MUTANTS, type Mutant, type MutantTest } from './mutants.js';

const ROOT = resolve(import.meta.dirname, '../..');
const RUN_TIMEOUT_MS = 15 * 60_000;
/** Caches that belong to one checkout: the scratch copy makes its own. */
const NOT_SHARED = new Set(['.vite', '.vite-temp', '.vitest', '.cache']);

type Verdict =
  | { kind: 'killed'; by: string; ms: number }
  | { kind: 'survived'; ms: number }
  | { kind: 'not applicable'; why: string };

const { values } = parseArgs({
  options: {
    only: { type: 'string', multiple: true },
    list: { type: 'boolean' },
    baseline: { type: 'boolean' },
    keep: { type: 'boolean' },
  },
  strict: true,
});

const only = (values.only ?? []).flatMap((v) => v.split(',')).filter((v) => v !== '');
const unknown = only.filter((id) => !MUTANTS.some((m) => m.id === id));
if (unknown.length > 0) {
  console.error(`no mutant ${unknown.join(', ')}; --list shows them`);
  process.exit(2);
}
const chosen = only.length > 0 ? MUTANTS.filter((m) => only.includes(m.id)) : MUTANTS;

if (values.list) {
  for (const m of chosen) {
    const why = inapplicable(m, ROOT);
    console.log(
      `${m.id} (${m.rule}): ${m.breaks}\n  ${m.file}: ${why ? `NOT APPLICABLE: ${why}` : 'applies'}\n` +
        `  killed by: ${m.tests.map(describeTest).join('; ')}`,
    );
  }
  process.exit(chosen.some((m) => inapplicable(m, ROOT)) ? 1 : 0);
}

const scratch = makeScratchCopy();
console.log(`scratch copy: ${scratch}`);
let failed = false;
try {
  if (values.baseline) failed = !(await baseline(chosen));
  if (!failed) {
    const rows: [Mutant, Verdict][] = [];
    for (const mutant of chosen) {
      const verdict = await runMutant(mutant);
      rows.push([mutant, verdict]);
      console.log(`${mutant.id}: ${describeVerdict(verdict)}`);
    }
    console.log(`\n${table(rows)}`);
    failed = rows.some(([, v]) => v.kind !== 'killed');
  }
} finally {
  if (values.keep) console.log(`kept ${scratch}`);
  else rmSync(scratch, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);

// ---- the scratch copy ------------------------------------------------------------------------

/**
 * The working tree's files (tracked and untracked, not ignored) in a fresh folder. Third-party
 * packages are shared: the root's node_modules entries are linked; each package's own
 * node_modules is copied with its symlinks as they are (relative), so that a workspace
 * package resolves to the scratch copy's sources, never to the original's.
 */
function makeScratchCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-mutants-'));
  const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: ROOT, encoding: 'utf8' })
    .split('\0')
    .filter((f) => f !== '' && existsSync(join(ROOT, f)));
  for (const file of files) {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    copyFileSync(join(ROOT, file), join(dir, file));
  }
  mkdirSync(join(dir, 'node_modules'));
  for (const entry of readdirSync(join(ROOT, 'node_modules'))) {
    if (!NOT_SHARED.has(entry)) symlinkSync(join(ROOT, 'node_modules', entry), join(dir, 'node_modules', entry));
  }
  for (const pkg of readdirSync(join(ROOT, 'packages'))) {
    const modules = join(ROOT, 'packages', pkg, 'node_modules');
    if (!existsSync(modules)) continue;
    cpSync(modules, join(dir, 'packages', pkg, 'node_modules'), {
      recursive: true,
      verbatimSymlinks: true,
      filter: (source) => !NOT_SHARED.has(source.slice(source.lastIndexOf('/') + 1)),
    });
  }
  mkdirSync(join(dir, 'logs'));
  return dir;
}

// ---- running -------------------------------------------------------------------------------

/** Why the mutant cannot be applied to the tree at `root`, or undefined if it can. */
function inapplicable(mutant: Mutant, root: string): string | undefined {
  const path = join(root, mutant.file);
  if (!existsSync(path)) return `${mutant.file} does not exist: update the mutant`;
  const occurrences = readFileSync(path, 'utf8').split(mutant.find).length - 1;
  return occurrences === 1
    ? undefined
    : `its find snippet occurs ${occurrences} times in ${mutant.file} (it must occur once): update the mutant`;
}

async function runMutant(mutant: Mutant): Promise<Verdict> {
  const why = inapplicable(mutant, scratch);
  if (why) return { kind: 'not applicable', why };
  const path = join(scratch, mutant.file);
  const original = readFileSync(path, 'utf8');
  // A function, so that `$` in the replacement is taken literally.
  writeFileSync(
    path,
    original.replace(mutant.find, () => mutant.replace),
  );
  const started = performance.now();
  try {
    for (const [index, test] of mutant.tests.entries()) {
      const outcome = await runTest(test, `${mutant.id}-${index}`);
      if (outcome.kind === 'no test') {
        return { kind: 'not applicable', why: `no test of ${describeTest(test)} ran: update the mutant's tests` };
      }
      if (outcome.kind === 'failed') {
        return { kind: 'killed', by: `${test.file} › ${outcome.test}`, ms: performance.now() - started };
      }
    }
    return { kind: 'survived', ms: performance.now() - started };
  } finally {
    writeFileSync(path, original);
  }
}

async function baseline(mutants: readonly Mutant[]): Promise<boolean> {
  const specs = new Map(mutants.flatMap((m) => m.tests.map((t) => [describeTest(t), t] as const)));
  let ok = true;
  for (const [index, [description, test]] of [...specs].entries()) {
    let outcome = await runTest(test, `baseline-${index}`);
    if (outcome.kind === 'failed') {
      // A timing test may fail once on a loaded machine: say so, and let a second run decide.
      console.log(`baseline ${description}: failed once (${outcome.test}); running it again`);
      outcome = await runTest(test, `baseline-${index}-again`);
      if (outcome.kind === 'passed') console.log(`  passed the second time: a kill by it alone may be spurious`);
    }
    console.log(`baseline ${description}: ${outcome.kind === 'failed' ? `FAILED (${outcome.test})` : outcome.kind}`);
    if (outcome.kind !== 'passed') ok = false;
  }
  return ok;
}

type Outcome = { kind: 'passed' } | { kind: 'failed'; test: string } | { kind: 'no test' };

interface JsonReport {
  numTotalTests: number;
  numPendingTests: number;
  numTodoTests?: number;
  testResults: {
    name: string;
    status: string;
    message?: string;
    assertionResults: { fullName: string; status: string }[];
  }[];
}

/** Runs one test file (or the tests of it matching `name`) in the scratch copy, its output to logs/. */
async function runTest(test: MutantTest, label: string): Promise<Outcome> {
  const report = join(scratch, 'logs', `${label}.json`);
  rmSync(report, { force: true });
  const args = [
    join(scratch, 'node_modules/vitest/vitest.mjs'),
    'run',
    '--project',
    projectOf(test.file),
    test.file,
    ...(test.name ? ['-t', escapeRegExp(test.name)] : []),
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${report}`,
  ];
  const log = join(scratch, 'logs', `${label}.log`);
  const code = await new Promise<number | null>((done) => {
    const child = spawn(process.execPath, args, { cwd: scratch, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => chunks.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.on('exit', (exitCode) => {
      clearTimeout(timer);
      writeFileSync(log, Buffer.concat(chunks));
      done(exitCode);
    });
  });
  if (!existsSync(report))
    return { kind: 'failed', test: `the run ended with code ${code} and no report (see ${log})` };
  const json = JSON.parse(readFileSync(report, 'utf8')) as JsonReport;
  for (const file of json.testResults) {
    const failedTest = file.assertionResults.find((a) => a.status === 'failed');
    if (failedTest) return { kind: 'failed', test: failedTest.fullName };
    if (file.status === 'failed') return { kind: 'failed', test: `the file failed: ${file.message ?? 'no message'}` };
  }
  if (json.numTotalTests - json.numPendingTests - (json.numTodoTests ?? 0) === 0) return { kind: 'no test' };
  if (code !== 0) return { kind: 'failed', test: `the run ended with code ${code} (see ${log})` };
  return { kind: 'passed' };
}

function projectOf(file: string): string {
  const match = /^packages\/([^/]+)\/test\//.exec(file);
  return match ? (match[1] as string) : 'integration';
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// ---- reporting -----------------------------------------------------------------------------

function describeTest(test: MutantTest): string {
  return test.name ? `${test.file} › ${test.name}` : test.file;
}

function describeVerdict(verdict: Verdict): string {
  switch (verdict.kind) {
    case 'killed':
      return `killed by ${verdict.by} in ${(verdict.ms / 1000).toFixed(0)} s`;
    case 'survived':
      return `SURVIVED (${(verdict.ms / 1000).toFixed(0)} s): a test or fault kind is missing`;
    case 'not applicable':
      return `NOT APPLICABLE: ${verdict.why}`;
  }
}

/** The kill table, as Markdown (docs/RELIABILITY.md keeps the latest). */
function table(rows: readonly [Mutant, Verdict][]): string {
  const lines = [
    '| mutant | rule | what it breaks | result | killed by | time |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const [m, v] of rows) {
    const result = v.kind === 'killed' ? 'killed' : v.kind === 'survived' ? '**survived**' : '**not applicable**';
    const by = v.kind === 'killed' ? v.by : v.kind === 'not applicable' ? v.why : '';
    const time = v.kind === 'not applicable' ? '' : `${(v.ms / 1000).toFixed(0)} s`;
    lines.push(`| \`${m.id}\` | ${m.rule} | ${m.breaks} | ${result} | ${by.replaceAll('|', '\\|')} | ${time} |`);
  }
  return lines.join('\n');
}
