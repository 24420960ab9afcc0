/**
 * `rlhf serve-model` on stories260K through the official `openai` npm client over real HTTP (127.0.0.1):
 * completions and chat, streaming and not, get the tokens `rlhf generate` gets with the same seed and
 * settings; concurrent requests are batched (batches of more than one row) and each greedy answer equals
 * its unbatched answer token for token with log-probs within 1e-4, each sampled one its own seed's answer;
 * n > 1 extends choice 0; malformed requests get OpenAI-shaped 400 errors naming the field.
 * `rlhf bench serve-model --quick` gives its JSON. Then `rlhf serve-rm` on a reward model trained here
 * answers /get_reward as the `model:DIR` source scores.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { makeConfig } from '../../src/config.js';
import { resolveModelDir } from '../../src/models/hub.js';
import { REWARD_DEFAULTS, REWARD_SCHEMA } from '../../src/reward/config.js';
import { loadModelReward, parseRewardSpec } from '../../src/reward/sources.js';
import { trainRewardModel } from '../../src/reward/train.js';
import { type ModelServer, serveModel } from '../../src/serve/model-server.js';
import { serveRewardModel } from '../../src/serve/reward-server.js';
import { loadTokenizer } from '../../src/text/index.js';
import { ROOT, rlhfInProcess } from './run-cli.js';

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-serve-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

let server: ModelServer;
let client: OpenAI;
const log: string[] = [];
before(async () => {
  server = await serveModel({ model: 'stories260k', windowMs: 20, log: (l) => log.push(l) });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
after(() => server.close());

interface Generated {
  completions: { text: string; tokens: number[]; logprobs: number[] }[];
}

async function rlhfGenerate(prompt: string, args: string[]): Promise<Generated['completions'][number]> {
  const r = await rlhfInProcess(['generate', '--prompt', prompt, '--json', ...args]);
  assert.equal(r.status, 0, r.stderr);
  return (JSON.parse(r.stdout) as Generated).completions[0]!;
}

const close = (a: readonly number[], b: readonly number[], tol: number) => a.length === b.length && a.every((x, i) => Math.abs(x - b[i]!) <= tol);

describe('serve-model through the openai client', () => {
  test('/v1/models lists the model', async () => {
    const models = await client.models.list();
    assert.deepEqual(models.data.map((m) => m.id), ['stories260k']);
  });

  test('completions, streamed and not, are `rlhf generate` with the same seed and settings', async () => {
    const want = await rlhfGenerate('Once upon a time', ['--max-new-tokens', '24', '--temperature', '0.9', '--top-p', '0.95', '--seed', '7']);
    const got = await client.completions.create({ model: 'stories260k', prompt: 'Once upon a time', max_tokens: 24, temperature: 0.9, top_p: 0.95, seed: 7, logprobs: 0 });
    assert.equal(got.choices[0]!.text, want.text);
    assert.ok(close(got.choices[0]!.logprobs!.token_logprobs!, want.logprobs, 1e-6), 'log-probs as rlhf generate reports them');
    assert.equal(got.usage!.completion_tokens, want.tokens.length);
    const stream = await client.completions.create({ model: 'stories260k', prompt: 'Once upon a time', max_tokens: 24, temperature: 0.9, top_p: 0.95, seed: 7, stream: true });
    let text = '';
    let chunks = 0;
    for await (const c of stream) {
      text += c.choices[0]?.text ?? '';
      chunks++;
    }
    assert.equal(text, want.text);
    assert.ok(chunks >= want.tokens.length, `one chunk per token (${chunks} for ${want.tokens.length})`);
  });

  test('chat, streamed and not: the template-rendered prompt sampled as `rlhf generate` samples it', async () => {
    const messages = [{ role: 'user' as const, content: 'Tell me a story about a cat.' }];
    const want = await rlhfGenerate('user: Tell me a story about a cat.\nassistant:', ['--max-new-tokens', '20', '--seed', '3']);
    const got = await client.chat.completions.create({ model: 'stories260k', messages, max_tokens: 20, seed: 3, logprobs: true });
    assert.equal(got.choices[0]!.message.content, want.text);
    assert.ok(close(got.choices[0]!.logprobs!.content!.map((t) => t.logprob), want.logprobs, 1e-6));
    const stream = await client.chat.completions.create({ model: 'stories260k', messages, max_tokens: 20, seed: 3, stream: true });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    assert.equal(text, want.text);
  });

  test('concurrent requests are batched; greedy answers equal their unbatched answers, sampled ones keep their seed streams', async () => {
    const prompts = ['Once upon a time', 'Lily', 'The dog', 'Tom saw a big', 'One day', 'Sue had', 'The sun', 'A little bird'];
    const greedy = (p: string) => client.completions.create({ model: 'stories260k', prompt: p, max_tokens: 16, temperature: 0, logprobs: 0 });
    const sampled = (p: string, seed: number) => client.completions.create({ model: 'stories260k', prompt: p, max_tokens: 16, temperature: 1, seed, logprobs: 0 });
    const before = server.batchSizes.length;
    const [g, s] = await Promise.all([Promise.all(prompts.map(greedy)), Promise.all(prompts.map((p, i) => sampled(p, 100 + i)))]);
    const sizes = server.batchSizes.slice(before);
    assert.ok(sizes.some((n) => n > 1), `batch sizes ${sizes}`);
    assert.ok(log.some((l) => /batch of ([2-9]|\d{2,}) rows/.test(l)), 'the log shows a batch of more than one row');
    for (const [i, p] of prompts.entries()) {
      const alone = await greedy(p);
      const [a, b] = [g[i]!.choices[0]!.logprobs!, alone.choices[0]!.logprobs!];
      assert.deepEqual(a.tokens, b.tokens, `greedy '${p}' batched vs alone`);
      assert.ok(close(a.token_logprobs!, b.token_logprobs!, 1e-4), `log-probs of '${p}' within 1e-4`);
      assert.equal((await sampled(p, 100 + i)).choices[0]!.text, s[i]!.choices[0]!.text, `sampled '${p}' keeps its stream`);
    }
  });

  test('streaming from a server in another process: tokens arrive while the batch decodes', async (t) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'rlhf.js'), 'serve-model', '--port', '0', '--threads', '1'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let err = '';
        child.stderr!.on('data', (d: Buffer) => {
          err += d.toString();
          const m = err.match(/at (http:\/\/\S+\/v1)/);
          if (m) resolve(m[1]!);
        });
        child.on('exit', () => reject(new Error(`serve-model exited: ${err}`)));
      });
      const remote = new OpenAI({ baseURL: url, apiKey: 'unused', maxRetries: 0 });
      const ask = { model: 'stories260k', prompt: 'Once upon a time', max_tokens: 400, temperature: 1, seed: 11 };
      const whole = await remote.completions.create(ask);
      const t0 = performance.now();
      const at: number[] = [];
      let text = '';
      for await (const c of await remote.completions.create({ ...ask, stream: true })) {
        text += c.choices[0]?.text ?? '';
        at.push(performance.now() - t0);
      }
      assert.equal(text, whole.choices[0]!.text, 'the streamed text is the whole answer');
      const n = whole.usage!.completion_tokens;
      assert.ok(n >= 100, `a long answer (${n} tokens)`);
      // Written at once, the chunks would all arrive after the last token: here the first comes in the first half.
      assert.ok(at[0]! < 0.5 * at.at(-1)!, `first chunk at ${at[0]!.toFixed(0)} ms, last at ${at.at(-1)!.toFixed(0)} ms`);
      t.diagnostic(`first chunk at ${at[0]!.toFixed(0)} ms, last at ${at.at(-1)!.toFixed(0)} ms`);
    } finally {
      child.kill('SIGTERM');
    }
  });

  test('n = 3: three choices, the first the n = 1 answer', async () => {
    const one = await client.completions.create({ model: 'stories260k', prompt: 'Lily', max_tokens: 12, seed: 5 });
    const three = await client.completions.create({ model: 'stories260k', prompt: 'Lily', max_tokens: 12, seed: 5, n: 3 });
    assert.equal(three.choices.length, 3);
    assert.equal(three.choices[0]!.text, one.choices[0]!.text);
    assert.ok(new Set(three.choices.map((c) => c.text)).size > 1, 'the choices draw different streams');
  });

  test('malformed requests: OpenAI-shaped 400s naming the field', async () => {
    const bad = async (body: Record<string, unknown>, param: string, message: RegExp) => {
      await assert.rejects(client.completions.create({ model: 'stories260k', prompt: 'x', ...body } as never), (e: InstanceType<typeof OpenAI.APIError>) => {
        assert.ok(e instanceof OpenAI.BadRequestError, String(e));
        assert.equal(e.status, 400);
        assert.equal((e.error as { param: string }).param, param);
        assert.equal((e.error as { type: string }).type, 'invalid_request_error');
        assert.match(e.message, message);
        return true;
      });
    };
    await bad({ temperature: 5 }, 'temperature', /'temperature' must be a number in \[0, 2\], got 5/);
    await bad({ max_tokens: 0 }, 'max_tokens', /'max_tokens' must be an integer in \[1, /);
    await bad({ prompt: ['a', 'b'] }, 'prompt', /'prompt' must be a string/);
    await bad({ stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop', /up to 4/);
    await bad({ tempreature: 1 }, 'tempreature', /unknown field 'tempreature'/);
    await assert.rejects(client.chat.completions.create({ model: 'stories260k', messages: [] }), /'messages' must be a non-empty list/);
    const raw = await fetch(`${server.url}/v1/completions`, { method: 'POST', body: '{"model": ', headers: { 'content-type': 'application/json' } });
    assert.equal(raw.status, 400);
    assert.match(((await raw.json()) as { error: { message: string } }).error.message, /not JSON/);
    await assert.rejects(client.completions.create({ model: 'gpt-4', prompt: 'x' }), (e: InstanceType<typeof OpenAI.APIError>) => e.status === 404 && /does not exist/.test(e.message));
  });

  test('stop strings end the text before the stop sequence, finish_reason stop', async () => {
    const full = await client.completions.create({ model: 'stories260k', prompt: 'Once upon a time', max_tokens: 40, temperature: 0 });
    const text = full.choices[0]!.text;
    const word = text.trim().split(/\s+/)[3]!;
    const cut = await client.completions.create({ model: 'stories260k', prompt: 'Once upon a time', max_tokens: 40, temperature: 0, stop: word });
    assert.equal(cut.choices[0]!.text, text.slice(0, text.indexOf(word)));
    assert.equal(cut.choices[0]!.finish_reason, 'stop');
  });
});

describe('rlhf bench serve-model --quick', () => {
  test('its JSON: requests/s, p50 ≤ p99, tokens/s and mean batch per level, ratios vs generate; 32 clients are batched', async () => {
    const { runServeBench } = await import('../../bench/serve-model.js');
    const r = await runServeBench({ quick: true, reps: 1, threads: 1 });
    assert.deepEqual(Object.keys(r.results), ['c1', 'c8', 'c32']);
    for (const [k, v] of Object.entries(r.results)) {
      assert.ok(v.requestsPerSecond > 0 && v.tokensPerSecond > 0 && v.generateTokensPerSecond > 0 && v.p50Ms <= v.p99Ms, k);
      assert.ok(Number.isFinite(r.ratios[k]!), k);
    }
    assert.equal(r.results.c1!.meanBatch, 1);
    assert.ok(r.results.c32!.meanBatch > 1, `mean batch at 32 clients ${r.results.c32!.meanBatch}`);
  });
});

describe('serve-rm', () => {
  test('a reward model trained here answers /get_reward as the model: source scores the same texts', async () => {
    const rm = await trainRewardModel(
      makeConfig(REWARD_DEFAULTS, REWARD_SCHEMA, { out: join(TMP, 'rm'), data: { path: join(ROOT, 'test/fixtures/feedback/pairwise.jsonl'), format: 'pairwise' }, train: { epochs: 1, batchSize: 8 } }),
      { progress: () => {} },
    );
    const dir = join(rm.out, 'model');
    const rmServer = await serveRewardModel({ model: dir });
    try {
      const tok = loadTokenizer(resolveModelDir('stories260k'));
      const input = { prompts: ['', 'Once upon a time'], completions: [' the dog was happy.', ' a sad cat cried.'], promptIds: [[1], tok.encode('Once upon a time', { addBos: true })], completionIds: [[], []] as number[][] };
      input.completionIds = input.completions.map((c, i) => tok.encode(input.prompts[i]! + c, { addBos: true }).slice(input.promptIds[i]!.length));
      const remote = await parseRewardSpec(`${rmServer.url}/get_reward`, tok).score(input);
      const local = loadModelReward(dir, tok);
      const direct = input.prompts.map((p, i) => local.score({ prompts: [p + input.completions[i]!], completions: [''], promptIds: [tok.encode(p + input.completions[i]!, { addBos: true })], completionIds: [[]] }).rewards[0]!);
      local.dispose();
      assert.ok(close(remote.rewards, direct, 1e-5), `remote ${remote.rewards} vs local ${direct}`);
      const bad = await fetch(`${rmServer.url}/get_reward`, { method: 'POST', body: '{"query": [1]}' });
      assert.equal(bad.status, 400);
    } finally {
      await rmServer.close();
    }
  });
});
