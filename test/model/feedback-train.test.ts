/**
 * Labels from the feedback app into training: a project labelled by a scripted annotator is exported with
 * `rlhf feedback export --format trl`, and the loaders read the same pairs straight from the database
 * (`data.path: app:FILE.sqlite#project`); `rlhf train rm` trains on it (a tiny scratch model, a few steps)
 * and `rlhf train kto` reads the project's thumbs. A missing database or project fails with a one-line
 * reason naming it.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadFeedback } from '../../src/data/load.js';
import { FeedbackStore } from '../../src/feedback/store.js';
import { TEST_THREADS } from '../env.js';
import { rlhf } from './run-cli.js';

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-feedback-train-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

const NAMES = ['Tom', 'Lily', 'Ben', 'Sue', 'Max', 'Mia', 'Sam', 'Ann'];
const GOOD = ['kind', 'happy', 'warm', 'gentle', 'brave', 'calm', 'sweet', 'glad'];
const BAD = ['mean', 'sad', 'cold', 'rude', 'scared', 'angry', 'sour', 'cross'];

/** A database with a pairwise project (48 items) and a rating project (8 items), every item labelled once. */
function labelledDb(): string {
  const db = join(TMP, 'app.sqlite');
  const store = new FeedbackStore(db);
  const pairs = store.createProject({ name: 'stories', task: 'pairwise', overlap: 1, settings: { goldRate: 0 } });
  const ratings = store.createProject({ name: 'thumbs', task: 'rating', overlap: 1, settings: { goldRate: 0 } });
  store.transaction(() => {
    for (let i = 0; i < 48; i++) store.addItem(pairs, `${NAMES[i % 8]} was`, [{ text: ` ${GOOD[(i * 5) % 8]}.` }, { text: ` ${BAD[(i * 7) % 8]}.` }]);
    for (let i = 0; i < 8; i++) store.addItem(ratings, `${NAMES[i]} was`, [{ text: ` ${(i % 2 ? BAD : GOOD)[i]}.` }]);
  });
  const who = store.redeemInvite(store.createInvite('annotator'), 'scripted', null).id;
  for (let n = store.next('stories', who); n.kind === 'item'; n = store.next('stories', who)) {
    const goodLeft = GOOD.some((g) => n.assignment.shownTexts[0]!.includes(g));
    store.submitLabel(n.assignment.id, who, { strength: goodLeft ? -2 : 2 });
  }
  for (let n = store.next('thumbs', who); n.kind === 'item'; n = store.next('thumbs', who)) {
    const good = GOOD.some((g) => n.assignment.shownTexts[0]!.includes(g));
    store.submitLabel(n.assignment.id, who, { scores: { helpful: good ? 5 : 1, harmless: 3, fluent: 3 }, thumb: good ? 'up' : 'down' });
  }
  store.close();
  return db;
}

test('export → train rm, and app: paths read the project directly', async () => {
  const db = labelledDb();
  const out = join(TMP, 'pairs.jsonl');
  const exp = await rlhf(['feedback', 'export', '--db', db, '--project', 'stories', '--format', 'trl', '--out', out, '--json']);
  assert.equal(exp.status, 0, exp.stderr);
  assert.deepEqual(JSON.parse(exp.stdout), { out, format: 'trl', rows: 48 });
  const fromFile = await loadFeedback(out, { format: 'pairwise' });
  const fromApp = await loadFeedback(`app:${db}#stories`, { format: 'pairwise' });
  const strip = (r: { records: unknown[] }) => r.records.map((x) => { const { meta, ...rest } = x as { meta: { annotator?: string } }; return { ...rest, annotator: meta.annotator }; });
  assert.deepEqual(strip(fromApp), strip(fromFile));
  assert.ok(fromApp.records.every((r) => r.kind === 'pair' && GOOD.some((g) => r.chosen.includes(g))), 'every pair prefers the kind word, as labelled');

  const rm = join(TMP, 'rm');
  const train = await rlhf(['train', 'rm', '--json', '--set', `data.path=app:${db}#stories`, '--set', `out=${rm}`, '--set', 'data.maxTokens=64',
    '--set', 'model.init=scratch', '--set', 'model.scratch.hiddenSize=16', '--set', 'model.scratch.layers=1', '--set', 'model.scratch.heads=2',
    '--set', 'model.scratch.intermediateSize=32', '--set', 'model.scratch.maxPositions=64', '--set', 'train.batchSize=8', '--set', 'train.maxSteps=4',
    '--set', 'train.lr=0.01', '--set', 'train.warmupSteps=1', '--set', `train.threads=${TEST_THREADS}`], 240_000);
  assert.equal(train.status, 0, train.stderr);
  const summary = JSON.parse(train.stdout) as { steps: number; eval: { n: number; accuracy: number } };
  assert.equal(summary.steps, 4);
  assert.ok(summary.eval.n > 0 && summary.eval.accuracy >= 0 && summary.eval.accuracy <= 1);
  assert.ok(existsSync(join(rm, 'model')));

  const kto = await loadFeedback(`app:${db}#thumbs`, { format: 'binary' });
  assert.equal(kto.records.length, 8);
  for (const r of kto.records) assert.ok(r.kind === 'binary' && r.label === GOOD.some((g) => r.completion.includes(g)), 'thumbs up exactly on the kind ones');
  const raw = readFileSync(out, 'utf8').split('\n')[0]!;
  assert.match(raw, /"annotator":"scripted","weight":1/);

  const missing = await rlhf(['train', 'rm', '--set', `data.path=app:${join(TMP, 'none.sqlite')}#stories`, '--set', `out=${join(TMP, 'rm2')}`]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /^rlhf: .*none\.sqlite: unable to open database file\n$/);
  const noProject = await rlhf(['feedback', 'export', '--db', db, '--project', 'nope', '--format', 'trl', '--out', join(TMP, 'x.jsonl')]);
  assert.equal(noProject.status, 1);
  assert.match(noProject.stderr, /^rlhf: no project 'nope' \(projects: stories, thumbs\)\n$/);
  assert.equal(existsSync(join(TMP, 'x.jsonl')), false, 'nothing written');
});
