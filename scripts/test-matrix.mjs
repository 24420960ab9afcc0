#!/usr/bin/env node
// `npm run test:matrix`: every "learning works" test (files tagged @learning) for each seed × kernel path ×
// thread count, and the demo's claim (the gold peaks at an interior step and loses ≥ 10% of its rise while
// the proxy keeps rising) on each kernel path × thread count at the default seed and on more seeds.
// A different processor is, to a short RL run, just another seed: a test that passes on one seed only is a
// test that fails for the next person. Not part of CI (about half an hour on 2 cores); its table goes in
// the closing note of the issue that changes what it measures.
//
//   node scripts/test-matrix.mjs [--seeds 0,1,2] [--demo-seeds 1,2,3,4] [--no-tests] [--no-demo] [--out DIR] [--jobs N]
//
// --jobs N runs N combinations at once (default 1): on a machine with more cores than a combination's threads,
// or a shared one where the matrix should not wait for its turn; each combination is its own process tree.
//
// Writes DIR/matrix.json (default test-artifacts/matrix) and prints a Markdown summary on stdout; a rerun
// with the same DIR keeps the combinations already done.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cpus } from 'node:os';

const root = resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const list = (s) => s.split(',').filter(Boolean).map(Number);
const seeds = list(opt('--seeds', '0,1,2'));
const demoSeeds = list(opt('--demo-seeds', '1,2,3,4'));
const outDir = resolve(opt('--out', join(root, 'test-artifacts', 'matrix')));
const jobs = Math.max(1, Number(opt('--jobs', '1')) || 1);
mkdirSync(outDir, { recursive: true });

const KERNELS = { default: {}, scalar: { RLHF_SCALAR_KERNELS: '1' } };
const THREADS = [1, 2];
const log = (m) => process.stderr.write(`[matrix] ${m}\n`);
const cpu = /^model name\s*:\s*(.+)$/m.exec(existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '')?.[1] ?? cpus()[0]?.model ?? 'unknown';

/** Runs a node child to its end; its stdout and stderr apart (async, so that --jobs can run several). */
function run(args, env) {
  return new Promise((done) => {
    const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => { stdout += b; });
    child.stderr.on('data', (b) => { stderr += b; });
    child.on('close', (status) => done({ status, stdout, stderr }));
  });
}

async function runTests(seed, kernels, threads) {
  const report = join(outDir, `margins-s${seed}-${kernels}-t${threads}.jsonl`);
  rmSync(report, { force: true });
  const env = { ...process.env, ...KERNELS[kernels], RLHF_TEST_SEED: String(seed), RLHF_TEST_THREADS: String(threads), RLHF_TEST_REPORT: report };
  const t0 = Date.now();
  const { status, stdout, stderr } = await run([join(root, 'scripts', 'test.mjs'), '--learning'], env);
  const out = `${stdout}${stderr}`;
  const count = (k) => Number(new RegExp(`^# ${k} (\\d+)$`, 'm').exec(out)?.[1] ?? NaN);
  const failures = [...out.matchAll(/^\s*not ok \d+ - (.+)$/gm)].map((m) => m[1]);
  const rows = existsSync(report) ? readFileSync(report, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
  const margins = rows.filter((r) => r.kind !== 'bound'); // test/env.ts reportMargin; reportBound rows are the numeric tests'
  return { seed, kernels, threads, status, pass: count('pass'), fail: count('fail'), seconds: (Date.now() - t0) / 1000, failures, margins };
}

/** Runs `work(item)` over `items`, `jobs` at a time. */
async function pool(items, work) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(jobs, items.length) }, worker));
}

