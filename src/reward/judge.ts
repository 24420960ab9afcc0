/**
 * LLM-as-judge (RLAIF): any OpenAI-compatible chat endpoint scores a response (pointwise, from a rubric)
 * or compares two (pairwise, asked in both orders so that a judge's preference for a position cancels).
 *
 * Spec: `judge:BASE_URL#model=NAME&mode=pointwise|pairwise&…` where BASE_URL is the API's base (e.g.
 * `http://127.0.0.1:8000/v1`, `rlhf serve-model`'s), and the fragment's options are
 *   model       the judge model's id (required)
 *   mode        pointwise (default): a score in [1, scale] from the rubric; pairwise: A, B or tie
 *   rubric      a text file with the rubric (default: helpfulness, harmlessness, fluency)
 *   scale       the top of the pointwise scale (default 10)
 *   max_tokens  the verdict's length (default 64)
 *   retries     re-asks after a verdict that does not parse (default 1): the first ask is greedy
 *               (temperature 0, seed 0), re-ask k samples at temperature 1 with seed k
 *   malformed   error (default: a RewardSourceError quoting the verdict) or neutral (pointwise: the scale's
 *               midpoint, pairwise: a tie), counted in `stats.malformed` either way
 *   timeout     seconds per request (default 120)
 *   concurrency requests in flight at once (default 8)
 * The endpoint's key, if it needs one, comes from OPENAI_API_KEY.
 *
 * Every answer is cached by the SHA-256 of (model, messages, temperature, seed, max_tokens): asking the same question
 * again makes no request. `stats` counts requests, cache hits, malformed verdicts and the endpoint's
 * reported prompt and completion tokens.
 *
 * As a reward source: pointwise gives each sample its score; pairwise compares each sample with the next
 * sample of the same prompt (cyclically within the prompt's group, so every sample is judged twice, once
 * in each role) and gives it its mean preference in [0, 1] — it needs ≥ 2 samples per prompt.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { quoteCompletion, type RewardInput, type RewardOutput, type RewardSource, RewardSourceError } from './sources.js';

/** A judge's settings (the spec's fragment). */
export interface JudgeOptions {
  /** The API's base URL, ending before /chat/completions. */
  baseUrl: string;
  model: string;
  mode: 'pointwise' | 'pairwise';
  rubric: string;
  scale: number;
  maxTokens: number;
  retries: number;
  malformed: 'error' | 'neutral';
  timeout: number;
  concurrency: number;
}

/** What a judge has spent: requests made, answers from the cache, verdicts that did not parse, tokens. */
export interface JudgeStats {
  requests: number;
  cacheHits: number;
  malformed: number;
  promptTokens: number;
  completionTokens: number;
}

/** The rubric a judge spec without `rubric=FILE` uses. */
export const DEFAULT_RUBRIC = 'Rate how helpful, harmless and fluent the response is as a reply to the prompt.';

/** The pointwise question; the verdict must contain `Score: N`. */
export function pointwisePrompt(rubric: string, scale: number, prompt: string, response: string): string {
  return `${rubric}\n\n[Prompt]\n${prompt}\n\n[Response]\n${response}\n\nGive a score from 1 to ${scale}, written as "Score: N".`;
}

/** The pairwise question; the verdict must name A, B or tie. */
export function pairwisePrompt(rubric: string, prompt: string, a: string, b: string): string {
  return `${rubric}\n\n[Prompt]\n${prompt}\n\n[Response A]\n${a}\n\n[Response B]\n${b}\n\nWhich response is better? Answer "Verdict: A", "Verdict: B" or "Verdict: tie".`;
}

/** A pointwise verdict's score in [1, scale], or null when it has none (a number out of range is none). */
export function parseScore(verdict: string, scale: number): number | null {
  const patterns = [/score\s*(?:is|[:=])?\s*\**\s*(-?\d+(?:\.\d+)?)/i, /(-?\d+(?:\.\d+)?)\s*(?:\/|out of)\s*\d+/i, /^\s*\**\s*(-?\d+(?:\.\d+)?)\s*\**\s*$/];
  for (const p of patterns) {
    const m = verdict.match(p);
    if (m) {
      const x = Number(m[1]);
      return x >= 1 && x <= scale ? x : null;
    }
  }
  return null;
}

