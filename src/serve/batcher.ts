/**
 * Dynamic batching: requests that arrive while the model is busy (or within `windowMs` of the first)
 * wait in a queue; the next batch takes every waiting row that samples with the same settings
 * (temperature, top-p, token budget: `generate` applies them batch-wide), up to `maxBatch` rows, as one
 * left-padded `generate` call. Each row keeps its own random stream — key streamKey(request seed, choice
 * index), exactly `rlhf generate --seed S`'s stream of its first prompt for choice 0 — so a sample does not
 * depend on its batch-mates; greedy rows are the unbatched answer up to float rounding of the padded batch.
 */
import type { CausalLM } from '../models/common.js';
import { type Completion, generate } from '../generate/generate.js';
import { streamKey } from '../random.js';

/** One row to generate: a prompt's ids, its stream key, and the batch-wide settings it needs. */
export interface BatchRow {
  ids: readonly number[];
  key: number;
  maxNewTokens: number;
  temperature: number;
  topP: number;
  stop: readonly string[];
  /** Called for each token as the batch decodes it (a streamed response writes it out at once). */
  onToken?: (token: number, logprob: number) => void;
}

interface Pending {
  rows: BatchRow[];
  resolve: (c: Completion[]) => void;
  reject: (e: Error) => void;
}

/** The stream key of choice `index` of a request with seed `seed`. */
export const rowKey = (seed: number, index: number): number => streamKey(seed, index);

/** Rows of one group share these: what `generate` takes batch-wide. */
const settingsKey = (r: BatchRow): string => JSON.stringify([r.maxNewTokens, r.temperature, r.topP, r.stop]);

/** Collects requests into batches for one model (see the header). */
export class Batcher {
  private queue: Pending[] = [];
  private timer: NodeJS.Timeout | null = null;
  /** Rows of every batch run so far, in order (the server logs each). */
  readonly sizes: number[] = [];

  constructor(
    private readonly model: CausalLM,
    private readonly decode: (ids: readonly number[]) => string,
    private readonly opts: { maxBatch: number; windowMs: number; log?: (line: string) => void },
  ) {}

  /** Generates `rows` (one request's choices) in some batch; resolves with their completions in order. */
  submit(rows: BatchRow[]): Promise<Completion[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ rows, resolve, reject });
      this.timer ??= setTimeout(() => this.drain(), this.opts.windowMs);
    });
  }

  private drain(): void {
    this.timer = null;
    const first = this.queue[0];
    if (!first) return;
    const key = settingsKey(first.rows[0]!);
    const taken: Pending[] = [];
    let rows = 0;
    this.queue = this.queue.filter((p) => {
      const fits = settingsKey(p.rows[0]!) === key && (taken.length === 0 || rows + p.rows.length <= this.opts.maxBatch);
      if (fits) {
        taken.push(p);
        rows += p.rows.length;
      }
      return !fits;
    });
    this.run(taken);
    // Requests that arrived during this batch wait in the socket buffers; one macrotask lets them enqueue.
    if (this.queue.length > 0) this.timer ??= setTimeout(() => this.drain(), this.opts.windowMs);
  }

  private run(taken: Pending[]): void {
    const rows = taken.flatMap((p) => p.rows);
    const s = rows[0]!;
    this.sizes.push(rows.length);
    this.opts.log?.(`batch of ${rows.length} rows (${taken.length} request${taken.length > 1 ? 's' : ''})`);
    let out: Completion[];
    try {
      out = generate(this.model, rows.map((r) => r.ids), {
        maxNewTokens: s.maxNewTokens, temperature: s.temperature, topP: s.topP, topK: 0, streamKeys: rows.map((r) => r.key),
        ...(s.stop.length ? { stopStrings: s.stop, decode: this.decode } : {}),
        ...(rows.some((r) => r.onToken) ? { onToken: (i: number, token: number, lp: number) => rows[i]!.onToken?.(token, lp) } : {}),
      });
    } catch (e) {
      for (const p of taken) p.reject(e as Error);
      return;
    }
    let at = 0;
    for (const p of taken) {
      p.resolve(out.slice(at, at + p.rows.length));
      at += p.rows.length;
    }
  }
}
