/**
 * `kill -9` in the middle of labelling: `rlhf feedback serve` runs as a child process, eight scripted
 * annotators label concurrently over loopback, and the server is killed with SIGKILL once 60 labels are
 * acknowledged (others still in flight). After a restart on the same file every acknowledged label is in
 * the database, SQLite's integrity check passes, and no half-written row exists: every label's assignment
 * is marked done and every done assignment has its label.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { startServer as startFeedbackServer } from '../../bench/serve.js';
import { FeedbackClient } from '../../src/app/client.js';
import { importItems } from '../../src/feedback/io.js';
import { FeedbackStore } from '../../src/feedback/store.js';

const dir = mkdtempSync(join(tmpdir(), 'rlhf-feedback-kill-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Starts the server on a free port; resolves with its URL once it says it is listening. */
async function startServer(db: string): Promise<{ child: ChildProcess; url: string }> {
  const started = startFeedbackServer(db);
  started.then(({ child }) => children.push(child), () => {});
  return started;
}

test('kill -9 while labelling loses no acknowledged label and leaves no half-written row', async () => {
  const db = join(dir, 'app.sqlite');
  const setup = new FeedbackStore(db);
  setup.createProject({ name: 'p', task: 'pairwise', overlap: 8, settings: { goldRate: 0 } });
  const file = join(dir, 'items.jsonl');
  writeFileSync(file, Array.from({ length: 40 }, (_, i) => JSON.stringify({ prompt: `prompt ${i}`, responses: [`a${i}`, `b${i}`] })).join('\n'));
  await importItems(setup, 'p', file);
  const invites = Array.from({ length: 8 }, () => setup.createInvite('annotator'));
  setup.close();

  const { child, url } = await startServer(db);
  const acked: number[] = [];
  let killed = false;
  const annotator = async (i: number): Promise<void> => {
    const c = new FeedbackClient(url);
    await c.redeem(invites[i]!, `ann${i}`);
    try {
      for (let k = 0; k < 40 && !killed; k++) {
        const n = await c.next('p');
        if (n.kind !== 'item') return;
        const r = await c.label(n.assignment.id, { strength: (k % 7) - 3 });
        if (r.status === 201) acked.push(r.data.labelId!);
        if (acked.length >= 60 && !killed) {
          killed = true;
          child.kill('SIGKILL');
        }
      }
    } catch {
      // the connection died with the server: what was acknowledged before is what counts
    }
  };
  await Promise.all(Array.from({ length: 8 }, (_, i) => annotator(i)));
  assert.ok(killed, `the server was killed mid-run (acknowledged ${acked.length})`);
  await new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
  assert.equal(child.signalCode, 'SIGKILL');

  // Restart on the same file: it opens (WAL recovery) and serves.
  const again = await startServer(db);
  assert.equal((await new FeedbackClient(again.url).request('GET', '/api/me')).status, 401);
  again.child.kill('SIGTERM');
  await new Promise((resolve) => again.child.once('exit', resolve));

  const store = new FeedbackStore(db);
  try {
    assert.equal(store.db.pragma('integrity_check', { simple: true }), 'ok');
    const ids = new Set((store.db.prepare('SELECT id FROM labels').all() as { id: number }[]).map((r) => r.id));
    const lost = acked.filter((id) => !ids.has(id));
    assert.deepEqual(lost, [], `acknowledged labels missing after kill -9 (of ${acked.length})`);
    const orphanLabels = store.db.prepare("SELECT COUNT(*) AS n FROM labels l JOIN assignments a ON a.id = l.assignment_id WHERE a.status != 'done'").get() as { n: number };
    const doneWithout = store.db.prepare("SELECT COUNT(*) AS n FROM assignments a WHERE a.status = 'done' AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.assignment_id = a.id)").get() as { n: number };
    assert.deepEqual([orphanLabels.n, doneWithout.n], [0, 0]);
  } finally {
    store.close();
  }
});
