/**
 * Rewards from a server speaking OpenRLHF's remote reward-model protocol (openrlhf/cli/serve_rm.py and
 * openrlhf/utils/remote_rm_utils.py, the `--remote_rm_url` client):
 *
 *   POST <url>   {"query": [prompt + completion, …], "prompts": [prompt, …], "labels": [label, …]}
 *   200          {"rewards": [number, …], "scores"?: [number, …], "extra_logs"?: {…}}
 *
 * The spec is the URL itself, `http(s)://HOST:PORT/get_reward`, with the client's settings in its fragment
 * (never sent): `#batch=64&concurrency=4&timeout=60&retries=3&backoff=0.5` (rows per request, requests in
 * flight at once, seconds per attempt, retries after the first attempt, seconds before the first retry,
 * doubling after each). Labels are empty strings: the trainers' prompts carry none.
 *
 * A refused connection, a timeout, HTTP 429 or 5xx is retried with back-off; another 4xx, an answer that
 * is not JSON, has no `rewards` array, or has the wrong length is not (the server will say the same
 * again). Each failure is a RewardSourceError naming the URL and the rows of the request.
 */
import { checkFinite, type RewardInput, type RewardOutput, type RewardSource, RewardSourceError } from './sources.js';

/** How the client batches, waits and retries (the spec's fragment). */
export interface RemoteRewardOptions {
  /** Rows per request. */
  batch: number;
  /** Requests in flight at once. */
  concurrency: number;
  /** Seconds one attempt may take. */
  timeout: number;
  /** Retries after the first attempt. */
  retries: number;
  /** Seconds before the first retry; doubled after each. */
  backoff: number;
}

/** The client settings a spec without a #fragment gets. */
export const REMOTE_REWARD_DEFAULTS: Readonly<RemoteRewardOptions> = { batch: 64, concurrency: 4, timeout: 60, retries: 3, backoff: 0.5 };

/** URL and options of an `http(s)://…#k=v&…` spec; unknown or invalid options are errors naming them. */
export function parseRemoteSpec(spec: string): { url: string; options: RemoteRewardOptions } {
  const hash = spec.indexOf('#');
  const url = hash < 0 ? spec : spec.slice(0, hash);
  try {
    new URL(url);
  } catch {
    throw new Error(`remote reward '${spec}': not a URL`);
  }
  const options = { ...REMOTE_REWARD_DEFAULTS };
  for (const [k, v] of new URLSearchParams(hash < 0 ? '' : spec.slice(hash + 1))) {
    if (!(k in options)) throw new Error(`remote reward '${spec}': unknown option '${k}' (known: ${Object.keys(options).join(', ')})`);
    const x = Number(v);
    const integer = k === 'batch' || k === 'concurrency' || k === 'retries';
    if (!Number.isFinite(x) || x < 0 || (integer && !Number.isInteger(x)) || ((k === 'batch' || k === 'concurrency' || k === 'timeout') && x === 0)) {
      throw new Error(`remote reward '${spec}': option ${k}=${v} must be a ${integer ? 'whole' : ''} number ${k === 'retries' || k === 'backoff' ? '≥ 0' : '> 0'}`);
    }
    options[k as keyof RemoteRewardOptions] = x;
  }
  return { url, options };
}

/** A failed attempt: whether trying again may help, and what to say. */
class AttemptError extends Error {
  constructor(message: string, readonly retry: boolean) {
    super(message);
  }
}

/** Why fetch failed, as a person reads it (a refused connection, a timeout, a reset). */
function networkReason(e: unknown, timeout: number): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return `no answer within ${timeout} s (timeout)`;
  const code = err.cause?.code;
  if (code === 'ECONNREFUSED') return 'connection refused (is the server running?)';
  return err.cause?.message ?? err.message;
}

/** One POST; the rewards of its rows, or an AttemptError. */
async function attempt(url: string, body: string, rows: number, timeout: number): Promise<unknown[]> {
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(timeout * 1000) });
    text = await res.text();
  } catch (e) {
    throw new AttemptError(networkReason(e, timeout), true);
  }
  if (!res.ok) throw new AttemptError(`HTTP ${res.status} ${res.statusText}: ${text.slice(0, 200)}`, res.status === 429 || res.status >= 500);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new AttemptError(`the answer is not JSON: ${JSON.stringify(text.slice(0, 120))}`, false);
  }
  const rewards = (json as { rewards?: unknown })?.rewards;
  if (!Array.isArray(rewards)) throw new AttemptError(`the answer has no 'rewards' array (keys: ${Object.keys(json ?? {}).join(', ') || 'none'})`, false);
  if (rewards.length !== rows) throw new AttemptError(`the answer has ${rewards.length} rewards for a request of ${rows} samples`, false);
  return rewards;
}

/** POSTs one request's rows, retrying with back-off where that may help. */
async function request(name: string, url: string, input: RewardInput, from: number, to: number, o: RemoteRewardOptions): Promise<unknown[]> {
  const prompts = input.prompts.slice(from, to);
  const body = JSON.stringify({ query: prompts.map((p, i) => p + input.completions[from + i]!), prompts, labels: prompts.map(() => '') });
  for (let k = 0; ; k++) {
    try {
      return await attempt(url, body, to - from, o.timeout);
    } catch (e) {
      const a = e as AttemptError;
      if (!a.retry || k >= o.retries) {
        throw new RewardSourceError(name, `remote reward ${url}: the request for samples ${from}–${to - 1} failed${a.retry ? ` after ${k + 1} attempts` : ''}: ${a.message}`);
      }
      await new Promise((r) => setTimeout(r, o.backoff * 1000 * 2 ** k));
    }
  }
}

/** A remote reward server (see the header) as a reward source. */
export function remoteReward(spec: string): RewardSource {
  const { url, options: o } = parseRemoteSpec(spec);
  const name = url;
  return {
    name,
    async score(input): Promise<RewardOutput> {
      const n = input.completions.length;
      const starts = Array.from({ length: Math.ceil(n / o.batch) }, (_, i) => i * o.batch);
      const parts: unknown[][] = new Array(starts.length);
      let next = 0;
      // `concurrency` workers take the next request until none is left.
      const worker = async () => {
        while (next < starts.length) {
          const j = next++;
          parts[j] = await request(name, url, input, starts[j]!, Math.min(n, starts[j]! + o.batch), o);
        }
      };
      await Promise.all(Array.from({ length: Math.min(o.concurrency, starts.length) }, worker));
      const rewards = parts.flat();
      checkFinite(name, rewards, input);
      return { rewards, spread: null, tokenRewards: null };
    },
    dispose() {},
  };
}
