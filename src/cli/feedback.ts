/** `rlhf feedback …`: the human-feedback web app (src/app/server.ts) and its database (src/feedback/). */
import { writeAtomic } from '../atomic.js';
import { generateItems } from '../app/candidates.js';
import { EXPORT_FORMATS, type ExportFormat, exportRows, importItems } from '../feedback/io.js';
import { agreement, behaviour } from '../feedback/quality.js';
import { FeedbackStore, type ProjectSettings } from '../feedback/store.js';
import { SELECTION_RULES } from '../feedback/selection.js';
import { TASK_TYPES } from '../feedback/tasks.js';
import { type OptionSpec, UsageError } from './args.js';
import type { Command } from './main.js';

const DB: OptionSpec = { name: 'db', type: 'string', default: 'feedback.sqlite', help: 'the app\'s SQLite database file (created when missing)' };
const PROJECT: OptionSpec = { name: 'project', type: 'string', help: 'project name (required)' };

function required(o: Record<string, unknown>, ...names: string[]): void {
  for (const n of names) if (o[n] === undefined || o[n] === '') throw new UsageError(`--${n} is required`);
}

/** Runs `fn` on the database (which must exist unless `create`), closing it afterwards. */
function withStore<T>(db: string, fn: (s: FeedbackStore) => T, create = false): T {
  const store = new FeedbackStore(db, { mustExist: !create });
  try {
    return fn(store);
  } finally {
    store.close();
  }
}

/** Serves until SIGINT or SIGTERM. */
async function serve(o: Record<string, unknown>): Promise<{ url: string; stopped: string }> {
  // The web stack loads only for this command.
  const { startFeedbackServer } = await import('../app/server.js');
  const s = await startFeedbackServer({
    db: o.db as string, port: o.port as number, host: o.host as string, rateLimit: o['rate-limit'] as number, authRateLimit: o['auth-rate-limit'] as number,
  });
  process.stderr.write(`[feedback] listening on ${s.url} (database ${o.db as string})\n`);
  if (s.adminInvite) process.stderr.write(`[feedback] first start: open ${s.url}${s.adminInvite} to become the admin (valid 24 h, once)\n`);
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  await s.close();
  return { url: s.url, stopped: signal };
}

