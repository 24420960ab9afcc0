/**
 * Bring your own reward: a JavaScript module compiled from TypeScript in a temp directory (an async
 * per-sample function, and a batch scorer) and a remote server speaking OpenRLHF's `/get_reward` protocol,
 * started here on 127.0.0.1.
 *
 * Learning: GRPO at the rl-sentiment test's size (128 fresh evaluation samples) raises each reward by
 * ≥ 3 s.e. at KL ≤ 20 without collapse (test/model/improved.ts), for any RLHF_TEST_SEED. The module's
 * reward (distinct happy words per word) is easy to game by repetition: at 12 steps and lr 3e-4 it gained
 * 20–24 s.e. but distinct-2 fell to 0.6×, so it runs 8 steps at 1.5e-4: 4.7–7.9 s.e. over seeds 0–3. The
 * server (AFINN comparative, as rl-sentiment's GRPO) gains 16–22 s.e. over seeds 0–3 at 12 steps.
 * Failures: a module that throws, a server that answers 500, is down, times out, answers malformed JSON or
 * a wrong-length batch — each a RewardSourceError naming the source (and the sample, for a module); a run
 * that meets one stops with a checkpoint of the step it failed before, and resumes from it.
 * Tags: @learning
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import ts from 'typescript';
import { validateConfig } from '../../src/config.js';
import { afinnComparative } from '../../src/reward/functions.js';
import { combinedReward, type RewardInput, RewardSourceError, parseRewardSpec } from '../../src/reward/sources.js';
import { loadTokenizer } from '../../src/text/index.js';
import { resolveModelDir } from '../../src/models/hub.js';
import { GRPO_DEFAULTS, GRPO_SCHEMA } from '../../src/rlhf/grpo/config.js';
import { trainGrpo } from '../../src/rlhf/grpo/trainer.js';
import { TEST_SEED, TEST_THREADS } from '../env.js';
import { assertImproved } from './improved.js';

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-custom-rewards-'));
after(() => rmSync(TMP, { recursive: true, force: true }));
const quiet = () => {};
const tok = loadTokenizer(resolveModelDir('stories260k'));

/** The user's TypeScript, compiled the way the docs say (TypeScript's transpileModule), to an .mjs next to it. */
function compileModule(name: string, source: string): string {
  const dir = join(TMP, 'user');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.ts`), source);
  const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
  const path = join(dir, `${name}.mjs`);
  writeFileSync(path, js);
  return path;
}

const CHEER_TS = `
const HAPPY = new Set(['happy', 'smiled', 'smile', 'love', 'loved', 'fun', 'good', 'nice', 'great', 'best', 'friend', 'friends',
  'laughed', 'played', 'kind', 'beautiful', 'excited', 'proud', 'thank', 'hug', 'hugged', 'glad', 'joy', 'yay', 'like', 'liked']);
interface Meta { index: number; promptIds: readonly number[]; completionIds: readonly number[] }
/** Distinct happy words per word (repeating one earns nothing), after a tick of the event loop (async, as a reward that asks a service would be). */
export async function cheer(completion: string, _prompt: string, meta: Meta): Promise<number> {
  await new Promise((r) => setTimeout(r, 0));
  if (meta.completionIds.length === 0) return 0;
  const words = completion.toLowerCase().match(/[a-z']+/g) ?? [];
  return words.length === 0 ? 0 : new Set(words.filter((w) => HAPPY.has(w))).size / words.length;
}
let calls = 0;
/** Throws on the 12th sample it sees: sample 3 of step 2 in a run of 8-sample rollouts with no evaluation. */
export function flaky(completion: string): number {
  if (++calls === 12) throw new Error('lexicon service unavailable');
  return completion.length / 100;
}
export const lengths = { batch: (input: { completions: readonly string[] }) => input.completions.map((c) => c.length / 100) };
export const short = { batch: async (input: { completions: readonly string[] }) => input.completions.slice(1).map(() => 0) };
export const nan = () => Number.NaN;
export const notAFunction = 42;
`;

// ---- a remote reward server on 127.0.0.1 -------------------------------------------------------------

interface RemoteBody {
  query: string[];
  prompts: string[];
  labels: string[];
}
type Mode = 'afinn' | 'error500' | 'fail-once' | 'hang' | 'malformed' | 'short';

/** A `/get_reward` server whose behaviour the test switches; it records every request's size and the peak in flight. */
class RewardServer {
  mode: Mode = 'afinn';
  requests: number[] = [];
  inFlight = 0;
  peak = 0;
  private server: Server;
  private failed = false;
  constructor() {
    this.server = createServer((req, res) => void this.handle(req, res));
  }
  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/get_reward`;
  }
  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let text = '';
    for await (const chunk of req) text += chunk;
    const body = JSON.parse(text) as RemoteBody;
    this.requests.push(body.query.length);
    this.inFlight++;
    this.peak = Math.max(this.peak, this.inFlight);
    await new Promise((r) => setTimeout(r, 5)); // overlapping requests meet here
    this.inFlight--;
    const send = (status: number, payload: string): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(payload);
    };
    if (this.mode === 'hang') return; // never answers
    if (this.mode === 'error500' || (this.mode === 'fail-once' && !this.failed)) {
      this.failed = true;
      return send(500, '{"detail":"reward model crashed"}');
    }
    if (this.mode === 'malformed') return send(200, '{"rewards": [0.1, 0.2');
    // OpenRLHF's query is prompt + response; the response is what follows the prompt.
    const rewards = body.query.map((q, i) => {
      assert.ok(q.startsWith(body.prompts[i]!), 'query starts with its prompt');
      assert.equal(body.labels[i], '');
      return afinnComparative(q.slice(body.prompts[i]!.length));
    });
    send(200, JSON.stringify({ rewards: this.mode === 'short' ? rewards.slice(1) : rewards, scores: rewards, extra_logs: {} }));
  }
}