async function runDemo(seed, kernels, threads) {
  const dir = join(outDir, `demo-s${seed}-${kernels}-t${threads}`);
  rmSync(dir, { recursive: true, force: true });
  const env = { ...process.env, ...KERNELS[kernels] };
  const t0 = Date.now();
  const r = await run([join(root, 'bin', 'rlhf.js'), 'demo', '--json', '--seed', String(seed), '--out', dir, '--set', `threads=${threads}`], env);
  const seconds = (Date.now() - t0) / 1000;
  if (r.status !== 0) return { seed, kernels, threads, seconds, error: r.stderr.trim().split('\n').at(-1) };
  const s = JSON.parse(r.stdout);
  // The RL phase's evaluations on fresh samples: the proxy's reward and the gold (rl/metrics.jsonl).
  const rl = readFileSync(join(dir, 'rl', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    .filter((x) => x.eval).map((x) => ({ step: x.step, gold: x.eval.gold, proxy: x.eval.reward }));
  const first = rl[0];
  const last = rl.at(-1);
  const peak = rl.reduce((b, x) => (x.gold > b.gold ? x : b), first);
  const rise = peak.gold - first.gold;
  const lost = rise > 0 ? (peak.gold - last.gold) / rise : 0;
  const proxyRising = last.proxy > peak.proxy;
  const claim = peak !== first && peak !== last && lost >= 0.1 && proxyRising;
  return { seed, kernels, threads, seconds, gold: { start: first.gold, peak: peak.gold, peakStep: peak.step, end: last.gold, lost }, proxy: { atPeak: peak.proxy, end: last.proxy }, steps: last.step, claim, summary: s };
}

// A rerun into the same --out keeps the combinations already done (a long matrix survives an interruption).
const previous = existsSync(join(outDir, 'matrix.json')) ? JSON.parse(readFileSync(join(outDir, 'matrix.json'), 'utf8')) : null;
const result = { cpu, started: new Date().toISOString(), tests: previous?.tests ?? [], demo: previous?.demo ?? [] };
const save = () => writeFileSync(join(outDir, 'matrix.json'), JSON.stringify(result, null, 2) + '\n');
const done = (list, seed, kernels, threads) => list.some((r) => r.seed === seed && r.kernels === kernels && r.threads === threads);
// The settings CI does not cover first (default kernels, 1 thread; then the scalar path on 2), each over every seed.
const SETTINGS = [['default', 1], ['scalar', 2], ['default', 2], ['scalar', 1]];
if (!args.includes('--no-tests')) {
  const todo = SETTINGS.flatMap(([kernels, threads]) => seeds.map((seed) => [seed, kernels, threads])).filter(([s, k, t]) => !done(result.tests, s, k, t));
  await pool(todo, async ([seed, kernels, threads]) => {
    log(`tests: seed ${seed}, ${kernels} kernels, ${threads} thread(s)`);
    const r = await runTests(seed, kernels, threads);
    log(`  seed ${seed}, ${kernels}, ${threads} thread(s): ${r.pass} passed, ${r.fail} failed in ${r.seconds.toFixed(0)} s${r.failures.length ? ': ' + r.failures.join('; ') : ''}`);
    result.tests.push(r);
    save();
  });
}
if (!args.includes('--no-demo')) {
  const runs = [...Object.keys(KERNELS).flatMap((k) => THREADS.map((t) => [0, k, t])), ...demoSeeds.map((s) => [s, 'default', 1])];
  await pool(runs.filter(([s, k, t]) => !done(result.demo, s, k, t)), async ([seed, kernels, threads]) => {
    log(`demo: seed ${seed}, ${kernels} kernels, ${threads} thread(s)`);
    const d = await runDemo(seed, kernels, threads);
    log(d.error ? `  seed ${seed}, ${kernels}, ${threads}: failed: ${d.error}` : `  seed ${seed}, ${kernels}, ${threads}: gold ${d.gold.start.toFixed(3)} → peak ${d.gold.peak.toFixed(3)} at step ${d.gold.peakStep} → ${d.gold.end.toFixed(3)} (${(100 * d.gold.lost).toFixed(0)}% lost), claim ${d.claim}, ${d.seconds.toFixed(0)} s`);
    result.demo.push(d);
    save();
  });
}

// ---- the summary: one row per combination, and the margins per test over every combination
const lines = [`CPU: ${cpu}`, ''];
if (result.tests.length) {
  lines.push('| seed | kernels | threads | passed | failed | seconds |', '|---|---|---|---|---|---|');
  for (const r of result.tests) lines.push(`| ${r.seed} | ${r.kernels} | ${r.threads} | ${r.pass} | ${r.fail} | ${r.seconds.toFixed(0)} |`);
  const byTest = new Map();
  for (const r of result.tests) for (const m of r.margins) {
    const k = `${m.test} (${m.metric}, bar ${m.bar})`;
    if (!byTest.has(k)) byTest.set(k, []);
    byTest.get(k).push(m.value);
  }
  lines.push('', '| test (metric, bar) | min | median | max | runs |', '|---|---|---|---|---|');
  for (const [k, v] of byTest) {
    const s = [...v].sort((a, b) => a - b);
    lines.push(`| ${k} | ${s[0].toFixed(3)} | ${s[s.length >> 1].toFixed(3)} | ${s.at(-1).toFixed(3)} | ${s.length} |`);
  }
}
if (result.demo.length) {
  lines.push('', '| demo seed | kernels | threads | gold start → peak (step) → end | lost | proxy at peak → end | claim | seconds |', '|---|---|---|---|---|---|---|---|');
  for (const d of result.demo) {
    lines.push(d.error ? `| ${d.seed} | ${d.kernels} | ${d.threads} | failed: ${d.error} | | | | ${d.seconds.toFixed(0)} |`
      : `| ${d.seed} | ${d.kernels} | ${d.threads} | ${d.gold.start.toFixed(3)} → ${d.gold.peak.toFixed(3)} (${d.gold.peakStep}) → ${d.gold.end.toFixed(3)} | ${(100 * d.gold.lost).toFixed(0)}% | ${d.proxy.atPeak.toFixed(3)} → ${d.proxy.end.toFixed(3)} | ${d.claim} | ${d.seconds.toFixed(0)} |`);
  }
}
const md = lines.join('\n') + '\n';
writeFileSync(join(outDir, 'matrix.md'), md);
process.stdout.write(md);
const failed = result.tests.some((r) => r.status !== 0) || result.demo.some((d) => d.error || !d.claim);
process.exit(failed ? 1 : 0);