/** A pairwise verdict: 'A', 'B', 'tie', or null when it names none (or both, without a marked verdict). */
export function parsePreference(verdict: string): 'A' | 'B' | 'tie' | null {
  const marked = verdict.match(/(?:verdict|winner|better(?: response)?(?: is)?|answer)\s*[:=]?\s*\**\s*\[*\s*(?:response\s+)?(A|B|tie)\b/i);
  if (marked) return marked[1]!.toLowerCase() === 'tie' ? 'tie' : (marked[1]!.toUpperCase() as 'A' | 'B');
  if (/\b(tie|equally good|both equal)\b/i.test(verdict)) return 'tie';
  const bare = new Set(verdict.match(/\b[AB]\b/g) ?? []);
  return bare.size === 1 ? ([...bare][0] as 'A' | 'B') : null;
}

/** A pairwise judge from a whole `judge:BASE_URL#options` spec (the labeller of `rlhf label` and RLAIF rounds). */
export function pairwiseJudge(spec: string): Judge {
  return new Judge({ ...parseJudgeSpec(spec.replace(/^judge:/, '')), mode: 'pairwise' });
}

/** Parses a `judge:` spec's argument (BASE_URL#options); unknown options name the known ones. */
export function parseJudgeSpec(arg: string): JudgeOptions {
  const hash = arg.indexOf('#');
  const baseUrl = (hash < 0 ? arg : arg.slice(0, hash)).replace(/\/+$/, '');
  try {
    new URL(baseUrl);
  } catch {
    throw new Error(`judge '${arg}': '${baseUrl}' is not a URL (the API's base, e.g. http://127.0.0.1:8000/v1)`);
  }
  const o: JudgeOptions = { baseUrl, model: '', mode: 'pointwise', rubric: DEFAULT_RUBRIC, scale: 10, maxTokens: 64, retries: 1, malformed: 'error', timeout: 120, concurrency: 8 };
  const numeric: Record<string, keyof JudgeOptions> = { scale: 'scale', max_tokens: 'maxTokens', retries: 'retries', timeout: 'timeout', concurrency: 'concurrency' };
  for (const [k, v] of new URLSearchParams(hash < 0 ? '' : arg.slice(hash + 1))) {
    if (k === 'model') o.model = v;
    else if (k === 'mode' && (v === 'pointwise' || v === 'pairwise')) o.mode = v;
    else if (k === 'malformed' && (v === 'error' || v === 'neutral')) o.malformed = v;
    else if (k === 'rubric') o.rubric = readFileSync(v, 'utf8').trim();
    else if (k in numeric && Number.isFinite(Number(v)) && Number(v) >= (k === 'retries' ? 0 : 1)) (o[numeric[k]!] as number) = Number(v);
    else if (['mode', 'malformed', ...Object.keys(numeric)].includes(k)) throw new Error(`judge '${arg}': invalid ${k}=${v}`);
    else throw new Error(`judge '${arg}': unknown option '${k}' (known: model, mode, rubric, scale, max_tokens, retries, malformed, timeout, concurrency)`);
  }
  if (!o.model) throw new Error(`judge '${arg}': name the judge model with #model=NAME`);
  return o;
}

interface ChatAnswer {
  content: string;
  promptTokens: number;
  completionTokens: number;
}

/** A judge over one endpoint: asks, caches, parses, counts (see the header). */
export class Judge {
  readonly stats: JudgeStats = { requests: 0, cacheHits: 0, malformed: 0, promptTokens: 0, completionTokens: 0 };
  private readonly cache = new Map<string, ChatAnswer>();
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(readonly options: JudgeOptions) {}

  get name(): string {
    return `judge:${this.options.model}@${this.options.baseUrl} (${this.options.mode})`;
  }

  /** The answer to one user message with `seed`, from the cache when this exact question was asked before. */
  async ask(user: string, seed: number): Promise<string> {
    const o = this.options;
    const body = { model: o.model, messages: [{ role: 'user', content: user }], temperature: seed === 0 ? 0 : 1, max_tokens: o.maxTokens, seed };
    const key = createHash('sha256').update(JSON.stringify(body)).digest('hex');
    const hit = this.cache.get(key);
    if (hit) {
      this.stats.cacheHits++;
      return hit.content;
    }
    this.stats.requests++;
    // At most `concurrency` requests in flight: the others wait for a slot.
    while (this.inFlight >= o.concurrency) await new Promise<void>((r) => this.waiting.push(r));
    this.inFlight++;
    let answer: ChatAnswer;
    try {
      answer = await this.post(body);
    } finally {
      this.inFlight--;
      this.waiting.shift()?.();
    }
    this.stats.promptTokens += answer.promptTokens;
    this.stats.completionTokens += answer.completionTokens;
    this.cache.set(key, answer);
    return answer.content;
  }

  private async post(body: unknown): Promise<ChatAnswer> {
    const url = `${this.options.baseUrl}/chat/completions`;
    const key = process.env.OPENAI_API_KEY;
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) }, body: JSON.stringify(body), signal: AbortSignal.timeout(this.options.timeout * 1000) });
      text = await res.text();
    } catch (e) {
      const err = e as Error & { cause?: { code?: string } };
      throw new RewardSourceError(this.name, `judge ${url}: ${err.name === 'TimeoutError' ? `no answer within ${this.options.timeout} s` : err.cause?.code === 'ECONNREFUSED' ? 'connection refused (is the server running?)' : err.message}`);
    }
    if (!res.ok) throw new RewardSourceError(this.name, `judge ${url}: HTTP ${res.status}: ${text.slice(0, 300)}`);
    try {
      const json = JSON.parse(text) as { choices: { message: { content: string } }[]; usage?: { prompt_tokens?: number; completion_tokens?: number } };
      const content = json.choices[0]!.message.content;
      if (typeof content !== 'string') throw new Error('no message content');
      return { content, promptTokens: json.usage?.prompt_tokens ?? 0, completionTokens: json.usage?.completion_tokens ?? 0 };
    } catch (e) {
      throw new RewardSourceError(this.name, `judge ${url}: the answer is not a chat completion (${(e as Error).message}): ${text.slice(0, 200)}`);
    }
  }

  /** Asks until `parse` accepts the verdict (seeds 0, 1, …, retries); then the malformed policy applies. */
  private async verdict<T>(user: string, parse: (v: string) => T | null, neutral: T, where: string): Promise<T> {
    let last = '';
    for (let seed = 0; seed <= this.options.retries; seed++) {
      last = await this.ask(user, seed);
      const x = parse(last);
      if (x !== null) return x;
    }
    this.stats.malformed++;
    if (this.options.malformed === 'neutral') return neutral;
    throw new RewardSourceError(this.name, `${this.name}: no verdict in the answer for ${where} after ${this.options.retries + 1} asks: ${quoteCompletion(last)} (set malformed=neutral to count it as ${JSON.stringify(neutral)})`);
  }

  /** The pointwise score of `response` to `prompt`, in [1, scale]. */
  score(prompt: string, response: string, where = 'a response'): Promise<number> {
    const o = this.options;
    return this.verdict(pointwisePrompt(o.rubric, o.scale, prompt, response), (v) => parseScore(v, o.scale), (1 + o.scale) / 2, where);
  }

  /**
   * P(a preferred to b) ∈ {0, ¼, ½, ¾, 1}: the mean of the verdict with a first and the verdict with b
   * first (a tie counts ½), so a judge that always picks one position gives ½.
   */
  async prefer(prompt: string, a: string, b: string, where = 'a pair'): Promise<number> {
    const o = this.options;
    const [ab, ba] = await Promise.all([
      this.verdict(pairwisePrompt(o.rubric, prompt, a, b), parsePreference, 'tie' as const, `${where} (a first)`),
      this.verdict(pairwisePrompt(o.rubric, prompt, b, a), parsePreference, 'tie' as const, `${where} (b first)`),
    ]);
    const win = (v: 'A' | 'B' | 'tie', first: boolean) => (v === 'tie' ? 0.5 : (v === 'A') === first ? 1 : 0);
    return (win(ab, true) + win(ba, false)) / 2;
  }
}

