/**
 * The feedback app over HTTP (a real listening server on 127.0.0.1, port chosen by the OS): an annotator
 * gets 403 on every admin route and on another's labels and assignments; a write without the CSRF token is
 * refused; the rate limit answers 429; an expired lease returns the item to the queue; bad input (unknown
 * task type, a malformed upload with its line named, a label for an item not assigned to you) is refused
 * with nothing stored; model text comes back as sanitised markdown.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { FeedbackClient } from '../../src/app/client.js';
import { createFeedbackServer, hashPassword, renderMarkdown, verifyPassword } from '../../src/app/server.js';
import { FeedbackStore } from '../../src/feedback/store.js';

const dir = mkdtempSync(join(tmpdir(), 'rlhf-feedback-server-'));
const servers: FastifyInstance[] = [];
after(async () => {
  for (const s of servers) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

async function serve(name: string, opts: { rateLimit?: number } = {}): Promise<{ store: FeedbackStore; base: string; clock: { t: number } }> {
  const clock = { t: Date.now() };
  const store = new FeedbackStore(join(dir, `${name}.sqlite`), { now: () => clock.t });
  const app = await createFeedbackServer(store, opts);
  app.addHook('onClose', async () => store.close());
  servers.push(app);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address() as { port: number };
  return { store, base: `http://127.0.0.1:${addr.port}`, clock };
}

async function join_(base: string, store: FeedbackStore, role: 'admin' | 'annotator', name: string): Promise<FeedbackClient> {
  const c = new FeedbackClient(base);
  await c.redeem(store.createInvite(role), name);
  return c;
}

const labelCount = (s: FeedbackStore): number => (s.db.prepare('SELECT COUNT(*) AS n FROM labels').get() as { n: number }).n;
const ITEMS = ['{"prompt": "Say hi", "responses": ["hi", "hello there"]}', '{"prompt": "Count", "responses": ["1 2 3", "one"]}'].join('\n');

test('roles, ownership, CSRF and bad input over HTTP', async () => {
  const { store, base } = await serve('roles');
  const admin = await join_(base, store, 'admin', 'root');
  const a = await join_(base, store, 'annotator', 'alice');
  const b = await join_(base, store, 'annotator', 'bob');
  // Unknown task type: 400 naming the known ones, nothing stored.
  const bad = await admin.request('POST', '/api/admin/projects', { name: 'p', task: 'poll' });
  assert.equal(bad.status, 400);
  assert.match((bad.data as { error: string }).error, /unknown task type 'poll'/);
  assert.equal((await admin.request('POST', '/api/admin/projects', { name: 'p', task: 'pairwise', overlap: 2, settings: { goldRate: 0 } })).status, 201);
  // A malformed upload: its line named, nothing stored.
  const up = await admin.request('POST', '/api/admin/projects/p/items', { jsonl: '{"prompt": "a", "responses": ["x", "y"]}\n{"prompt": 5, "responses": ["x", "y"]}', name: 'batch.jsonl' });
  assert.equal(up.status, 400);
  assert.equal((up.data as { error: string }).error, "batch.jsonl:2: field 'prompt': expected a non-empty string");
  assert.equal((store.db.prepare('SELECT COUNT(*) AS n FROM items').get() as { n: number }).n, 0);
  assert.deepEqual(await admin.ok('POST', '/api/admin/projects/p/items', { jsonl: ITEMS }), { items: 2, gold: 0 });

  // Every admin route is 403 for an annotator (reads and writes alike).
  for (const [method, path] of [['GET', '/api/admin/projects/p/stats'], ['GET', '/api/admin/projects/p/export?format=raw'], ['POST', '/api/admin/invites'],
    ['POST', '/api/admin/projects'], ['POST', '/api/admin/projects/p/items'], ['POST', '/api/admin/projects/p/guidelines'], ['POST', '/api/admin/annotators/1/resume']] as const) {
    assert.equal((await a.request(method, path, { role: 'admin', jsonl: ITEMS, name: 'x', task: 'pairwise', text: 't' })).status, 403, `${method} ${path}`);
  }
  // A label for an item not assigned to you: 403, nothing stored.
  const item = await a.next('p');
  assert.equal(item.kind, 'item');
  if (item.kind !== 'item') return;
  const stolen = await b.label(item.assignment.id, { strength: 1 });
  assert.equal(stolen.status, 403);
  assert.match(stolen.data.error!, /not assigned to you/);
  // Without the CSRF token: refused, nothing stored.
  const noCsrf = await a.request('POST', `/api/assignments/${item.assignment.id}/label`, { answer: { strength: 1 } }, { csrf: false });
  assert.equal(noCsrf.status, 403);
  assert.equal(labelCount(store), 0);
  const ok = await a.label(item.assignment.id, { strength: -1, critique: 'shorter is fine' });
  assert.equal(ok.status, 201);
  // Labels: your own (and the admin) only.
  assert.equal((await b.request('GET', `/api/labels/${ok.data.labelId}`)).status, 403);
  assert.equal((await a.request('GET', `/api/labels/${ok.data.labelId}`)).status, 200);
  assert.equal((await admin.request('GET', `/api/labels/${ok.data.labelId}`)).status, 200);
  assert.deepEqual(await b.ok('GET', '/api/projects/p/my-labels'), []);
  // Signed out: 401.
  assert.equal((await new FeedbackClient(base).request('GET', '/api/projects/p/next')).status, 401);
});

test('the rate limit answers 429', async () => {
  const { store, base } = await serve('rate', { rateLimit: 5 });
  const a = await join_(base, store, 'annotator', 'alice');
  const codes: number[] = [];
  for (let i = 0; i < 7; i++) codes.push((await a.request('GET', '/api/me')).status);
  assert.deepEqual(codes.slice(0, 4), [200, 200, 200, 200]);
  assert.equal(codes.at(-1), 429);
});

test('an expired lease returns the item to the queue', async () => {
  const { store, base, clock } = await serve('lease');
  store.createProject({ name: 'p', task: 'pairwise', overlap: 1, settings: { leaseSeconds: 30, goldRate: 0 } });
  store.transaction(() => store.addItem(store.project('p'), 'only one', [{ text: 'x' }, { text: 'y' }]));
  const a = await join_(base, store, 'annotator', 'alice');
  const b = await join_(base, store, 'annotator', 'bob');
  const held = await a.next('p');
  assert.equal(held.kind, 'item');
  assert.deepEqual(await b.next('p'), { kind: 'done' }, 'leased to alice: nothing for bob');
  clock.t += 31_000;
  const again = await b.next('p');
  assert.equal(again.kind, 'item', 'the lease expired: bob gets the item');
  if (held.kind !== 'item' || again.kind !== 'item') return;
  assert.equal((await a.label(held.assignment.id, { strength: 1 })).status, 410);
  assert.equal((await b.label(again.assignment.id, { strength: 1 })).status, 201);
  assert.equal(labelCount(store), 1);
});

test('model text is sanitised markdown; passwords are scrypt hashes', async () => {
  const evil = '# Title\n<script>alert(1)</script> <img src=x onerror="alert(2)"> [click](javascript:alert(3)) ![i](http://127.0.0.1:9/x.png) **bold**';
  const html = renderMarkdown(evil);
  // No element but markdown's own, no event-handler attribute, no javascript: link; the image became a link (nothing fetched).
  assert.doesNotMatch(html, /<script|<img|href="javascript:|<[a-z][^>]*\son\w+=/i);
  assert.match(html, /<h1>Title<\/h1>/);
  assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  assert.match(html, /<strong>bold<\/strong>/);
  const h = await hashPassword('correct horse');
  assert.match(h, /^scrypt\$32768\$8\$1\$/);
  assert.equal(await verifyPassword('correct horse', h), true);
  assert.equal(await verifyPassword('wrong horse', h), false);
});
