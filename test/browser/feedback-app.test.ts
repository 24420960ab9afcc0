/**
 * The feedback app end to end in Debian's chromium (playwright-core): the admin joins by the first-start
 * invite and creates a pairwise project and imports its items (with gold items) through the admin view;
 * two annotators join by invite and, with the keyboard only, label the same items in every task type
 * (pairwise with strength and a critique, ranking with a tie, Likert ratings with a thumb, a correction, a
 * critique, span highlighting); a third ranks by drag. A model output carrying `<script>`, `<img onerror>` and a `javascript:`
 * link renders inert: no script runs, nothing is fetched from anywhere but the app. The admin view then
 * shows agreement and gold accuracy. Screenshots in test-artifacts/feedback-*.png.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { type RunningServer, startFeedbackServer } from '../../src/app/server.js';
import { ARTIFACTS, CHROMIUM } from './measure.js';

// The page's globals, for the functions run inside it (this file compiles without the DOM library).
declare const document: {
  querySelector(s: string): { dataset: Record<string, string | undefined> } | null;
  querySelectorAll(s: string): { length: number };
  getElementById(id: string): { textContent: string | null } | null;
};
declare const window: Record<string, unknown>;

const dir = mkdtempSync(join(tmpdir(), 'rlhf-feedback-browser-'));
let server: RunningServer | null = null;
let browser: Browser | null = null;
after(async () => {
  await browser?.close();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

const EVIL = 'Fine.\n\n<script>window.__pwned = 1</script> <img src="http://127.0.0.1:9/x.png" onerror="window.__pwned = 2"> [click me](javascript:window.__pwned=3) ![pic](http://127.0.0.1:9/y.png)';

async function waitState(page: Page, previous: string | null): Promise<string> {
  await page.waitForFunction((prev) => {
    const s = document.querySelector('main')?.dataset.state;
    return s !== undefined && s !== prev;
  }, previous);
  return (await page.getAttribute('main', 'data-state'))!;
}

/** One annotator's keys for each task type (the page is showing an item of that type). */
const KEYS: Record<string, (page: Page, who: number) => Promise<void>> = {
  pairwise: async (page, who) => {
    const left = await page.textContent('.response:nth-child(1)');
    const side = left!.includes('good') ? 'ArrowLeft' : 'ArrowRight';
    await page.keyboard.press(side);
    await page.keyboard.press(side);
    if (who === 1) {
      await page.keyboard.press('c');
      await page.keyboard.type('clear and correct');
      await page.keyboard.press('Escape');
    }
  },
  ranking: async (page) => {
    await page.keyboard.press('3');
    await page.keyboard.press('ArrowUp'); // response 3 ties with response 2
  },
  rating: async (page, who) => {
    await page.keyboard.press('4');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press(who === 0 ? '5' : '4');
    await page.keyboard.press('u');
  },
  correction: async (page) => {
    await page.keyboard.press('End');
    await page.keyboard.type(' (fixed)');
  },
  critique: async (page) => {
    await page.keyboard.type('too vague');
  },
  spans: async (page) => {
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('Shift+ArrowRight');
    await page.keyboard.press('b');
  },
};

async function labelProject(page: Page, digit: string, task: string, who: number, shots: Set<string>): Promise<number> {
  let s = await page.getAttribute('main', 'data-state');
  await page.keyboard.press(digit);
  s = await waitState(page, s);
  let n = 0;
  while (s.startsWith('item-')) {
    if (who === 0 && !shots.has(task)) {
      shots.add(task);
      await page.screenshot({ path: join(ARTIFACTS, `feedback-${task}.png`), fullPage: true });
    }
    await KEYS[task]!(page, who);
    await page.keyboard.press('Control+Enter');
    s = await waitState(page, s);
    n++;
  }
  assert.equal(s, 'done', `${task}: ended on '${s}' (${await page.textContent('#status')})`);
  await page.keyboard.press('h');
  await waitState(page, s);
  return n;
}