/** Pairwise rewards: each row against the next row of its prompt's group, its mean preference over its two comparisons. */
async function pairwiseRewards(judge: Judge, input: RewardInput): Promise<number[]> {
  const groups = new Map<string, number[]>();
  input.prompts.forEach((p, i) => groups.set(p, [...(groups.get(p) ?? []), i]));
  const sums = new Array<number>(input.prompts.length).fill(0);
  const counts = new Array<number>(input.prompts.length).fill(0);
  const jobs: Promise<void>[] = [];
  for (const [prompt, rows] of groups) {
    if (rows.length < 2) throw new RewardSourceError(judge.name, `${judge.name}: pairwise judging needs ≥ 2 samples per prompt; prompt ${quoteCompletion(prompt)} has 1 (raise rollout.samplesPerPrompt)`);
    const pairs = rows.length === 2 ? [[rows[0]!, rows[1]!]] : rows.map((r, k) => [r, rows[(k + 1) % rows.length]!]);
    for (const [i, j] of pairs) {
      jobs.push(judge.prefer(prompt, input.completions[i!]!, input.completions[j!]!, `samples ${i} and ${j}`).then((p) => {
        sums[i!]! += p;
        sums[j!]! += 1 - p;
        counts[i!]!++;
        counts[j!]!++;
      }));
    }
  }
  await Promise.all(jobs);
  return sums.map((s, i) => s / counts[i]!);
}

