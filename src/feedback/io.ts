/**
 * Items into a project from a JSON Lines file, and labels out of it in the formats the trainers read.
 *
 * Import, one item per line (blank lines skipped):
 *     {"prompt": "…", "responses": ["…", {"text": "…", "model": "m", "sampling": {…}, "seed": 3}], "gold": {"better": 0}}
 * The whole file is checked before anything is stored, and stored in one transaction: a malformed line
 * is an error naming the file, the line and the field, and leaves the project as it was.
 */
import { FeedbackError, readLines } from '../data/load.js';
import type { FeedbackFormat } from '../data/types.js';
import { reliability } from './quality.js';
import { FeedbackStore, type LabelRow, type NewCandidate, StoreError } from './store.js';
import type { TaskLabels } from './tasks.js';

/** One item of an import file, checked. */
interface ImportLine {
  prompt: string;
  responses: NewCandidate[];
  gold?: unknown;
}

function parseImportLine(raw: unknown): ImportLine {
  const fail = (field: string, reason: string) => Object.assign(new Error(`field '${field}': ${reason}`), { field });
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw fail('(record)', 'expected a JSON object');
  const r = raw as Record<string, unknown>;
  const unknownKey = Object.keys(r).find((k) => !['prompt', 'responses', 'gold'].includes(k));
  if (unknownKey) throw fail(unknownKey, 'unknown field (expected prompt, responses, gold)');
  if (typeof r.prompt !== 'string' || r.prompt === '') throw fail('prompt', 'expected a non-empty string');
  if (!Array.isArray(r.responses) || r.responses.length === 0) throw fail('responses', 'expected a non-empty list');
  const responses = r.responses.map((x, i): NewCandidate => {
    if (typeof x === 'string') return { text: x, origin: 'import' };
    const c = x as Record<string, unknown> | null;
    if (typeof c !== 'object' || c === null || typeof c.text !== 'string') throw fail(`responses[${i}]`, 'expected a string or {text, model?, sampling?, seed?}');
    if (c.seed !== undefined && !Number.isInteger(c.seed)) throw fail(`responses[${i}].seed`, 'expected an integer');
    if (c.model !== undefined && typeof c.model !== 'string') throw fail(`responses[${i}].model`, 'expected a string');
    return { text: c.text, origin: 'import', model: (c.model as string | undefined) ?? null, sampling: c.sampling, seed: (c.seed as number | undefined) ?? null };
  });
  return { prompt: r.prompt, responses, gold: r.gold };
}

/** Imports a file's items into a project (all or nothing); returns how many were added. */
export async function importItems(store: FeedbackStore, projectName: string, file: string): Promise<{ items: number; gold: number }> {
  store.project(projectName); // an unknown project fails before the file is read
  const lines: { line: number; text: string }[] = [];
  for await (const l of readLines(file, { utf8: 'error' })) lines.push(l);
  return storeImport(store, projectName, file, lines);
}

/** The same from the file's text (an upload), `name` standing for the file in errors. */
export function importItemsFromText(store: FeedbackStore, projectName: string, text: string, name: string): { items: number; gold: number } {
  return storeImport(store, projectName, name, text.split('\n').map((t, i) => ({ line: i + 1, text: t.endsWith('\r') ? t.slice(0, -1) : t })));
}

function storeImport(store: FeedbackStore, projectName: string, file: string, raw: readonly { line: number; text: string }[]): { items: number; gold: number } {
  const project = store.project(projectName);
  const lines: { line: number; item: ImportLine }[] = [];
  for (const { line, text } of raw) {
    if (text.trim() === '') continue;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new FeedbackError(file, line, `invalid JSON: ${(e as Error).message}`);
    }
    try {
      lines.push({ line, item: parseImportLine(json) });
    } catch (e) {
      throw new FeedbackError(file, line, (e as Error).message, (e as { field?: string }).field);
    }
  }
  if (lines.length === 0) throw new FeedbackError(file, 0, 'no items in the file');
  let gold = 0;
  store.transaction(() => {
    for (const { line, item } of lines) {
      try {
        store.addItem(project, item.prompt, item.responses, item.gold);
      } catch (e) {
        if (e instanceof StoreError) throw new FeedbackError(file, line, e.message);
        throw e;
      }
      if (item.gold !== undefined) gold++;
    }
  });
  return { items: lines.length, gold };
}

/** The export formats: `raw` (every label, losslessly) and one per trainer's data format. */
export const EXPORT_FORMATS = ['raw', 'trl', 'kto', 'ranking', 'rating', 'spans'] as const;
/** An export format's name. */
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** Which export feeds each feedback format a loader reads from `app:FILE#project`. */
export const EXPORT_FOR_FEEDBACK: Partial<Record<FeedbackFormat, ExportFormat>> = { pairwise: 'trl', ranking: 'ranking', rating: 'rating', binary: 'kto' };

type Row = Record<string, unknown>;
type Texts = { prompt: string; texts: string[] };

