/**
 * The feedback store without the web layer: overlap and "nobody labels an item twice", leases that expire
 * and return the item, labels only on one's own assignment, every task type's canonical label (the shown
 * order undone), corrections stored as candidates, gold scoring and automatic pausing, and bad input — an
 * unknown task type, a malformed import file (file:line named), a label for an item not assigned to you —
 * refused with nothing stored. Then the exports the trainers read.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { exportRows, importItems } from '../../src/feedback/io.js';
import { agreement, behaviour } from '../../src/feedback/quality.js';
import { FeedbackStore, StoreError } from '../../src/feedback/store.js';

const dir = mkdtempSync(join(tmpdir(), 'rlhf-feedback-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function freshStore(name: string): { store: FeedbackStore; clock: { t: number } } {
  const clock = { t: 1_000_000 };
  return { store: new FeedbackStore(join(dir, `${name}.sqlite`), { now: () => clock.t }), clock };
}

function people(store: FeedbackStore, n: number): number[] {
  return Array.from({ length: n }, (_, i) => store.redeemInvite(store.createInvite('annotator'), `ann${i}`, null).id);
}

function pairFile(name: string, lines: string[]): string {
  const f = join(dir, name);
  writeFileSync(f, lines.join('\n') + '\n');
  return f;
}

const count = (s: FeedbackStore, table: string): number => (s.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;

test('overlap, no double labels, leases that expire, labels only on your own item', async () => {
  const { store, clock } = freshStore('queue');
  store.createProject({ name: 'p', task: 'pairwise', overlap: 2, settings: { leaseSeconds: 60, goldRate: 0 } });
  await importItems(store, 'p', pairFile('two.jsonl', ['{"prompt": "a", "responses": ["x", "yy"]}', '{"prompt": "b", "responses": ["u", "vv"]}']));
  const [a, b, c] = people(store, 3);
  const first = store.next('p', a!);
  assert.equal(first.kind, 'item');
  if (first.kind !== 'item') return;
  assert.deepEqual(store.next('p', a!), first, 'the item held is given again until answered');
  // b may not answer a's assignment: 403, nothing stored.
  assert.throws(() => store.submitLabel(first.assignment.id, b!, { strength: 1 }), (e: unknown) => e instanceof StoreError && e.status === 403 && /not assigned to you/.test(e.message));
  assert.equal(count(store, 'labels'), 0);
  // An answer that does not fit: 400 naming the field, nothing stored.
  assert.throws(() => store.submitLabel(first.assignment.id, a!, { strength: 9 }), /field 'strength'/);
  assert.equal(count(store, 'labels'), 0);
  store.submitLabel(first.assignment.id, a!, { strength: -2, critique: 'left is clearer' });
  assert.throws(() => store.submitLabel(first.assignment.id, a!, { strength: 1 }), (e: unknown) => e instanceof StoreError && e.status === 409);
  // a's second item, then nothing: a never sees an item twice.
  const second = store.next('p', a!);
  assert.ok(second.kind === 'item' && second.assignment.itemId !== first.assignment.itemId);
  store.submitLabel(second.assignment.id, a!, { strength: 0 });
  assert.deepEqual(store.next('p', a!), { kind: 'done' });
  // b leases one item and lets the lease expire: the item goes back to the queue, b's late answer is refused.
  const bItem = store.next('p', b!);
  assert.equal(bItem.kind, 'item');
  if (bItem.kind !== 'item') return;
  clock.t += 61_000;
  assert.throws(() => store.submitLabel(bItem.assignment.id, b!, { strength: 1 }), (e: unknown) => e instanceof StoreError && e.status === 410);
  // c takes both items (overlap 2: a plus c), then everything is complete.
  for (let i = 0; i < 2; i++) {
    const n = store.next('p', c!);
    assert.equal(n.kind, 'item');
    if (n.kind === 'item') store.submitLabel(n.assignment.id, c!, { strength: 1 });
  }
  assert.deepEqual(store.next('p', b!), { kind: 'done' }, 'both items have their two labels');
  assert.deepEqual(store.progress('p'), { items: 2, goldItems: 0, labels: 4, complete: 2, leased: 0 });
  // The canonical margin undoes the shown order: strength −2 means "left better".
  const la = store.labels('p', { annotatorId: a! })[0]!;
  assert.equal((la.label as { margin: number }).margin, la.shown[0] === 0 ? 2 : -2);
  assert.equal(la.critique, 'left is clearer');
  store.close();
});

test('bad input: unknown task type, malformed import file, nothing stored', async () => {
  const { store } = freshStore('bad');
  assert.throws(() => store.createProject({ name: 'q', task: 'poll' }), /unknown task type 'poll' \(known: pairwise, ranking, rating, correction, critique, spans\)/);
  assert.equal(count(store, 'projects'), 0);
  store.createProject({ name: 'q', task: 'pairwise' });
  const bad = pairFile('bad.jsonl', ['{"prompt": "a", "responses": ["x", "y"]}', '', '{"prompt": "b", "responses": ["x", 3]}']);
  await assert.rejects(importItems(store, 'q', bad), (e: Error) => e.message === `${bad}:3: field 'responses[1]': expected a string or {text, model?, sampling?, seed?}`);
  const three = pairFile('three.jsonl', ['{"prompt": "a", "responses": ["x", "y", "z"]}']);
  await assert.rejects(importItems(store, 'q', three), new RegExp(`${three}:1: a pairwise item has 2 candidate\\(s\\), got 3`));
  const notJson = pairFile('notjson.jsonl', ['{"prompt": "a", "responses": ["x", "y"]}', '{"prompt": "b",']);
  await assert.rejects(importItems(store, 'q', notJson), new RegExp(`${notJson}:2: invalid JSON`));
  assert.equal(count(store, 'items') + count(store, 'prompts') + count(store, 'candidates'), 0, 'a failed import stores nothing');
  store.close();
});

test('every task type: canonical labels, corrections as candidates, gold scoring and pausing, exports', async () => {
  const { store } = freshStore('tasks');
  const [a] = people(store, 1);
  const answer: Record<string, (shown: number[]) => unknown> = {
    ranking: (shown) => ({ ranks: shown.map((i) => [1, 2, 2][i]) }),
    rating: () => ({ scores: { helpful: 4, harmless: 5, fluent: 3 }, thumb: 'up' }),
    correction: () => ({ text: 'a better story' }),
    critique: () => ({ text: 'too short' }),
    spans: () => ({ spans: [{ start: 2, end: 4, polarity: -1 }, { start: 0, end: 1, polarity: 1 }] }),
  };
  for (const [task, make] of Object.entries(answer)) {
    store.createProject({ name: task, task, overlap: 1 });
    const k = task === 'ranking' ? 3 : 1;
    await importItems(store, task, pairFile(`${task}.jsonl`, [JSON.stringify({ prompt: 'p', responses: ['r0 text', 'r1', 'r2'].slice(0, k) })]));
    const n = store.next(task, a!);
    assert.equal(n.kind, 'item');
    if (n.kind !== 'item') continue;
    const shown = store.labels(task).length === 0 ? (store.db.prepare('SELECT shown FROM assignments WHERE id = ?').get(n.assignment.id) as { shown: string }).shown : '[]';
    store.submitLabel(n.assignment.id, a!, make(JSON.parse(shown)));
  }
  assert.deepEqual(store.labels('ranking')[0]!.label, { ranks: [1, 2, 2] }, 'ranks back in candidate order');
  assert.deepEqual(store.labels('spans')[0]!.label, { spans: [{ start: 0, end: 1, polarity: 1 }, { start: 2, end: 4, polarity: -1 }] });
  assert.equal((store.db.prepare("SELECT COUNT(*) AS n FROM candidates WHERE origin = 'correction' AND parent_id IS NOT NULL").get() as { n: number }).n, 1);
  assert.deepEqual(exportRows(store, 'ranking', 'trl').map((r) => [r.chosen, r.rejected]), [['r0 text', 'r1'], ['r0 text', 'r2']], 'implied pairs, the tie left out');
  assert.deepEqual(exportRows(store, 'correction', 'trl').map((r) => [r.chosen, r.rejected]), [['a better story', 'r0 text']]);
  assert.deepEqual(exportRows(store, 'rating', 'kto').map((r) => r.label), [true]);
  assert.deepEqual(exportRows(store, 'spans', 'spans').map((r) => [r.response, r.spans]), [['r0 text', [{ start: 0, end: 1, polarity: 1 }, { start: 2, end: 4, polarity: -1 }]]]);
  assert.deepEqual(exportRows(store, 'rating', 'rating', { axis: 'harmless' }).map((r) => [r.score, r.scale]), [[5, [1, 5]]]);
  assert.equal(exportRows(store, 'critique', 'raw')[0]!.label && (exportRows(store, 'critique', 'raw')[0]!.label as { text: string }).text, 'too short');

  // Gold: an annotator who gets the gold answers wrong is paused after minGold of them.
  store.createProject({ name: 'g', task: 'pairwise', overlap: 2, settings: { goldRate: 1, minGold: 3, pauseBelow: 0.6 } });
  await importItems(store, 'g', pairFile('gold.jsonl', Array.from({ length: 4 }, (_, i) => JSON.stringify({ prompt: `g${i}`, responses: ['good', 'bad'], gold: { better: 0 } }))));
  let result: { paused: boolean } = { paused: false };
  for (let i = 0; i < 3; i++) {
    const n = store.next('g', a!);
    assert.equal(n.kind, 'item');
    if (n.kind !== 'item') break;
    const goodLeft = n.assignment.shownTexts[0] === 'good';
    result = store.submitLabel(n.assignment.id, a!, { strength: goodLeft ? 2 : -2 }); // always the bad one
  }
  assert.equal(result.paused, true);
  assert.deepEqual(store.next('g', a!), { kind: 'paused' });
  const [b] = behaviour(store.labels('g'), () => [4, 3]);
  assert.equal(b!.goldAccuracy, 0);
  assert.equal(b!.weight, 1 / 5);
  store.close();
});

test('agreement over stored labels: two annotators who always agree give κ = α = 1', async () => {
  const { store } = freshStore('agree');
  store.createProject({ name: 'p', task: 'pairwise', overlap: 2, settings: { goldRate: 0 } });
  await importItems(store, 'p', pairFile('agree.jsonl', Array.from({ length: 6 }, (_, i) => JSON.stringify({ prompt: `q${i}`, responses: [`long answer ${i}`, `s${i}`] }))));
  const ids = people(store, 2);
  for (const who of ids) {
    for (let n = store.next('p', who); n.kind === 'item'; n = store.next('p', who)) {
      const i = Number(n.assignment.prompt.slice(1));
      const want = i % 3 === 0 ? 0 : i % 3 === 1 ? 2 : -1; // canonical margin
      const strength = n.assignment.shownTexts[0]!.startsWith('long') ? -want : want;
      store.submitLabel(n.assignment.id, who, { strength });
    }
  }
  const ag = agreement(store.labels('p'), 2);
  assert.equal(ag.fleiss, 1);
  assert.equal(ag.alphaOrdinal, 1);
  assert.deepEqual(ag.cohen.map((c) => [c.kappa, c.items]), [[1, 6]]);
  store.close();
});