const server = new RewardServer();
let url = '';
let modulePath = '';
before(async () => {
  url = await server.listen();
  modulePath = compileModule('rewards', CHEER_TS);
});
after(() => server.close());

const LEARN = { seed: TEST_SEED, train: { steps: 12, lr: 3e-4, evalSamples: 128, checkpointEvery: 0, threads: TEST_THREADS } };

describe('learning from your own reward (GRPO)', () => {
  test('an async module compiled from TypeScript: the reward rises by ≥ 3 s.e. at KL ≤ 20 without collapse', async () => {
    const train = { ...LEARN.train, steps: 8, lr: 1.5e-4 };
    const cfg = validateConfig({ ...LEARN, out: join(TMP, 'grpo-module'), train, reward: { sources: [`module:${modulePath}#cheer`] } }, GRPO_DEFAULTS, GRPO_SCHEMA, 'test');
    assertImproved(await trainGrpo(cfg, { progress: quiet }));
  });

  test('a remote /get_reward server, batched 16 rows per request, ≤ 3 in flight: the reward rises by ≥ 3 s.e.', async () => {
    server.mode = 'afinn';
    server.requests = [];
    server.peak = 0;
    const cfg = validateConfig({ ...LEARN, out: join(TMP, 'grpo-remote'), reward: { sources: [`${url}#batch=16&concurrency=3`] } }, GRPO_DEFAULTS, GRPO_SCHEMA, 'test');
    assertImproved(await trainGrpo(cfg, { progress: quiet }));
    assert.ok(server.requests.every((n) => n <= 16) && server.requests.some((n) => n === 16), `request sizes ${[...new Set(server.requests)]}`);
    assert.ok(server.peak > 1 && server.peak <= 3, `peak requests in flight ${server.peak}`);
  });
});

// ---- failures ------------------------------------------------------------------------------------------

const input = (n: number): RewardInput => ({
  prompts: Array.from({ length: n }, (_, i) => (i % 2 ? 'Once upon a time' : '')),
  completions: Array.from({ length: n }, (_, i) => ` the dog was happy ${i}`),
  promptIds: Array.from({ length: n }, () => [1]),
  completionIds: Array.from({ length: n }, () => [5, 6, 7]),
});

/** The URL of a port nothing listens on (a server's, just closed). */
async function closedPort(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return `http://127.0.0.1:${port}/get_reward`;
}

async function rejectsWith(spec: string, pattern: RegExp, n = 8): Promise<void> {
  const source = parseRewardSpec(spec, tok);
  await assert.rejects(async () => source.score(input(n)), (e: Error) => {
    assert.ok(e instanceof RewardSourceError, `a RewardSourceError, got ${e}`);
    assert.match(e.message, pattern);
    return true;
  });
}

