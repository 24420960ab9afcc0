/**
 * The package installs and runs outside this checkout: `npm pack` → `npm install ./rlhf-ts-*.tgz` into an
 * empty project (the install hook builds the native addon there, against the libtorch it finds) → the
 * README's program (examples/reward-dpo-ppo.ts) type-checks against the installed declarations and runs
 * from that project, and the `rlhf` command works from node_modules/.bin.
 *
 * Opt-in (`npm run test:package`, RLHF_TEST_PACKAGE=1): the native build alone takes minutes, beyond the
 * suite's budget. Dependencies come from npm's cache when it has them (--prefer-offline).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ROOT } from '../model/run-cli.js';

const ENABLED = process.env.RLHF_TEST_PACKAGE === '1';
const TMP = mkdtempSync(join(tmpdir(), 'rlhf-package-test-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

/** Runs a command, failing the test with its output when it fails. */
function run(cmd: string, args: readonly string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} (in ${cwd}) failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

test('npm pack → npm install into an empty project → the README program runs there', {
  skip: !ENABLED && 'set RLHF_TEST_PACKAGE=1 (npm run test:package)',
}, () => {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  run(npm, ['pack', '--pack-destination', TMP, '--loglevel=error'], ROOT);
  const tarball = readdirSync(TMP).find((f) => /^rlhf-ts-.*\.tgz$/.test(f));
  assert.ok(tarball, 'npm pack wrote no rlhf-ts-*.tgz');

  const app = join(TMP, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  run(npm, ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', join(TMP, tarball!)], app);

  // The README's program, as a user would write it, against the installed declarations.
  copyFileSync(join(ROOT, 'examples', 'reward-dpo-ppo.ts'), join(app, 'main.ts'));
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  run(
    process.execPath,
    [
      tsc,
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--target',
      'es2022',
      '--strict',
      '--skipLibCheck',
      '--typeRoots',
      join(ROOT, 'node_modules', '@types'),
      '--types',
      'node',
      '--outDir',
      app,
      join(app, 'main.ts'),
    ],
    app,
  );
  const lines = run(process.execPath, [join(app, 'main.js'), join(TMP, 'work')], app)
    .trim()
    .split('\n');
  assert.equal(lines.length, 3, lines.join('\n'));
  assert.match(lines[2]!, /^PPO: 2 steps, reward -?\d\.\d{3} → -?\d\.\d{3}, policy in /);

  const info = JSON.parse(execFileSync(join(app, 'node_modules', '.bin', 'rlhf'), ['info', '--json'], { cwd: app, encoding: 'utf8' })) as Record<
    string,
    unknown
  >;
  assert.ok(info && typeof info === 'object');
});
