/**
 * The admin view's "reward model on the labels so far": `rlhf train rm` runs as a child process (so the
 * server keeps answering annotators while it trains) on the project read directly
 * (`data.path: app:FILE.sqlite#project`, pairs weighted by annotator reliability, strength as margin), and
 * its held-out accuracy is kept in the database with the number of labels it saw. One run per project at
 * a time.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../models/hub.js';
import { type FeedbackStore, StoreError } from '../feedback/store.js';

/** The last reward-model check of a project, as the admin view shows it. */
export interface RewardCheck {
  state: 'running' | 'done' | 'failed';
  /** Labels in the project when the run started. */
  labels: number;
  startedAt: string;
  accuracy?: number;
  heldOutPairs?: number;
  error?: string;
}

const key = (project: string) => `reward-check:${project}`;

/** The project's last reward-model check, or null before any. */
export function rewardCheck(store: FeedbackStore, project: string): RewardCheck | null {
  return store.getMeta<RewardCheck>(key(project));
}

function save(store: FeedbackStore, project: string, c: RewardCheck): void {
  store.setMeta(key(project), c);
}

/**
 * Starts a reward-model run on a pairwise project's labels (`set`: extra `--set` overrides, e.g. a smaller
 * model for tests); resolves when it has finished, with the stored check. Refused while one runs.
 */
export function startRewardCheck(store: FeedbackStore, project: string, set: readonly string[] = []): Promise<RewardCheck> {
  const p = store.project(project);
  if (p.task !== 'pairwise') throw new StoreError(400, `a reward-model check needs a pairwise project; '${project}' is ${p.task}`);
  if (rewardCheck(store, project)?.state === 'running') throw new StoreError(409, `a reward-model check of '${project}' is running`);
  const started: RewardCheck = { state: 'running', labels: store.progress(project).labels, startedAt: new Date().toISOString() };
  save(store, project, started);
  const out = mkdtempSync(join(tmpdir(), 'rlhf-reward-check-'));
  const args = [join(packageRoot(), 'bin', 'rlhf.js'), 'train', 'rm', '--json', '--set', `data.path=app:${store.path}#${project}`, '--set', `out=${out}`,
    '--set', 'loss.recordWeights=true', '--set', 'loss.recordMargins=true', '--set', 'data.skipInvalid=true', ...set.flatMap((s) => ['--set', s])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => {
    child.on('close', (code) => {
      let result: RewardCheck;
      try {
        if (code !== 0) throw new Error(stderr.trim().split('\n').at(-1) ?? `exit ${code}`);
        const s = JSON.parse(stdout) as { eval?: { accuracy: number; n: number } | null };
        if (!s.eval) throw new Error('the run had no held-out pairs to evaluate');
        result = { ...started, state: 'done', accuracy: s.eval.accuracy, heldOutPairs: s.eval.n };
      } catch (e) {
        result = { ...started, state: 'failed', error: (e as Error).message };
      }
      save(store, project, result);
      rmSync(out, { recursive: true, force: true });
      resolve(result);
    });
  });
}

/** Marks checks left 'running' by a server that stopped (a restart) as failed, so new ones can start. */
export function failInterruptedChecks(store: FeedbackStore): void {
  for (const k of store.metaKeys('reward-check:')) {
    const c = store.getMeta<RewardCheck>(k)!;
    if (c.state === 'running') store.setMeta(k, { ...c, state: 'failed', error: 'interrupted by a server restart' });
  }
}