describe('module reward errors name the file, the export and the sample', () => {
  test('a module that throws, returns NaN or the wrong number of rewards', async () => {
    await rejectsWith(`module:${modulePath}#nan`, /reward 'module:.*rewards\.mjs#nan' returned NaN for sample 0/);
    await rejectsWith(`module:${modulePath}#short`, /module:.*rewards\.mjs#short' returned 7 rewards for a batch of 8 samples/);
    const batch = await parseRewardSpec(`module:${modulePath}#lengths`, tok).score(input(3));
    assert.deepEqual(batch.rewards, input(3).completions.map((c) => c.length / 100));
  });

  test('combined with a built-in source by weight (reward.weights)', async () => {
    const spec = (s: string) => parseRewardSpec(s, tok);
    const both = combinedReward([{ source: spec(`module:${modulePath}#lengths`), weight: 2 }, { source: spec('function:afinn_comparative'), weight: 0.5 }]);
    const got = await both.score(input(4));
    assert.deepEqual(got.rewards, input(4).completions.map((c) => 2 * (c.length / 100) + 0.5 * afinnComparative(c)));
  });

  test('a missing file, a missing export, a non-function, TypeScript source', async () => {
    await rejectsWith(`module:${join(TMP, 'nope.mjs')}#x`, /reward module .*nope\.mjs not found/);
    await rejectsWith(`module:${modulePath}#cheers`, /has no export 'cheers' \(it exports cheer, flaky, lengths, nan, notAFunction, short\)/);
    await rejectsWith(`module:${modulePath}#notAFunction`, /export 'notAFunction' is a number, not a function/);
    assert.throws(() => parseRewardSpec(`module:${join(TMP, 'user', 'rewards.ts')}#cheer`, tok), /TypeScript must be compiled to JavaScript first/);
  });
});

describe('remote reward errors name the server', () => {
  test('500 after retries, connection refused, timeout, malformed JSON, a wrong-length batch; one 500 is retried', async () => {
    server.mode = 'error500';
    await rejectsWith(`${url}#retries=2&backoff=0.01`, /remote reward http:\/\/127\.0\.0\.1:\d+\/get_reward: the request for samples 0–7 failed after 3 attempts: HTTP 500/);
    await rejectsWith(`${await closedPort()}#retries=1&backoff=0.01`, /failed after 2 attempts: connection refused/);
    server.mode = 'hang';
    await rejectsWith(`${url}#timeout=0.2&retries=0`, /failed after 1 attempts: no answer within 0\.2 s \(timeout\)/);
    server.mode = 'malformed';
    await rejectsWith(url, /failed: the answer is not JSON/);
    server.mode = 'short';
    await rejectsWith(`${url}#batch=4`, /the request for samples 0–3 failed: the answer has 3 rewards for a request of 4 samples/);
    server.mode = 'fail-once';
    const r = await parseRewardSpec(`${url}#backoff=0.01`, tok).score(input(4));
    assert.deepEqual(r.rewards, input(4).completions.map((c) => afinnComparative(c)));
    assert.throws(() => parseRewardSpec(`${url}#batchsize=4`, tok), /unknown option 'batchsize'/);
  });
});

describe('a run whose reward fails stops with a checkpoint and resumes', () => {
  const SMALL = { seed: TEST_SEED, rollout: { prompts: 4, samplesPerPrompt: 2, maxNewTokens: 16 }, train: { steps: 3, evalSamples: 0, checkpointEvery: 0, miniBatchSize: 4, threads: TEST_THREADS } };

  test('a module that throws at step 2: the error names the sample; the step-1 checkpoint resumes', async () => {
    const out = join(TMP, 'resume-module');
    const cfg = validateConfig({ ...SMALL, out, reward: { sources: [`module:${modulePath}#flaky`] } }, GRPO_DEFAULTS, GRPO_SCHEMA, 'test');
    await assert.rejects(trainGrpo(cfg, { progress: quiet }), /reward module:.*rewards\.mjs#flaky threw on sample 3 \(completion .*\): lexicon service unavailable — stopped before step 2; checkpoint written/);
    // Node caches the module: its count is past 12 now, so the resumed step 2 passes.
    const resumed = await trainGrpo(cfg, { progress: quiet });
    assert.equal(resumed.resumedFrom, 1);
    assert.equal(resumed.steps, 3);
  });

  test('a server that answers 500 at step 2 (checkpoints every step): the run stops, then resumes from step 1', async () => {
    const out = join(TMP, 'resume-remote');
    const cfg = validateConfig({ ...SMALL, out, reward: { sources: [`${url}#retries=1&backoff=0.01`] }, train: { ...SMALL.train, checkpointEvery: 1 } }, GRPO_DEFAULTS, GRPO_SCHEMA, 'test');
    server.mode = 'afinn';
    let steps = 0;
    const progress = (l: string) => {
      if (/step 1\/3/.test(l)) server.mode = 'error500';
      steps += /step \d\/3/.test(l) ? 1 : 0;
    };
    await assert.rejects(trainGrpo(cfg, { progress }), /remote reward http:.*failed after 2 attempts: HTTP 500.*stopped before step 2; checkpoint written/);
    assert.equal(steps, 1);
    server.mode = 'afinn';
    const resumed = await trainGrpo(cfg, { progress: quiet });
    assert.equal(resumed.resumedFrom, 1);
    assert.equal(resumed.steps, 3);
  });

  test('a server down during an evaluation: the error says which checkpoint resumes', async () => {
    const out = join(TMP, 'eval-remote');
    const cfg = validateConfig({ ...SMALL, out, reward: { sources: [`${url}#retries=0`] }, train: { ...SMALL.train, evalSamples: 4, evalEvery: 2, checkpointEvery: 1 } }, GRPO_DEFAULTS, GRPO_SCHEMA, 'test');
    server.mode = 'afinn';
    const progress = (l: string) => {
      if (/step 2\/3/.test(l)) server.mode = 'error500';
    };
    await assert.rejects(trainGrpo(cfg, { progress }), /HTTP 500.* — in the evaluation at step 2; rerun the same command to resume from the checkpoint of step 1/);
    server.mode = 'afinn';
    assert.equal((await trainGrpo(cfg, { progress: quiet })).resumedFrom, 1);
  });
});