test('admin and two keyboard-only annotators through every task type; inert model HTML; admin view', async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await startFeedbackServer({ db: join(dir, 'app.sqlite'), port: 0 });
  const { url, store } = server;
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  const requests: string[] = [];
  const errors: string[] = [];
  const open = async (path: string): Promise<Page> => {
    const context = await browser!.newContext({ viewport: { width: 1100, height: 900 } });
    const page = await context.newPage();
    page.on('request', (r) => requests.push(r.url()));
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    await page.goto(url + path);
    return page;
  };

  // The admin: first-start invite, then a project created and filled through the admin view.
  const admin = await open(server.adminInvite!);
  await admin.waitForSelector('main[data-state="signin"]');
  await admin.keyboard.type('root');
  await admin.keyboard.press('Enter');
  await admin.waitForSelector('main[data-state="home"]');
  await admin.keyboard.press('a');
  await admin.waitForSelector('main[data-state="admin"]');
  await admin.fill('input[name="name"]', 'pairs');
  await admin.fill('input[name="task"]', 'pairwise');
  await admin.fill('input[name="overlap"]', '2');
  await admin.fill('input[name="guidelines"]', 'Prefer the helpful, correct answer.');
  await admin.click('button[type="submit"]');
  await admin.waitForSelector('main[data-state="home"]');
  await admin.keyboard.press('a');
  await admin.waitForSelector('section[data-project="pairs"]');
  const items = [
    ...[0, 1, 2].map((i) => ({ prompt: `Question ${i}?`, responses: i === 1 ? [`a poor answer ${i}`, `a good answer ${i}`] : [`a good answer ${i}`, `a poor answer ${i}`] })),
    ...[0, 1].map((i) => ({ prompt: `Gold ${i}?`, responses: [`good: the known answer ${i}`, `wrong ${i}`], gold: { better: 0 } })),
  ];
  await admin.fill('section[data-project="pairs"] textarea', items.map((x) => JSON.stringify(x)).join('\n'));
  await admin.click('section[data-project="pairs"] button.import');
  await admin.waitForFunction(() => document.getElementById('status')?.textContent?.startsWith('imported 5 items'));

  // The other task types (made through the library: the admin view's form is exercised above).
  const other: [string, string, string[][]][] = [
    ['ranking', 'rank', [['first', 'second', 'third'], ['x', 'y', 'z']]],
    ['rating', 'rate', [[EVIL], ['A **bold** claim.']]],
    ['correction', 'fix', [['The cat sat on teh mat.']]],
    ['critique', 'crit', [['An answer to criticise.']]],
    ['spans', 'span', [['One two three four five.']]],
  ];
  for (const [task, name, lists] of other) {
    const p = store.createProject({ name, task, overlap: 2, settings: { goldRate: 0 } });
    store.transaction(() => lists.forEach((texts, i) => store.addItem(p, `${name} prompt ${i}`, texts.map((text) => ({ text })))));
  }

  // Two annotators, keyboard only.
  const counts: Record<string, number[]> = {};
  for (const who of [0, 1]) {
    const page = await open(`/?invite=${store.createInvite('annotator')}`);
    await page.waitForSelector('main[data-state="signin"]');
    await page.keyboard.type(`annotator${who}`);
    await page.keyboard.press('Enter');
    await page.waitForSelector('main[data-state="home"]');
    const shots = new Set<string>();
    for (const [digit, task] of [['1', 'pairwise'], ['2', 'ranking'], ['3', 'rating'], ['4', 'correction'], ['5', 'critique'], ['6', 'spans']] as const) {
      if (task === 'rating') {
        // The hostile output: inert (no script ran, no image, no javascript: link).
        await page.keyboard.press(digit);
        await page.waitForSelector('main[data-state^="item-"]');
        const probe = await page.evaluate(() => ({
          pwned: window.__pwned ?? null,
          scripts: document.querySelectorAll('main script').length,
          images: document.querySelectorAll('main img').length,
          jsLinks: document.querySelectorAll('a[href^="javascript"]').length,
        }));
        assert.deepEqual(probe, { pwned: null, scripts: 0, images: 0, jsLinks: 0 });
        await page.keyboard.press('h');
        await page.waitForSelector('main[data-state="home"]');
      }
      (counts[task] ??= []).push(await labelProject(page, digit, task, who, shots));
    }
  }
  assert.deepEqual(counts, { pairwise: [5, 5], ranking: [2, 2], rating: [2, 2], correction: [1, 1], critique: [1, 1], spans: [1, 1] });

  // What was stored: critiques, ties, thumbs, corrections, spans.
  const pairs = store.labels('pairs');
  assert.equal(pairs.filter((l) => l.critique === 'clear and correct').length, 5);
  assert.ok(store.labels('rank').every((l) => new Set((l.label as { ranks: number[] }).ranks).size < 3), 'each ranking has a tie');
  assert.ok(store.labels('rate').every((l) => (l.label as { thumb: string }).thumb === 'up'));
  assert.deepEqual(store.labels('fix').map((l) => (l.label as { text: string }).text), ['The cat sat on teh mat. (fixed)', 'The cat sat on teh mat. (fixed)']);
  assert.deepEqual(store.labels('span').map((l) => l.label), [0, 1].map(() => ({ spans: [{ start: 4, end: 13, polarity: -1 }] })));

  // Ranking by drag (the mouse way): response 3 dropped onto response 1 takes its place at the top.
  const dragProject = store.createProject({ name: 'drag', task: 'ranking', overlap: 1, settings: { goldRate: 0 } });
  store.transaction(() => store.addItem(dragProject, 'drag prompt', ['p', 'q', 'r'].map((text) => ({ text }))));
  const dragger = await open(`/?invite=${store.createInvite('annotator')}`);
  await dragger.waitForSelector('main[data-state="signin"]');
  await dragger.keyboard.type('dragger');
  await dragger.keyboard.press('Enter');
  await dragger.waitForSelector('main[data-state="home"]');
  await dragger.keyboard.press('7');
  await dragger.waitForSelector('main[data-state^="item-"]');
  await dragger.dragAndDrop('.response:nth-child(3)', '.response:nth-child(1)');
  assert.match((await dragger.textContent('.response:nth-child(3) h3'))!, /rank 1$/);
  await dragger.keyboard.press('Control+Enter');
  await dragger.waitForSelector('main[data-state="done"]');
  assert.deepEqual(store.labels('drag')[0]!.answer, { ranks: [2, 3, 1] });

  // The admin view: gold accuracy 1 for both, Fleiss' κ and α over the three shared items.
  await admin.goto(url + '/');
  await admin.waitForSelector('main[data-state="home"]');
  await admin.keyboard.press('a');
  await admin.waitForSelector('main[data-state="admin"]');
  const rows = await admin.$$eval('section[data-project="pairs"] table', (ts) => ts.map((t) => [...t.querySelectorAll('tr')].map((r) => [...r.children].map((c) => c.textContent))));
  const annotators = rows[1]!.slice(1);
  assert.deepEqual(annotators.map((r) => [r[0], r[2], r[3]]), [['annotator0', '1', '2'], ['annotator1', '1', '2']]);
  assert.deepEqual(rows[2]![1], ['1', '3', '1', '6'], "Fleiss' κ 1 over 3 items, α 1 over 6 values");
  await admin.screenshot({ path: join(ARTIFACTS, 'feedback-admin.png'), fullPage: true });

  assert.deepEqual(errors, []);
  assert.deepEqual(requests.filter((u) => !u.startsWith(url)), [], 'nothing fetched from anywhere but the app');
});
