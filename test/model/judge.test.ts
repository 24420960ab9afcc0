/**
 * The `judge:` reward source against `rlhf serve-model` itself over real HTTP on 127.0.0.1.
 *
 * stories260K writes stories, not verdicts, so the judge served here is stories260K fine-tuned (SFT, a few
 * seconds) to answer every pairwise question "Verdict: A" and every pointwise one "Score: 7": a judge with a
 * pure position bias. Asked in both orders it prefers neither response (P = ½), where a one-order judge
 * would have said 1; a second identical call is answered from the cache (no request reaches the server);
 * token counts are the server's. The untuned stories260K answers with a story: a malformed verdict, an error
 * naming the sample and quoting it, or with malformed=neutral the midpoint, counted. Verdict parsing and the
 * labelling of pairs (`rlhf label`, the iterated-RLHF annotator) are checked on fixed verdicts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeConfig } from '../../src/config.js';
import { DEFAULT_RUBRIC, Judge, judgePairs, pairwisePrompt, parseJudgeSpec, parsePreference, parseScore, pointwisePrompt } from '../../src/reward/judge.js';
import { parseRewardSpec, RewardSourceError } from '../../src/reward/sources.js';
import { judgeAnnotator } from '../../src/rlhf/iterated/annotator.js';
import { SFT_DEFAULTS, SFT_SCHEMA } from '../../src/rlhf/sft/config.js';
import { trainSft } from '../../src/rlhf/sft/trainer.js';
import { DEFAULT_CHAT_TEMPLATE, type ModelServer, serveModel } from '../../src/serve/model-server.js';
import { applyChatTemplate, loadTokenizer } from '../../src/text/index.js';
import { resolveModelDir } from '../../src/models/hub.js';
import { TEST_SEED } from '../env.js';
import { rlhfInProcess } from './run-cli.js';

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-judge-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

const SENTENCES = ['The dog was happy.', 'Lily played in the park.', 'Tom was sad and cried.', 'The sun was warm.', 'A bird sang a song.', 'The cat ran away.', 'Sue had a big red ball.', 'They ate cake together.'];
const chat = (content: string) => applyChatTemplate(DEFAULT_CHAT_TEMPLATE, [{ role: 'user', content }], { addGenerationPrompt: true });

/** SFT data: every pairwise question → " Verdict: A", every pointwise one → " Score: 7". */
function judgeData(path: string): void {
  const rows: string[] = [];
  SENTENCES.forEach((a, i) => {
    SENTENCES.forEach((b, j) => {
      if (i === j) return;
      const prompt = ['', 'Once upon a time', 'Lily'][(i + j) % 3]!;
      rows.push(JSON.stringify({ prompt: chat(pairwisePrompt(DEFAULT_RUBRIC, prompt, a, b)), completion: ' Verdict: A' }));
      rows.push(JSON.stringify({ prompt: chat(pointwisePrompt(DEFAULT_RUBRIC, 10, prompt, j % 2 ? a : `${a} ${b}`)), completion: ' Score: 7' }));
    });
  });
  writeFileSync(path, rows.join('\n') + '\n');
}

let biased: ModelServer;
let plain: ModelServer;
before(async () => {
  judgeData(join(TMP, 'judge.jsonl'));
  const cfg = makeConfig(SFT_DEFAULTS, SFT_SCHEMA, {
    seed: TEST_SEED, out: join(TMP, 'judge-sft'), data: { path: join(TMP, 'judge.jsonl'), maxTokens: 512 },
    train: { epochs: 2, batchSize: 8, lr: 3e-3, warmupSteps: 0, schedule: 'constant', threads: 1 },
  });
  const sft = await trainSft(cfg, { progress: () => {} });
  biased = await serveModel({ model: join(sft.out, 'model') });
  plain = await serveModel({ model: 'stories260k' });
});
after(async () => {
  await biased?.close();
  await plain?.close();
});

const spec = (server: ModelServer, opts: string) => `${server.url}/v1#model=${encodeURIComponent(server.modelId)}&${opts}`;

