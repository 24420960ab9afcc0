/**
 * People as the annotator of iterated RLHF (`rlhf train online --annotator app`): each round's comparisons
 * become items of a pairwise project in the feedback app's database, and the round waits until every item
 * has its `overlap` labels, then answers with each item's verdict — the sign of the summed canonical
 * margins ("both bad" and "can't judge" left out; a tie is a seeded coin flip, as a Bradley–Terry
 * annotator at P = ½ would be). Resumable across restarts of either side: a round's items are tagged
 * `online:<round>:<index>` and found again, never added twice, and labels already given count.
 */
import { mulberry32 } from '../../random.js';
import { FeedbackStore } from '../../feedback/store.js';
import type { PairwiseLabel as CanonicalPair } from '../../feedback/tasks.js';
import type { AnnotationContext, Annotator, Comparison, PairwiseLabel } from './annotator.js';

/** Where the app annotator puts its items and how often it looks for labels. */
export interface AppAnnotatorOptions {
  /** The feedback app's database (it must exist). */
  db: string;
  /** A pairwise project in it. */
  project: string;
  /** Seconds between looks at the database while waiting (default 2). */
  pollSeconds?: number;
}

const sleep = (ms: number, signal?: AbortSignal) => new Promise<void>((resolve, reject) => {
  if (signal?.aborted) return reject(new Error('interrupted while waiting for the app\'s labels'));
  const t = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => { clearTimeout(t); reject(new Error('interrupted while waiting for the app\'s labels')); }, { once: true });
});

/** The round's items in the project: found by their tag, else added (all in one transaction). */
function roundItems(store: FeedbackStore, project: string, comparisons: readonly Comparison[], round: number): number[] {
  return store.transaction(() => {
    const p = store.project(project);
    if (p.task !== 'pairwise') throw new Error(`annotator app: project '${project}' is ${p.task}, not pairwise`);
    return comparisons.map((c, i) => {
      const tag = `online:${round}:${i}`;
      const found = store.itemsBySource(project, tag);
      if (found.length > 0) return found[0]!;
      const origin = { origin: 'model' as const, model: `online round ${round}` };
      return store.addItem(p, c.prompt, [{ text: c.a, ...origin }, { text: c.b, ...origin }], undefined, tag);
    });
  });
}

/** An annotator whose answers come asynchronously (people take a while). */
export type AsyncAnnotator = Omit<Annotator, 'label'> & { label(comparisons: readonly Comparison[], ctx: AnnotationContext): Promise<PairwiseLabel[]> };

/** The feedback app as iterated RLHF's annotator. */
export function appAnnotator(o: AppAnnotatorOptions): AsyncAnnotator {
  return {
    id: `app(${o.project})`,
    async label(comparisons: readonly Comparison[], ctx: AnnotationContext): Promise<PairwiseLabel[]> {
      const store = FeedbackStore.openExisting(o.db);
      try {
        const items = roundItems(store, o.project, comparisons, ctx.round);
        const overlap = store.project(o.project).overlap;
        for (;;) {
          const labels = store.labels(o.project).filter((l) => items.includes(l.itemId));
          const byItem = new Map<number, CanonicalPair[]>();
          for (const l of labels) byItem.set(l.itemId, [...(byItem.get(l.itemId) ?? []), l.label as CanonicalPair]);
          if (items.every((id) => (byItem.get(id)?.length ?? 0) >= overlap)) {
            const coin = mulberry32(ctx.seed);
            return comparisons.map((c, i) => {
              const sum = byItem.get(items[i]!)!.filter((l) => !l.bothBad && !l.cantJudge).reduce((s, l) => s + l.margin, 0);
              const aWins = sum > 0 || (sum === 0 && coin() < 0.5);
              return { prompt: c.prompt, chosen: aWins ? c.a : c.b, rejected: aWins ? c.b : c.a, annotator: 'app' };
            });
          }
          await sleep((o.pollSeconds ?? 2) * 1000, ctx.signal);
        }
      } finally {
        store.close();
      }
    },
  };
}