/** What one label becomes in each trainer format (none, one or several rows); gold items are left out. */
const CONVERTERS: Record<Exclude<ExportFormat, 'raw'>, (l: LabelRow, t: Texts, axis: string, scale: [number, number]) => Row[]> = {
  trl: (l, t) => {
    if (l.task === 'pairwise') {
      const p = l.label as TaskLabels['pairwise'];
      if (p.bothBad || p.cantJudge || p.margin === 0) return [];
      const [c, r] = p.margin > 0 ? [0, 1] : [1, 0];
      return [{ prompt: t.prompt, chosen: t.texts[c], rejected: t.texts[r], margin: Math.abs(p.margin) }];
    }
    if (l.task === 'ranking') return impliedPairs((l.label as TaskLabels['ranking']).ranks).map(([c, r]) => ({ prompt: t.prompt, chosen: t.texts[c], rejected: t.texts[r] }));
    if (l.task === 'correction') return [{ prompt: t.prompt, chosen: (l.label as TaskLabels['correction']).text, rejected: t.texts[0] }];
    return [];
  },
  kto: (l, t) => {
    const thumb = l.task === 'rating' ? (l.label as TaskLabels['rating']).thumb : null;
    return thumb === null ? [] : [{ prompt: t.prompt, completion: t.texts[0], label: thumb === 'up' }];
  },
  ranking: (l, t) => {
    if (l.task !== 'ranking') return [];
    const ranks = (l.label as TaskLabels['ranking']).ranks;
    // The ranking format is a total order: ties keep the candidates' own order (the raw export keeps them).
    const order = ranks.map((r, i) => [r, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map(([, i]) => i);
    return [{ prompt: t.prompt, responses: t.texts, ranking: order, ties: new Set(ranks).size < ranks.length }];
  },
  spans: (l, t) => {
    // Fine-grained feedback: character spans [start, end) of the response marked +1 (good) or −1 (bad);
    // per-token labels follow from a tokenizer's offsets (unlabelled tokens masked).
    if (l.task !== 'spans') return [];
    return [{ prompt: t.prompt, response: t.texts[0], spans: (l.label as TaskLabels['spans']).spans }];
  },
  rating: (l, t, axis, scale) => {
    if (l.task !== 'rating') return [];
    return [{ prompt: t.prompt, response: t.texts[0], score: (l.label as TaskLabels['rating']).scores[axis], scale }];
  },
};

/** The pairs (better, worse) a ranking with ties implies: every two candidates of different rank. */
export function impliedPairs(ranks: readonly number[]): [number, number][] {
  const pairs: [number, number][] = [];
  for (let i = 0; i < ranks.length; i++) for (let j = 0; j < ranks.length; j++) if (ranks[i]! < ranks[j]!) pairs.push([i, j]);
  return pairs;
}

/**
 * A project's labels as rows of `format`. Every row carries the annotator, their reliability weight
 * (quality.ts) and the label's id; `raw` has one row per label with everything stored (answer as given
 * and canonical, strength, critique, time, shown order, guideline version, selection rule and probability,
 * the candidates with their provenance). `axis` picks the rating axis of the `rating` format.
 */
export function exportRows(store: FeedbackStore, projectName: string, format: ExportFormat, opts: { axis?: string } = {}): Row[] {
  const project = store.project(projectName);
  const labels = store.labels(projectName);
  const weights = reliability(labels);
  const axis = opts.axis ?? project.settings.axes[0]!;
  if (format === 'rating' && !project.settings.axes.includes(axis)) throw new StoreError(400, `no axis '${axis}' in project '${projectName}' (axes: ${project.settings.axes.join(', ')})`);
  const cache = new Map<number, ReturnType<FeedbackStore['itemCandidates']>>();
  const item = (id: number) => cache.get(id) ?? cache.set(id, store.itemCandidates(id)).get(id)!;
  return labels.flatMap((l): Row[] => {
    const it = item(l.itemId);
    const who = { annotator: l.annotator, weight: weights.get(l.annotatorId)!.weight, labelId: l.id };
    if (format === 'raw') {
      return [{ ...who, project: projectName, item: l.itemId, task: l.task, prompt: it.prompt, candidates: it.candidates, answer: l.answer, label: l.label,
        critique: l.critique, shown: l.shown, guidelineVersion: l.guidelineVersion, timeMs: l.timeMs, gold: it.gold, goldCorrect: l.goldCorrect,
        selection: l.selection, createdAt: new Date(l.createdAt).toISOString() }];
    }
    if (l.isGold) return [];
    const rows = CONVERTERS[format](l, { prompt: it.prompt, texts: it.candidates.map((c) => c.text) }, axis, [project.settings.scaleMin, project.settings.scaleMax]);
    return rows.map((r) => ({ ...r, ...who, ...(l.critique !== null ? { critique: l.critique } : {}) }));
  });
}

/** The prefix of a feedback app's project as a data path: `app:FILE.sqlite#project`. */
export const APP_PREFIX = 'app:';

/**
 * The lines a loader reads from `app:FILE.sqlite#project`: the project's export in the shape of a feedback
 * format (pairwise ← trl, ranking, rating, binary ← kto), one JSON object per line, numbered from 1. The
 * database must exist (it is never created here).
 */
export async function* appLines(path: string, format: FeedbackFormat): AsyncGenerator<{ line: number; text: string }> {
  const hash = path.lastIndexOf('#');
  if (hash < 0 || hash === path.length - 1) throw new Error(`${path}: expected app:FILE.sqlite#project`);
  const file = path.slice(APP_PREFIX.length, hash);
  const exportFormat = EXPORT_FOR_FEEDBACK[format];
  if (!exportFormat) throw new Error(`${path}: a feedback app exports ${Object.keys(EXPORT_FOR_FEEDBACK).join(', ')} records, not ${format}`);
  const store = FeedbackStore.openExisting(file);
  let rows: Row[];
  try {
    rows = exportRows(store, path.slice(hash + 1), exportFormat);
  } finally {
    store.close();
  }
  let line = 0;
  for (const r of rows) yield { line: ++line, text: JSON.stringify(r) };
}