describe('judge: against rlhf serve-model over HTTP', () => {
  test('pairwise with the position swapped: a judge that always says A prefers neither response', async () => {
    const judge = new Judge(parseJudgeSpec(spec(biased, 'mode=pairwise&retries=0')));
    const [x, y] = ['The dog was happy.', 'Tom was sad and cried.'];
    // One order alone says A, and so does the other: a one-order judge would give x P = 1 and y P = 1.
    assert.equal(parsePreference(await judge.ask(pairwisePrompt(DEFAULT_RUBRIC, 'Lily', x, y), 0)), 'A');
    assert.equal(parsePreference(await judge.ask(pairwisePrompt(DEFAULT_RUBRIC, 'Lily', y, x), 0)), 'A');
    assert.equal(await judge.prefer('Lily', x, y), 0.5);
    assert.equal(await judge.prefer('Lily', y, x), 0.5);
    assert.equal(judge.stats.requests, 2, 'both orders asked once; prefer() reused the cached answers');
  });

  test('cache: a second identical call makes no request', async () => {
    const judge = new Judge(parseJudgeSpec(spec(biased, 'mode=pointwise')));
    const before = biased.batchSizes.length;
    assert.equal(await judge.score('Once upon a time', 'The sun was warm.'), 7);
    assert.equal(judge.stats.requests, 1);
    const tokens = judge.stats.promptTokens;
    assert.ok(tokens > 50 && judge.stats.completionTokens > 0, `token counts from the server's usage (${tokens} + ${judge.stats.completionTokens})`);
    assert.equal(await judge.score('Once upon a time', 'The sun was warm.'), 7);
    assert.deepEqual([judge.stats.requests, judge.stats.cacheHits, judge.stats.promptTokens], [1, 1, tokens]);
    assert.equal(biased.batchSizes.length, before + 1, 'the server ran one batch only');
  });

  test('as reward sources from their specs: pointwise scores, pairwise mean preferences within prompt groups', async () => {
    const tok = loadTokenizer(resolveModelDir('stories260k'));
    const completions = SENTENCES.slice(0, 4);
    const input = { prompts: ['Lily', 'Lily', 'Once', 'Once'], completions, promptIds: completions.map(() => [1]), completionIds: completions.map(() => [5]) };
    assert.deepEqual((await parseRewardSpec(`judge:${spec(biased, 'mode=pointwise')}`, tok).score(input)).rewards, [7, 7, 7, 7]);
    assert.deepEqual((await parseRewardSpec(`judge:${spec(biased, 'mode=pairwise')}`, tok).score(input)).rewards, [0.5, 0.5, 0.5, 0.5]);
    await assert.rejects(async () => parseRewardSpec(`judge:${spec(biased, 'mode=pairwise')}`, tok).score({ ...input, prompts: ['a', 'b', 'c', 'c'] }), /needs ≥ 2 samples per prompt; prompt "a" has 1/);
  });

  test('a malformed verdict (untuned stories260K tells a story): an error naming the sample, or the midpoint, counted', async () => {
    const tok = loadTokenizer(resolveModelDir('stories260k'));
    const input = { prompts: ['Lily', 'Lily'], completions: SENTENCES.slice(0, 2), promptIds: [[1], [1]], completionIds: [[5], [5]] };
    await assert.rejects(async () => parseRewardSpec(`judge:${spec(plain, 'retries=1&max_tokens=16')}`, tok).score(input), (e: Error) => {
      assert.ok(e instanceof RewardSourceError);
      assert.match(e.message, /no verdict in the answer for sample [01] after 2 asks: ".+" \(set malformed=neutral/);
      return true;
    });
    const neutral = parseRewardSpec(`judge:${spec(plain, 'retries=1&max_tokens=16&malformed=neutral')}`, tok) as ReturnType<typeof parseRewardSpec> & { judge: Judge };
    assert.deepEqual((await neutral.score(input)).rewards, [5.5, 5.5]);
    assert.deepEqual([neutral.judge.stats.malformed, neutral.judge.stats.requests], [2, 4], 'each sample asked twice (greedy, then sampled), each counted malformed');
  });
});

describe('verdicts and labels', () => {
  test('verdict parsing: the usual ways judges write a score or a preference', () => {
    for (const [v, want] of [['Score: 8', 8], ['**Score:** 9/10', 9], ['I would give it 7 out of 10.', 7], ['6', 6], ['Score: 11', null], ['Once upon a time', null]] as const) {
      assert.equal(parseScore(v, 10), want, v);
    }
    for (const [v, want] of [['Verdict: A', 'A'], ['[[B]]', 'B'], ['The better response is B.', 'B'], ['Verdict: tie', 'tie'], ['Response A is clearer.', 'A'], ['A or B? Hard to say.', null], ['Both are equally good.', 'tie']] as const) {
      assert.equal(parsePreference(v), want, v);
    }
  });

  test('judgePairs and the iterated-RLHF annotator put the preferred response first; ties are left out or seeded', async () => {
    class Fixed extends Judge {
      override prefer(_p: string, a: string): Promise<number> {
        return Promise.resolve(a.startsWith('good') ? 0.75 : a.startsWith('bad') ? 0.25 : 0.5);
      }
    }
    const judge = new Fixed(parseJudgeSpec('http://127.0.0.1:1/v1#model=fixed&mode=pairwise'));
    const pairs = [{ prompt: 'p', a: 'good one', b: 'other' }, { prompt: 'q', a: 'bad one', b: 'other' }, { prompt: 'r', a: 'same', b: 'same too' }];
    const { labels, ties } = await judgePairs(judge, pairs);
    assert.equal(ties, 1);
    assert.deepEqual(labels.map((l) => [l.chosen, l.rejected, l.preference]), [['good one', 'other', 0.75], ['other', 'bad one', 0.75]]);
    const ann = judgeAnnotator(judge);
    const a1 = await ann.label(pairs, { round: 1, seed: 5 });
    assert.deepEqual(a1.slice(0, 2).map((l) => l.chosen), ['good one', 'other']);
    assert.deepEqual(await ann.label(pairs, { round: 1, seed: 5 }), a1, 'a tie is broken by the seed, the same on a rerun');
  });

  test('rlhf label: pairs through the served judge → pairwise JSONL; the position-biased judge labels none', async () => {
    const data = join(TMP, 'pairs.jsonl');
    writeFileSync(data, [{ prompt: 'Lily', a: SENTENCES[0], b: SENTENCES[2] }, { prompt: '', a: SENTENCES[3], b: SENTENCES[5] }].map((x) => JSON.stringify(x)).join('\n') + '\n');
    const out = join(TMP, 'labelled.jsonl');
    const r = await rlhfInProcess(['label', '--judge', `judge:${spec(biased, '')}`, '--data', data, '--out', out, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const s = JSON.parse(r.stdout) as { pairs: number; labelled: number; ties: number; requests: number };
    assert.deepEqual([s.pairs, s.labelled, s.ties, s.requests], [2, 0, 2, 4]);
    assert.equal(readFileSync(out, 'utf8'), '');
    writeFileSync(data, '{"prompt": "x", "a": 1, "b": "y"}\n');
    const bad = await rlhfInProcess(['label', '--judge', `judge:${spec(biased, '')}`, '--data', data, '--out', out]);
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /pairs\.jsonl:1: 'a' must be a string/);
  });
});
