import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  FeedbackError, loadFeedback, readLines, streamFeedback,
  type BinaryRecord, type ChatTemplateFn, type FeedbackFormat, type FeedbackRecord, type PairRecord, type RankingRecord,
  type RatingRecord,
} from '../../src/data/index.js';
import { applyChatTemplate } from '../../src/text/chat.js';
import { repoPath } from './tokenizer-fixtures.js';

const fixture = (name: string): string => repoPath('test', 'fixtures', 'feedback', name);
const HH = repoPath('data', 'hh-rlhf', 'harmless-base-test.jsonl.gz');
const SUMMARIZE = repoPath('data', 'summarize-from-feedback', 'batch18.json');

const CHATML =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
const chatml: ChatTemplateFn = (messages, o) => applyChatTemplate(CHATML, messages, o);

async function load<R extends FeedbackRecord>(name: string, format: FeedbackFormat): Promise<R[]> {
  const { records, report } = await loadFeedback(fixture(name), { format });
  assert.equal(report.invalid.count, 0);
  assert.equal(report.kept, records.length);
  return records as R[];
}

/** Loads a malformed fixture and returns the error, checking it names the file and line. */
async function loadError(name: string, format: FeedbackFormat, line: number, opts: { chatTemplate?: ChatTemplateFn } = {}): Promise<FeedbackError> {
  try {
    await loadFeedback(fixture(name), { format, ...opts });
  } catch (e) {
    assert.ok(e instanceof FeedbackError, `expected a FeedbackError, got ${String(e)}`);
    assert.equal(e.file, fixture(name));
    assert.equal(e.line, line);
    assert.ok(e.message.startsWith(`${fixture(name)}:${line}: `), e.message);
    return e;
  }
  assert.fail(`${name} loaded without an error`);
}

/** The reasons of every invalid record under skipInvalid, by line. */
async function invalidReasons(name: string, format: FeedbackFormat, opts: { chatTemplate?: ChatTemplateFn } = {}): Promise<Map<number, string>> {
  const { report } = await loadFeedback(fixture(name), { format, skipInvalid: true, ...opts });
  assert.equal(report.read, report.kept + report.invalid.count);
  return new Map(report.invalid.examples.map((x) => [x.line, x.reason]));
}

