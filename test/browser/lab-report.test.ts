/**
 * The lab report with every experiment's section (each run at its --quick size, in process, into one lab
 * directory as `rlhf lab <name> --out DIR` does), opened in chromium: every plot drawn (marks ≥ data rows),
 * no script, nothing fetched. Screenshot: test-artifacts/lab-report.png.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { deepMerge, validateConfig, type Schema } from '../../src/config.js';
import { recordOutcome } from '../../src/lab/experiment.js';
import { LAB_EXPERIMENTS } from '../../src/lab/experiments.js';
import { ARTIFACTS, CHROMIUM, openAndMeasure } from './measure.js';

test('the lab report with every experiment draws every plot in chromium', { timeout: 600_000 }, async () => {
  assert.ok(existsSync(CHROMIUM), `chromium not found at ${CHROMIUM}: install it with \`sudo apt-get install -y chromium\``);
  const out = join(ARTIFACTS, 'lab');
  rmSync(out, { recursive: true, force: true });
  const names = Object.keys(LAB_EXPERIMENTS);
  assert.ok(names.length >= 4, `experiments registered: ${names.join(', ')}`);
  let report = '';
  for (const e of Object.values(LAB_EXPERIMENTS)) {
    const cfg = validateConfig({}, deepMerge(e.defaults, e.quick) as object, e.schema as Schema<object>, e.name);
    const dir = join(out, e.name);
    mkdirSync(dir, { recursive: true });
    const outcome = await e.run(cfg, { dir, seed: 0, quick: true, progress: () => {} });
    report = recordOutcome(out, e.name, outcome, { config: cfg, seed: 0 });
  }
  const plots = await openAndMeasure(report, 'lab-report.png');
  assert.ok(plots.length >= names.length, `${plots.length} plots for ${names.length} experiments`);
});