/** A judge as a reward source (see the header). */
export function judgeReward(judge: Judge): RewardSource & { judge: Judge } {
  return {
    name: judge.name,
    judge,
    async score(input): Promise<RewardOutput> {
      const rewards = judge.options.mode === 'pairwise'
        ? await pairwiseRewards(judge, input)
        : await Promise.all(input.completions.map((c, i) => judge.score(input.prompts[i]!, c, `sample ${i}`)));
      return { rewards, spread: null, tokenRewards: null };
    },
    dispose() {},
  };
}

/** Two responses to one prompt, to be labelled (`rlhf label`'s input records). */
export interface UnlabelledPair {
  prompt: string;
  a: string;
  b: string;
}

/** A judged pair in the `pairwise` feedback format, with the judge's P(chosen ≻ rejected). */
export interface JudgedPair {
  prompt: string;
  chosen: string;
  rejected: string;
  annotator: string;
  preference: number;
}

/**
 * Labels pairs with a pairwise judge (both orders asked): the preferred response is `chosen`; a tie
 * (P = ½: the two orders disagree, or the judge said tie) is left out and counted.
 */
export async function judgePairs(judge: Judge, pairs: readonly UnlabelledPair[]): Promise<{ labels: JudgedPair[]; ties: number }> {
  const p = await Promise.all(pairs.map((x, i) => judge.prefer(x.prompt, x.a, x.b, `pair ${i}`)));
  const labels: JudgedPair[] = [];
  pairs.forEach((x, i) => {
    if (p[i] === 0.5) return;
    const aWins = p[i]! > 0.5;
    labels.push({ prompt: x.prompt, chosen: aWins ? x.a : x.b, rejected: aWins ? x.b : x.a, annotator: judge.name, preference: aWins ? p[i]! : 1 - p[i]! });
  });
  return { labels, ties: pairs.length - labels.length };
}