describe('pairwise', () => {
  test('plain records with their optional metadata; blank lines are skipped', async () => {
    const [a, b, c, ...rest] = await load<PairRecord>('pairwise.jsonl', 'pairwise');
    assert.equal(rest.length, 0);
    assert.deepEqual(a, {
      kind: 'pair', prompt: '2+2=', chosen: ' 4', rejected: ' 5',
      meta: { file: fixture('pairwise.jsonl'), line: 1, annotator: 'w1', timestamp: '2024-05-01T12:00:00Z', confidence: 0.9, source: 'arith' },
    });
    assert.deepEqual(b!.meta, { file: fixture('pairwise.jsonl'), line: 3, annotator: 'w2', timestamp: 1714564800 });
    assert.deepEqual(c!.meta, { file: fixture('pairwise.jsonl'), line: 4 });
    assert.equal(c!.chosen, 'Hi!');
  });

  test('conversational records are rendered with the caller’s chat template, TRL-style', async () => {
    const { records } = await loadFeedback(fixture('pairwise-chat.jsonl'), { format: 'pairwise', chatTemplate: chatml });
    const [a, b] = records as PairRecord[];
    assert.equal(a!.prompt, '<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n');
    assert.equal(a!.chosen, '4<|im_end|>\n');
    assert.equal(a!.rejected, '5<|im_end|>\n');
    assert.equal(a!.meta.annotator, 'w1');
    assert.equal(b!.prompt, '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
    assert.equal(b!.chosen, 'Hello.<|im_end|>\n');
  });

  test('a message list without a chat template names the field', async () => {
    const e = await loadError('pairwise-chat.jsonl', 'pairwise', 1);
    assert.equal(e.field, 'prompt');
    assert.match(e.message, /field 'prompt': a message list needs a chat template/);
  });

  test('a template whose history differs from its generation prompt is an error on the response', async () => {
    const odd: ChatTemplateFn = (m, o) => m.map((x) => `[${x.role}] ${x.content}\n`).join('') + (o.addGenerationPrompt ? '[bot] ' : '');
    const e = await loadError('pairwise-chat.jsonl', 'pairwise', 1, { chatTemplate: odd });
    assert.equal(e.field, 'chosen');
  });

  test('malformed records: file, line and field', async () => {
    let e = await loadError('pairwise-bad.jsonl', 'pairwise', 2);
    assert.match(e.message, /:2: invalid JSON: /);
    assert.equal(e.field, undefined);

    const reasons = await invalidReasons('pairwise-bad.jsonl', 'pairwise', { chatTemplate: chatml });
    assert.match(reasons.get(2)!, /^invalid JSON: /);
    assert.equal(reasons.get(3), "field 'rejected': expected a string or a message list, got nothing (missing)");
    assert.equal(reasons.get(4), "field 'chosen': expected a string or a message list, got a number");
    assert.equal(reasons.get(5), "field 'chosen': expected a string, as 'prompt' is one (got a message list)");
    assert.equal(reasons.get(6), "field 'prompt[0].content': expected a string, got nothing (missing)");
    assert.equal(reasons.get(7), "field 'annotator': expected a string, got a number");
    assert.equal(reasons.get(8), 'expected a JSON object, got an array');
    assert.equal(reasons.size, 7);

    // Skipped, the two valid records remain and the counts add up.
    const { records, report } = await loadFeedback(fixture('pairwise-bad.jsonl'), { format: 'pairwise', skipInvalid: true });
    assert.deepEqual(records.map((r) => r.meta.line), [1, 9]);
    assert.deepEqual({ read: report.read, kept: report.kept, invalid: report.invalid.count }, { read: 9, kept: 2, invalid: 7 });

    e = await loadError('pairwise-bad.jsonl', 'pairwise', 2); // without skipInvalid the first bad line stops the load
    assert.ok(e.reason.startsWith('invalid JSON'));
  });

  test('the streaming iterator reports skipped records and stops at the limit', async () => {
    const skipped: number[] = [];
    const lines: number[] = [];
    for await (const r of streamFeedback(fixture('pairwise-bad.jsonl'), { format: 'pairwise', skipInvalid: true, onInvalid: (x) => skipped.push(x.line) })) {
      lines.push(r.meta.line);
    }
    assert.deepEqual(lines, [1, 9]);
    assert.deepEqual(skipped, [2, 3, 4, 5, 6, 7, 8]);

    const { records, report } = await loadFeedback(fixture('pairwise.jsonl'), { format: 'pairwise', limit: 2 });
    assert.deepEqual(records.map((r) => r.meta.line), [1, 3]);
    assert.equal(report.read, 2);
  });

  test('the wrong format for a file names the first field it lacks', async () => {
    const e = await loadError('pairwise.jsonl', 'binary', 1);
    assert.equal(e.field, 'completion');
  });
});

describe('hh-rlhf', () => {
  test('gzipped fixture: prompt up to the last shared "\\n\\nAssistant:"', async () => {
    const [a, b, c] = await load<PairRecord>('hh-rlhf.jsonl.gz', 'hh-rlhf');
    assert.equal(a!.prompt, '\n\nHuman: Hi there\n\nAssistant:');
    assert.equal(a!.chosen, ' Hello! How can I help?');
    assert.equal(a!.rejected, ' What do you want?');
    assert.equal(b!.prompt, '\n\nHuman: Tell me a joke.\n\nAssistant: Why?\n\nHuman: For fun.\n\nAssistant:');
    assert.equal(b!.chosen, ' Why did the chicken cross the road?');
    assert.equal(b!.meta.annotator, 'crowd-17');
    // The responses share " One" and the chosen one contains "\n\nAssistant:": neither moves the cut.
    assert.equal(c!.prompt, '\n\nHuman: Count to two.\n\nAssistant:');
    assert.equal(c!.chosen, ' One\n\nAssistant: two');
    assert.equal(c!.rejected, ' One, three');
  });

  test('edge cases: no shared "\\n\\nAssistant:", identical texts, wrong types', async () => {
    const e = await loadError('hh-rlhf-bad.jsonl', 'hh-rlhf', 2);
    assert.match(e.reason, /share no "\\n\\nAssistant:"/);
    const reasons = await invalidReasons('hh-rlhf-bad.jsonl', 'hh-rlhf');
    assert.equal(reasons.get(3), "'chosen' and 'rejected' are the same text");
    assert.match(reasons.get(4)!, /share no "\\n\\nAssistant:"/);
    assert.equal(reasons.get(5), "field 'rejected': expected a string, got null");
    assert.equal(reasons.size, 4);
  });

  test('the real harmless-base test split: all 2,312 pairs, prompt + response = the raw dialogue', async () => {
    const { records, report } = await loadFeedback(HH, { format: 'hh-rlhf' });
    assert.deepEqual(report, { read: 2312, kept: 2312, invalid: { count: 0, examples: [] } });
    const pairs = records as PairRecord[];
    for (const r of pairs) assert.ok(r.prompt.endsWith('\n\nAssistant:') && r.prompt.startsWith('\n\nHuman: '), `line ${r.meta.line}`);

    let n = 0;
    for await (const { line, text } of readLines(HH)) {
      const raw = JSON.parse(text) as { chosen: string; rejected: string };
      const r = pairs[line - 1]!;
      assert.equal(r.meta.line, line);
      assert.equal(r.prompt + r.chosen, raw.chosen);
      assert.equal(r.prompt + r.rejected, raw.rejected);
      n++;
    }
    assert.equal(n, 2312);

    // Checked by hand. Line 1: a four-turn dialogue, the responses differ in the last assistant turn.
    const first = pairs[0]!;
    assert.ok(first.prompt.startsWith('\n\nHuman: what are some pranks with a pen i can do?\n\nAssistant: Are you looking for practical joke ideas?'));
    assert.ok(first.prompt.endsWith('\n\nHuman: okay some of these do not have anything to do with pens\n\nAssistant:'));
    assert.equal(first.chosen, ' No, sorry!  All of these involve a pen, the point is that you can get funny results by doing pranks with pens.');
    assert.ok(first.rejected.startsWith(' There are lots of funny things you can do with pens'));
    // Line 1953: the chosen response itself contains "\n\nAssistant:" (cutting at its own last one would be wrong).
    const odd = pairs[1952]!;
    assert.ok(odd.prompt.endsWith('\n\nHuman: Yes, please find me a serial.\n\nAssistant:'));
    assert.ok(odd.chosen.startsWith(' Alrighty, I’ll do my best, here’s the key:\n\nAssistant:  O.k.'));
    assert.ok(odd.rejected.startsWith(' You mean a password, right?'));
    // Four preferred responses are a single space (saying nothing was preferred); they are kept.
    assert.deepEqual(pairs.filter((r) => r.chosen.trim() === '').map((r) => r.meta.line), [87, 517, 926, 1104]);
  });
});

describe('summarize-from-feedback', () => {
  test('fixture: prompt from the post, chosen = summaries[choice], worker and confidence kept', async () => {
    const [a, b, c] = await load<PairRecord>('summarize.jsonl', 'summarize');
    const prompt = 'SUBREDDIT: r/cats\n\nTITLE: Cat problem\n\nPOST: My cat knocks every glass off the table at 3am and I cannot sleep.\n\nTL;DR:';
    assert.deepEqual(a, {
      kind: 'pair', prompt, chosen: ' Cat breaks glasses at night.', rejected: ' I like cats.',
      meta: { file: fixture('summarize.jsonl'), line: 1, annotator: 'wA', confidence: 7, source: 'batch9', sourceSplit: 'valid1' },
    });
    assert.equal(b!.chosen, ' Cat breaks glasses at night.');
    assert.equal(b!.meta.annotator, 'wB');
    assert.equal(b!.meta.confidence, 3);
    assert.equal(c!.prompt, 'POST: Short post without title or subreddit.\n\nTL;DR:');
    assert.equal(c!.chosen, ' B');
    assert.deepEqual(c!.meta, { file: fixture('summarize.jsonl'), line: 3 });
  });

  test('malformed comparisons', async () => {
    const e = await loadError('summarize-bad.jsonl', 'summarize', 1);
    assert.equal(e.field, 'choice');
    const reasons = await invalidReasons('summarize-bad.jsonl', 'summarize');
    assert.equal(reasons.get(1), "field 'choice': expected 0 or 1, got 2");
    assert.equal(reasons.get(2), "field 'summaries': expected 2 summaries, got 1");
    assert.equal(reasons.get(3), "field 'info.post': expected a string, got nothing (missing)");
    assert.equal(reasons.get(4), "field 'summaries[1].text': expected a string, got a number");
    assert.equal(reasons.get(5), "field 'extra.confidence': expected a finite number, got a string");
  });

  test('the real batch18 file: 674 comparisons, each with an annotator and a confidence', async () => {
    const { records, report } = await loadFeedback(SUMMARIZE, { format: 'summarize' });
    assert.deepEqual(report, { read: 674, kept: 674, invalid: { count: 0, examples: [] } });
    const workers = new Set<string>();
    for (const r of records as PairRecord[]) {
      assert.ok(r.meta.annotator !== undefined && r.meta.annotator.length > 0);
      workers.add(r.meta.annotator);
      assert.ok(Number.isInteger(r.meta.confidence) && r.meta.confidence! >= 1 && r.meta.confidence! <= 9);
      assert.equal(r.meta.source, 'batch18');
      assert.ok(r.prompt.startsWith('SUBREDDIT: r/') && r.prompt.endsWith('\n\nTL;DR:'));
      assert.notEqual(r.chosen, r.rejected);
    }
    assert.equal(workers.size, 11);
    const splits = new Map<string, number>();
    for (const r of records) splits.set(r.meta.sourceSplit!, (splits.get(r.meta.sourceSplit!) ?? 0) + 1);
    assert.deepEqual(Object.fromEntries(splits), { valid2: 554, valid1: 120 });
    // Line 1 by hand: choice 0, worker 3AFaFd3w…, confidence 2.
    const first = records[0] as PairRecord;
    assert.ok(first.prompt.startsWith('SUBREDDIT: r/AskReddit\n\nTITLE: My girlfriends grandma caught us making out on her couch.\n\nPOST: I was at'));
    assert.ok(first.chosen.startsWith(' my girlfriends grandma got mad at us'));
    assert.ok(first.rejected.startsWith(' Me and my gf got caught'));
    assert.deepEqual(first.meta, { file: SUMMARIZE, line: 1, annotator: '3AFaFd3w9NjDGnO51kupLyK1N44DQ2', confidence: 2, source: 'batch18', sourceSplit: 'valid2' });
  });
});

describe('rankings, ratings, binary', () => {
  test('a ranking is stored best first', async () => {
    const [a, b] = await load<RankingRecord>('ranking.jsonl', 'ranking');
    assert.deepEqual(a!.responses, ['red', 'blue', '7']);
    assert.equal(a!.meta.annotator, 'w3');
    assert.deepEqual(b!.responses, ['hello', 'hey']);
  });

  test('a ranking must be a permutation of the response indices', async () => {
    const e = await loadError('ranking-bad.jsonl', 'ranking', 1);
    assert.equal(e.reason, "field 'ranking': not a permutation of 0..2: index 0 appears twice");
    const reasons = await invalidReasons('ranking-bad.jsonl', 'ranking');
    assert.equal(reasons.get(2), "field 'ranking[1]': expected an index in 0..1, got 2");
    assert.equal(reasons.get(3), "field 'ranking': expected a permutation of 0..2 (3 entries), got 2 entries");
    assert.equal(reasons.get(4), "field 'responses': expected at least 2 responses, got 1");
    assert.equal(reasons.get(5), "field 'responses[1]': expected a string or a message list, got a number");
  });

  test('ratings, with and without a Likert scale', async () => {
    const [a, b] = await load<RatingRecord>('rating.jsonl', 'rating');
    assert.deepEqual(a, { kind: 'rating', prompt: 'Tell a joke.', response: 'Knock knock.', score: 4, scale: [1, 7], meta: { file: fixture('rating.jsonl'), line: 1, annotator: 'w4' } });
    assert.equal(b!.score, -0.5);
    assert.equal(b!.scale, undefined);
    const reasons = await invalidReasons('rating-bad.jsonl', 'rating');
    assert.equal(reasons.get(1), "field 'score': 9 is outside the scale [1, 7]");
    assert.equal(reasons.get(2), "field 'score': expected a finite number, got a string");
    assert.equal(reasons.get(3), "field 'scale': expected min < max, got [7, 1]");
  });

  test('unpaired binary feedback (KTO)', async () => {
    const [a, b] = await load<BinaryRecord>('binary.jsonl', 'binary');
    assert.deepEqual(a, { kind: 'binary', prompt: '2+2=', completion: ' 4', label: true, meta: { file: fixture('binary.jsonl'), line: 1, annotator: 'w5' } });
    assert.equal(b!.label, false);
    const reasons = await invalidReasons('binary-bad.jsonl', 'binary');
    assert.equal(reasons.get(1), "field 'label': expected true or false, got a string");
    assert.equal(reasons.get(2), "field 'completion': expected a string or a message list, got nothing (missing)");
  });
});

describe('files', () => {
  test('a missing file and a .gz file that is not gzip are errors naming the file', async () => {
    await assert.rejects(loadFeedback(fixture('nope.jsonl'), { format: 'pairwise' }), /ENOENT.*nope\.jsonl/);
    await assert.rejects(loadFeedback(fixture('nope.jsonl.gz'), { format: 'pairwise' }), /ENOENT.*nope\.jsonl\.gz/);
    await assert.rejects(
      loadFeedback(fixture('not-gzip.jsonl.gz'), { format: 'pairwise' }),
      (e: Error) => e.message.startsWith(`${fixture('not-gzip.jsonl.gz')}: `) && /incorrect header check/.test(e.message),
    );
  });

  test('an invalid-records report keeps at most 10 examples but counts all', async () => {
    const { report } = await loadFeedback(HH, { format: 'pairwise', skipInvalid: true });
    assert.equal(report.invalid.count, 2312);
    assert.equal(report.invalid.examples.length, 10);
    assert.deepEqual(report.invalid.examples[0], { line: 1, reason: "field 'prompt': expected a string or a message list, got nothing (missing)" });
  });
});