export const feedbackCommands: Record<string, Command> = {
  'feedback serve': {
    summary: 'the human-feedback web app: annotation (every task type, keyboard-first), admin view, agreement and gold accuracy',
    options: [
      DB,
      { name: 'port', type: 'number', default: 8787, help: 'TCP port (0: any free one)', integer: true, min: 0, max: 65535 },
      { name: 'host', type: 'string', default: '127.0.0.1', help: 'address to listen on' },
      { name: 'rate-limit', type: 'number', default: 600, help: 'requests per minute per session', integer: true, min: 1 },
      { name: 'auth-rate-limit', type: 'number', default: 20, help: 'sign-in and invite requests per minute per address', integer: true, min: 1 },
    ],
    run: serve,
  },
  'feedback project': {
    summary: 'create a project: task type, overlap, guidelines, gold rate, selection rule',
    options: [
      DB, { name: 'name', type: 'string', help: 'project name (required)' },
      { name: 'task', type: 'string', default: 'pairwise', help: Object.keys(TASK_TYPES).join(' | ') },
      { name: 'overlap', type: 'number', default: 2, help: 'annotators per item', integer: true, min: 1, max: 50 },
      { name: 'guidelines', type: 'string', default: '', help: 'guideline text (version 1)' },
      { name: 'gold-rate', type: 'number', default: 0.1, help: 'share of gold items shown', min: 0, max: 1 },
      { name: 'selection', type: 'string', default: 'random', help: Object.keys(SELECTION_RULES).join(' | ') },
      { name: 'seed', type: 'number', default: 0, help: 'seed of shown orders and selection', integer: true, min: 0 },
    ],
    async run(o) {
      required(o, 'name');
      const settings: Partial<ProjectSettings> = { goldRate: o['gold-rate'] as number, selection: o.selection as ProjectSettings['selection'], seed: o.seed as number };
      return withStore(o.db as string, (s) => s.createProject({ name: o.name as string, task: o.task as string, overlap: o.overlap as number, guidelines: (o.guidelines as string) || undefined, settings }), true);
    },
  },
  'feedback import': {
    summary: 'add items to a project from a JSON Lines file ({"prompt", "responses": [...], "gold"?}); all or nothing',
    options: [DB, PROJECT, { name: 'file', type: 'string', help: 'the JSON Lines file (required)' }],
    async run(o) {
      required(o, 'project', 'file');
      const store = FeedbackStore.openExisting(o.db as string);
      try {
        return await importItems(store, o.project as string, o.file as string);
      } finally {
        store.close();
      }
    },
  },
  'feedback generate': {
    summary: 'items generated on demand by a local policy (the embedded stories260K by default), model, sampling and seed stored per candidate',
    options: [
      DB, PROJECT,
      { name: 'prompt', type: 'strings', default: [], help: 'a prompt (repeatable; required)' },
      { name: 'model', type: 'string', default: 'stories260k', help: "a model directory, or 'stories260k' (embedded)" },
      { name: 'per-prompt', type: 'number', help: "samples per prompt (default: as many as the task shows, at most 4)", integer: true, min: 1, max: 9 },
      { name: 'max-new-tokens', type: 'number', default: 48, help: 'tokens per sample at most', integer: true, min: 1 },
      { name: 'temperature', type: 'number', default: 1, help: '0 is greedy', min: 0 },
      { name: 'top-p', type: 'number', default: 1, help: 'nucleus mass in (0, 1]', min: 0, max: 1 },
      { name: 'seed', type: 'number', default: 0, help: 'seed of the sampling streams', integer: true, min: 0 },
    ],
    async run(o) {
      required(o, 'project');
      if ((o.prompt as string[]).length === 0) throw new UsageError('--prompt is required (repeatable)');
      return withStore(o.db as string, (s) => generateItems(s, o.project as string, {
        prompts: o.prompt as string[], model: o.model as string, perPrompt: o['per-prompt'] as number | undefined, maxNewTokens: o['max-new-tokens'] as number,
        temperature: o.temperature as number, topP: o['top-p'] as number, seed: o.seed as number,
      }));
    },
  },
  'feedback invite': {
    summary: 'a one-time invite token for an annotator or admin (open /?invite=TOKEN on the server)',
    options: [DB, { name: 'role', type: 'string', default: 'annotator', help: 'annotator | admin' }],
    async run(o) {
      return withStore(o.db as string, (s) => {
        const token = s.createInvite(o.role as 'admin' | 'annotator');
        return { role: o.role, token, path: `/?invite=${token}` };
      }, true);
    },
  },
  'feedback export': {
    summary: 'a project\'s labels as JSON Lines for training: trl (pairs) | kto | ranking | rating | spans (fine-grained) | raw (every label, with annotator, strength, time, shown order, guideline version, critique)',
    options: [
      DB, PROJECT,
      { name: 'format', type: 'string', default: 'raw', help: EXPORT_FORMATS.join(' | ') },
      { name: 'axis', type: 'string', help: 'rating axis for --format rating (default: the project\'s first)' },
      { name: 'out', type: 'string', help: 'output file, written atomically (required)' },
    ],
    async run(o) {
      required(o, 'project', 'out');
      const format = o.format as ExportFormat;
      if (!EXPORT_FORMATS.includes(format)) throw new UsageError(`--format must be one of ${EXPORT_FORMATS.join(', ')}, got '${format}'`);
      const rows = withStore(o.db as string, (s) => exportRows(s, o.project as string, format, { axis: o.axis as string | undefined }));
      writeAtomic(o.out as string, rows.map((r) => JSON.stringify(r) + '\n').join(''));
      return { out: o.out, format, rows: rows.length };
    },
  },
  'feedback stats': {
    summary: 'a project\'s progress, per-annotator gold accuracy and behaviour, and agreement (κ, α)',
    options: [DB, PROJECT],
    async run(o) {
      required(o, 'project');
      return withStore(o.db as string, (s) => {
        const p = s.project(o.project as string);
        const labels = s.labels(p.name);
        const lengths = (id: number) => s.itemCandidates(id).candidates.map((c) => c.text.length);
        return { progress: s.progress(p.name), annotators: behaviour(labels, lengths), agreement: agreement(labels, p.overlap) };
      });
    },
  },
};
