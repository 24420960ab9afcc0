/**
 * Model in the loop: a project's items generated on demand by a local policy — any model rlhf-ts loads,
 * the embedded stories260K by default. Each prompt gets as many samples as the project's task shows (two
 * for pairwise), each stored as a candidate with the model, the sampling settings (and its stream) and the
 * seed, so a label can always be traced to what made the text it judged. Sample j of prompt i uses stream
 * i·k + j under the seed: the same call on the same model reproduces the same candidates.
 */
import { generate } from '../generate/generate.js';
import { loadModel, resolveModelDir } from '../models/hub.js';
import { cannotFit, loadTokenizer } from '../text/index.js';
import { type FeedbackStore, StoreError } from '../feedback/store.js';
import { TASK_TYPES } from '../feedback/tasks.js';

/** What to generate; every field but `prompts` has a default. */
export interface GenerateItemsOptions {
  /** The prompts, one item each. */
  prompts: string[];
  /** A model directory, or 'stories260k' (the embedded default). */
  model?: string;
  /** Samples per prompt (default: the most the task shows, at most 4). */
  perPrompt?: number;
  maxNewTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
}

/** Generates one item per prompt into a project (all stored in one transaction); returns the counts. */
export function generateItems(store: FeedbackStore, projectName: string, o: GenerateItemsOptions): { items: number; candidates: number; model: string } {
  const project = store.project(projectName);
  const [lo, hi] = TASK_TYPES[project.task].candidates;
  const k = o.perPrompt ?? Math.min(hi, 4);
  if (!Number.isInteger(k) || k < lo || k > hi) throw new StoreError(400, `a ${project.task} item shows ${lo === hi ? lo : `${lo}–${hi}`} responses; perPrompt ${k} does not fit`);
  if (!Array.isArray(o.prompts) || o.prompts.length === 0 || !o.prompts.every((p) => typeof p === 'string' && p !== '')) {
    throw new StoreError(400, "field 'prompts': expected a non-empty list of non-empty strings");
  }
  const name = o.model ?? 'stories260k';
  const sampling = { maxNewTokens: o.maxNewTokens ?? 48, temperature: o.temperature ?? 1, topK: o.topK ?? 0, topP: o.topP ?? 1 };
  const seed = o.seed ?? 0;
  const dir = resolveModelDir(name);
  const model = loadModel(dir);
  try {
    const tok = loadTokenizer(dir, { eosIds: model.config.eosTokenIds });
    const room = model.config.maxPositions - sampling.maxNewTokens;
    const ids = o.prompts.map((p, i) => {
      const e = cannotFit(tok, room, p) ? null : tok.encode(p, { addBos: true });
      if (!e || e.length > room) throw new StoreError(400, `prompt ${i + 1} is longer than the ${room} tokens the model leaves with maxNewTokens ${sampling.maxNewTokens}`);
      return e;
    });
    const rows = ids.flatMap((p) => Array.from({ length: k }, () => p));
    const completions = generate(model, rows, { ...sampling, seed, streams: rows.map((_, r) => r) });
    const texts = completions.map((c, r) => tok.decode([...rows[r]!, ...c.tokens]).slice(tok.decode(rows[r]!).length));
    store.transaction(() => {
      o.prompts.forEach((prompt, i) => {
        store.addItem(project, prompt, Array.from({ length: k }, (_, j) => ({
          text: texts[i * k + j]!, origin: 'model' as const, model: name, sampling: { ...sampling, stream: i * k + j }, seed,
        })));
      });
    });
    return { items: o.prompts.length, candidates: o.prompts.length * k, model: name };
  } finally {
    model.dispose();
  }
}
