/**
 * People as iterated RLHF's annotator (`rlhf train online --annotator app`): a round's comparisons become
 * items of the app's project and the round waits until each has its `overlap` labels (given here by two
 * people through the HTTP API, from a served app on another connection, while the round waits), then
 * answers with each item's verdict; asked again for the same round (a restart of the trainer) it adds
 * nothing and answers the same; an interrupted wait rejects, and its items are not added twice on retry.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { FeedbackClient } from '../../src/app/client.js';
import { type RunningServer, startFeedbackServer } from '../../src/app/server.js';
import { appAnnotator } from '../../src/rlhf/iterated/app-annotator.js';

const dir = mkdtempSync(join(tmpdir(), 'rlhf-feedback-online-'));
let server: RunningServer | null = null;
after(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

const COMPARISONS = [0, 1, 2].map((i) => ({ prompt: `Once ${i}`, a: ` good ${i}`, b: ` bad ${i}` }));

test('a round waits for the app, answers by the labels, and resumes without duplicates', async () => {
  const db = join(dir, 'app.sqlite');
  const app = await startFeedbackServer({ db, port: 0 });
  server = app;
  app.store.createProject({ name: 'online', task: 'pairwise', overlap: 2, settings: { goldRate: 0 } });
  const ann = appAnnotator({ db, project: 'online', pollSeconds: 0.05 });
  let answered = false;
  const round = ann.label(COMPARISONS, { round: 1, seed: 5 }).then((r) => ((answered = true), r));

  // Two people label while the round waits: both prefer the good one on items 0 and 2; on item 1 one
  // prefers bad by 3 and the other good by 1 (sum −2: bad wins).
  for (const [who, pref] of [['x', [2, 2, 2]], ['y', [1, -3, 1]]] as const) {
    const c: FeedbackClient = new FeedbackClient(app.url);
    await c.redeem(app.store.createInvite('annotator'), who);
    for (let n = await c.next('online'); n.kind === 'item'; n = await c.next('online')) {
      assert.equal(answered, false, 'the round waits for every label');
      const i = Number(/Once (\d)/.exec(n.assignment.promptHtml)![1]);
      const goodLeft = n.assignment.responses[0]!.text.includes('good');
      assert.equal((await c.label(n.assignment.id, { strength: goodLeft ? -pref[i]! : pref[i]! })).status, 201);
    }
  }
  const labels = await round;
  assert.deepEqual(labels.map((l) => l.chosen), [' good 0', ' bad 1', ' good 2']);
  assert.ok(labels.every((l) => l.annotator === 'app'));

  // A restart asks for round 1 again: the same answer at once, no new items.
  assert.deepEqual(await ann.label(COMPARISONS, { round: 1, seed: 5 }), labels);
  assert.equal(app.store.progress('online').items, 3);

  // Round 2 interrupted while waiting; a retry finds its items rather than adding them again.
  const ac = new AbortController();
  const waiting = ann.label(COMPARISONS, { round: 2, seed: 6, signal: ac.signal });
  setTimeout(() => ac.abort(), 200);
  await assert.rejects(waiting, /interrupted while waiting for the app's labels/);
  const ac2 = new AbortController();
  ac2.abort();
  await assert.rejects(ann.label(COMPARISONS, { round: 2, seed: 6, signal: ac2.signal }), /interrupted/);
  assert.equal(app.store.progress('online').items, 6);
});
