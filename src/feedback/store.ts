/**
 * The feedback app's storage, behind one class so that a server database can take SQLite's place later:
 * projects with versioned guidelines, prompts, candidates (with the model, sampling settings and seed that
 * made them), items (the candidates shown together), annotators with roles, invites and sessions,
 * assignments with leases, and labels (the answer as given, its canonical form, the shown order, the
 * guideline version, the time taken).
 *
 * SQLite through better-sqlite3, one file in WAL mode with `synchronous = FULL`: every write that returns
 * has committed its transaction, so a label whose submission was acknowledged survives a `kill -9` (and a
 * power cut), and a write that throws leaves nothing behind. Statements are synchronous: one request's
 * transaction never interleaves with another's.
 */
import Database from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import { mulberry32, streamKey } from '../random.js';
import { SELECTION_RULES, type SelectionRule, type Candidate as SelectionCandidate } from './selection.js';
import { canonicalLabel, checkTaskType, TASK_TYPES, type TaskLabels, type TaskSettings, type TaskType } from './tasks.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS projects (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, task TEXT NOT NULL, overlap INTEGER NOT NULL,
  settings TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS guidelines (
  project_id INTEGER NOT NULL REFERENCES projects(id), version INTEGER NOT NULL, text TEXT NOT NULL,
  created_at INTEGER NOT NULL, PRIMARY KEY (project_id, version));
CREATE TABLE IF NOT EXISTS prompts (
  id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL REFERENCES projects(id), text TEXT NOT NULL, source TEXT);
CREATE TABLE IF NOT EXISTS candidates (
  id INTEGER PRIMARY KEY, prompt_id INTEGER NOT NULL REFERENCES prompts(id), text TEXT NOT NULL,
  origin TEXT NOT NULL, model TEXT, sampling TEXT, seed INTEGER, parent_id INTEGER REFERENCES candidates(id),
  created_by INTEGER REFERENCES annotators(id), created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS items (
  id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL REFERENCES projects(id),
  prompt_id INTEGER NOT NULL REFERENCES prompts(id), candidate_ids TEXT NOT NULL, gold TEXT, created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS items_project ON items(project_id);
CREATE TABLE IF NOT EXISTS annotators (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL CHECK (role IN ('admin', 'annotator')),
  password_hash TEXT, paused INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS invites (
  token_hash TEXT PRIMARY KEY, role TEXT NOT NULL, expires_at INTEGER NOT NULL, used_by INTEGER REFERENCES annotators(id));
CREATE TABLE IF NOT EXISTS sessions (
  token_hash TEXT PRIMARY KEY, annotator_id INTEGER NOT NULL REFERENCES annotators(id), expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS assignments (
  id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL REFERENCES items(id), annotator_id INTEGER NOT NULL REFERENCES annotators(id),
  shown TEXT NOT NULL, rule TEXT NOT NULL, probability REAL NOT NULL, leased_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('leased', 'done')));
CREATE INDEX IF NOT EXISTS assignments_item ON assignments(item_id, status, expires_at);
CREATE INDEX IF NOT EXISTS assignments_annotator ON assignments(annotator_id, status);
CREATE TABLE IF NOT EXISTS labels (
  id INTEGER PRIMARY KEY, assignment_id INTEGER NOT NULL UNIQUE REFERENCES assignments(id),
  item_id INTEGER NOT NULL REFERENCES items(id), annotator_id INTEGER NOT NULL REFERENCES annotators(id),
  project_id INTEGER NOT NULL REFERENCES projects(id), task TEXT NOT NULL, answer TEXT NOT NULL, label TEXT NOT NULL,
  critique TEXT, shown TEXT NOT NULL, guideline_version INTEGER NOT NULL, time_ms INTEGER NOT NULL,
  gold_correct INTEGER, created_at INTEGER NOT NULL, UNIQUE (item_id, annotator_id));
CREATE INDEX IF NOT EXISTS labels_project ON labels(project_id, item_id);
`;

/** A project's settings beyond its task type and overlap (stored as JSON; defaults below). */
export interface ProjectSettings extends TaskSettings {
  /** Share of assignments drawn from the gold (known-answer) items while any is left for the annotator. */
  goldRate: number;
  /** An annotator whose gold accuracy falls below this, after `minGold` gold labels, is paused. */
  pauseBelow: number;
  minGold: number;
  /** How long an assignment is held before it returns to the queue, in seconds. */
  leaseSeconds: number;
  /** Which item comes next (SELECTION_RULES). */
  selection: SelectionRule;
  /** Seed of the shown orders, gold draws and selection. */
  seed: number;
}

/** The defaults of every project setting. */
export const PROJECT_DEFAULTS: ProjectSettings = {
  strengthMax: 3, axes: ['helpful', 'harmless', 'fluent'], scaleMin: 1, scaleMax: 5,
  goldRate: 0.1, pauseBelow: 0.6, minGold: 5, leaseSeconds: 600, selection: 'random', seed: 0,
};

/** A project as stored. */
export interface Project {
  id: number;
  name: string;
  task: TaskType;
  /** How many annotators label each (non-gold) item. */
  overlap: number;
  settings: ProjectSettings;
  /** The newest guidelines' version (0 before any). */
  guidelineVersion: number;
}

/** A request the store refuses; `status` is the HTTP status the web layer answers with. Nothing is stored. */
export class StoreError extends Error {
  constructor(readonly status: 400 | 403 | 404 | 409 | 410, message: string) {
    super(message);
    this.name = 'StoreError';
  }
}

/** A person: an admin or an annotator. */
export interface Annotator {
  id: number;
  name: string;
  role: 'admin' | 'annotator';
  paused: boolean;
  passwordHash: string | null;
}

/** One candidate as the store holds it, provenance included (never sent to annotators). */
export interface CandidateRow {
  id: number;
  text: string;
  origin: 'model' | 'import' | 'correction';
  model: string | null;
  sampling: unknown;
  seed: number | null;
}

/** An item leased to an annotator: what to show, in the order to show it. */
export interface Assignment {
  id: number;
  itemId: number;
  project: string;
  task: TaskType;
  prompt: string;
  /** The candidates' texts in screen order (no ids, no models: identities stay hidden). */
  shownTexts: string[];
  expiresAt: number;
  guidelineVersion: number;
}

/** What the next-item request gives: an assignment, or why there is none. */
export type NextResult = { kind: 'item'; assignment: Assignment } | { kind: 'done' } | { kind: 'paused' };

/** A candidate to add: its text and how it was made. */
export interface NewCandidate {
  text: string;
  origin?: 'model' | 'import';
  model?: string | null;
  sampling?: unknown;
  seed?: number | null;
}

const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');

/** One SQLite file holding every project of a feedback app. */
export class FeedbackStore {
  readonly db: Database.Database;
  /** Milliseconds since the epoch; tests move it to expire leases without waiting. */
  now: () => number;

  constructor(readonly path: string, opts: { now?: () => number; mustExist?: boolean } = {}) {
    try {
      this.db = new Database(path, { fileMustExist: opts.mustExist ?? false });
    } catch (e) {
      throw new Error(`${path}: ${(e as Error).message}`, { cause: e });
    }
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    this.now = opts.now ?? Date.now;
  }

  /** Opens a database that must already exist (readers: the data loaders, exports). */
  static openExisting(path: string): FeedbackStore {
    return new FeedbackStore(path, { mustExist: true });
  }

  close(): void {
    this.db.close();
  }

  /** A value kept across restarts (e.g. the cookie-signing secret), made by `make` the first time. */
  secret(key: string, make: () => string = () => randomBytes(32).toString('base64url')): string {
    const row = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    if (row) return row.value;
    const value = make();
    this.db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run(key, value);
    return (this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string }).value;
  }

  /** A JSON value kept under `key` (app state such as the last reward-model check), or null. */
  getMeta<T>(key: string): T | null {
    const row = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    return row ? (JSON.parse(row.value) as T) : null;
  }

  setMeta(key: string, value: unknown): void {
    this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, JSON.stringify(value));
  }

  /** The keys of the kept values that start with `prefix`. */
  metaKeys(prefix: string): string[] {
    return (this.db.prepare('SELECT key FROM meta WHERE substr(key, 1, ?) = ?').all(prefix.length, prefix) as { key: string }[]).map((r) => r.key);
  }

  /** Whether any admin exists yet. */
  hasAdmin(): boolean {
    return this.db.prepare("SELECT 1 FROM annotators WHERE role = 'admin'").get() !== undefined;
  }

  // ——— projects ———

  /** Creates a project; an unknown task type, bad overlap or setting is refused with nothing stored. */
  createProject(spec: { name: string; task: string; overlap?: number; guidelines?: string; settings?: Partial<ProjectSettings> }): Project {
    if (typeof spec.name !== 'string' || !/^[A-Za-z0-9][\w.-]{0,63}$/.test(spec.name)) {
      throw new StoreError(400, `project name must be 1–64 letters, digits, '_', '.' or '-' (starting with a letter or digit), got ${JSON.stringify(spec.name)}`);
    }
    let task: TaskType;
    try {
      task = checkTaskType(spec.task);
    } catch (e) {
      throw new StoreError(400, (e as Error).message);
    }
    const overlap = spec.overlap ?? 2;
    if (!Number.isInteger(overlap) || overlap < 1 || overlap > 50) throw new StoreError(400, `overlap must be an integer in 1…50, got ${overlap}`);
    const settings = checkSettings({ ...PROJECT_DEFAULTS, ...spec.settings });
    return this.db.transaction(() => {
      if (this.db.prepare('SELECT 1 FROM projects WHERE name = ?').get(spec.name)) throw new StoreError(409, `project '${spec.name}' exists`);
      this.db.prepare('INSERT INTO projects (name, task, overlap, settings, created_at) VALUES (?, ?, ?, ?, ?)')
        .run(spec.name, task, overlap, JSON.stringify(settings), this.now());
      if (spec.guidelines) this.addGuidelines(spec.name, spec.guidelines);
      return this.project(spec.name);
    })();
  }

  /** The project named `name` (404 naming the known ones when there is none). */
  project(name: string): Project {
    const row = this.db.prepare('SELECT id, name, task, overlap, settings FROM projects WHERE name = ?').get(name) as
      { id: number; name: string; task: TaskType; overlap: number; settings: string } | undefined;
    if (!row) {
      const known = (this.db.prepare('SELECT name FROM projects ORDER BY id').all() as { name: string }[]).map((r) => r.name);
      throw new StoreError(404, `no project '${name}' (projects: ${known.join(', ') || 'none'})`);
    }
    const v = this.db.prepare('SELECT MAX(version) AS v FROM guidelines WHERE project_id = ?').get(row.id) as { v: number | null };
    return { id: row.id, name: row.name, task: row.task, overlap: row.overlap, settings: JSON.parse(row.settings), guidelineVersion: v.v ?? 0 };
  }

  /** Every project's name, oldest first. */
  projectNames(): string[] {
    return (this.db.prepare('SELECT name FROM projects ORDER BY id').all() as { name: string }[]).map((r) => r.name);
  }

  /** Adds a new version of a project's guidelines; labels given from now on record it. Returns the version. */
  addGuidelines(project: string, text: string): number {
    const p = this.project(project);
    const version = p.guidelineVersion + 1;
    this.db.prepare('INSERT INTO guidelines (project_id, version, text, created_at) VALUES (?, ?, ?, ?)').run(p.id, version, text, this.now());
    return version;
  }

  /** The newest guidelines of a project ('' and version 0 before any). */
  guidelines(project: string): { version: number; text: string } {
    const p = this.project(project);
    const row = this.db.prepare('SELECT version, text FROM guidelines WHERE project_id = ? ORDER BY version DESC LIMIT 1').get(p.id) as
      { version: number; text: string } | undefined;
    return row ?? { version: 0, text: '' };
  }

  // ——— prompts, candidates, items ———

  /**
   * Adds one item: a prompt with its candidates (as many as the task shows) and, for gold items, the known
   * answer in the task's canonical form (pairwise: `{better: 0 | 1}`); `source` tags the prompt (e.g. the
   * round of an online run that asked for it). Not a transaction of its own, so an import of many items can be one.
   */
  addItem(project: Project, prompt: string, candidates: readonly NewCandidate[], gold?: unknown, source: string | null = null): number {
    const [lo, hi] = TASK_TYPES[project.task].candidates;
    if (candidates.length < lo || candidates.length > hi) {
      throw new StoreError(400, `a ${project.task} item has ${lo === hi ? lo : `${lo}–${hi}`} candidate(s), got ${candidates.length}`);
    }
    if (gold !== undefined && gold !== null) checkGold(project.task, gold, candidates.length);
    const now = this.now();
    const promptId = Number(this.db.prepare('INSERT INTO prompts (project_id, text, source) VALUES (?, ?, ?)').run(project.id, prompt, source).lastInsertRowid);
    const insert = this.db.prepare('INSERT INTO candidates (prompt_id, text, origin, model, sampling, seed, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
    const ids = candidates.map((c) => Number(insert.run(promptId, c.text, c.origin ?? 'import', c.model ?? null,
      c.sampling === undefined ? null : JSON.stringify(c.sampling), c.seed ?? null, now).lastInsertRowid));
    return Number(this.db.prepare('INSERT INTO items (project_id, prompt_id, candidate_ids, gold, created_at) VALUES (?, ?, ?, ?, ?)')
      .run(project.id, promptId, JSON.stringify(ids), gold === undefined || gold === null ? null : JSON.stringify(gold), now).lastInsertRowid);
  }

  /** Runs `fn` as one transaction: all of it is stored, or (when it throws) none. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /** The items whose prompt was added with `source`, in insertion order. */
  itemsBySource(projectName: string, source: string): number[] {
    const p = this.project(projectName);
    return (this.db.prepare('SELECT i.id FROM items i JOIN prompts q ON q.id = i.prompt_id WHERE i.project_id = ? AND q.source = ? ORDER BY i.id')
      .all(p.id, source) as { id: number }[]).map((r) => r.id);
  }

  /** An item's prompt and candidates, provenance included (admin and export use). */
  itemCandidates(itemId: number): { prompt: string; candidates: CandidateRow[]; gold: unknown } {
    const item = this.db.prepare('SELECT i.candidate_ids, i.gold, p.text AS prompt FROM items i JOIN prompts p ON p.id = i.prompt_id WHERE i.id = ?').get(itemId) as
      { candidate_ids: string; gold: string | null; prompt: string } | undefined;
    if (!item) throw new StoreError(404, `no item ${itemId}`);
    const get = this.db.prepare('SELECT id, text, origin, model, sampling, seed FROM candidates WHERE id = ?');
    const candidates = (JSON.parse(item.candidate_ids) as number[]).map((id) => {
      const c = get.get(id) as Omit<CandidateRow, 'sampling'> & { sampling: string | null };
      return { ...c, sampling: c.sampling === null ? null : JSON.parse(c.sampling) };
    });
    return { prompt: item.prompt, candidates, gold: item.gold === null ? null : JSON.parse(item.gold) };
  }

  // ——— people ———

  /** A one-time invite for a role, valid for `ttlSeconds`; returns the token (only its hash is stored). */
  createInvite(role: 'admin' | 'annotator', ttlSeconds = 7 * 24 * 3600): string {
    if (role !== 'admin' && role !== 'annotator') throw new StoreError(400, `role must be admin or annotator, got ${JSON.stringify(role)}`);
    const token = randomBytes(24).toString('base64url');
    this.db.prepare('INSERT INTO invites (token_hash, role, expires_at) VALUES (?, ?, ?)').run(hashToken(token), role, this.now() + ttlSeconds * 1000);
    return token;
  }

  /** Turns an unused, unexpired invite into an account named `name`; the invite cannot be used again. */
  redeemInvite(token: string, name: string, passwordHash: string | null): Annotator {
    if (typeof name !== 'string' || !/^[\w.@-]{1,64}$/.test(name)) throw new StoreError(400, `name must be 1–64 letters, digits, '_', '.', '@' or '-', got ${JSON.stringify(name)}`);
    return this.transaction(() => {
      const inv = this.db.prepare('SELECT role, expires_at, used_by FROM invites WHERE token_hash = ?').get(hashToken(String(token))) as
        { role: 'admin' | 'annotator'; expires_at: number; used_by: number | null } | undefined;
      if (!inv || inv.used_by !== null || inv.expires_at <= this.now()) throw new StoreError(403, 'this invite is unknown, used or expired');
      if (this.db.prepare('SELECT 1 FROM annotators WHERE name = ?').get(name)) throw new StoreError(409, `the name '${name}' is taken`);
      const id = Number(this.db.prepare('INSERT INTO annotators (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)')
        .run(name, inv.role, passwordHash, this.now()).lastInsertRowid);
      this.db.prepare('UPDATE invites SET used_by = ? WHERE token_hash = ?').run(id, hashToken(String(token)));
      return this.annotator(id)!;
    });
  }

  annotator(id: number): Annotator | null {
    const r = this.db.prepare('SELECT id, name, role, paused, password_hash FROM annotators WHERE id = ?').get(id) as
      { id: number; name: string; role: 'admin' | 'annotator'; paused: number; password_hash: string | null } | undefined;
    return r ? { id: r.id, name: r.name, role: r.role, paused: r.paused === 1, passwordHash: r.password_hash } : null;
  }

  annotatorByName(name: string): Annotator | null {
    const r = this.db.prepare('SELECT id FROM annotators WHERE name = ?').get(name) as { id: number } | undefined;
    return r ? this.annotator(r.id) : null;
  }

  /** Pauses or resumes an annotator (paused ones get no items). */
  setPaused(id: number, paused: boolean): void {
    this.db.prepare('UPDATE annotators SET paused = ? WHERE id = ?').run(paused ? 1 : 0, id);
  }

  /** A new session for an annotator; returns its token (the cookie's value; only its hash is stored). */
  createSession(annotatorId: number, ttlSeconds = 12 * 3600): string {
    const token = randomBytes(32).toString('base64url');
    this.db.prepare('INSERT INTO sessions (token_hash, annotator_id, expires_at) VALUES (?, ?, ?)').run(hashToken(token), annotatorId, this.now() + ttlSeconds * 1000);
    return token;
  }

  /** The annotator a session token belongs to, or null when it is unknown or expired. */
  sessionAnnotator(token: string): Annotator | null {
    const r = this.db.prepare('SELECT annotator_id, expires_at FROM sessions WHERE token_hash = ?').get(hashToken(token)) as
      { annotator_id: number; expires_at: number } | undefined;
    return r && r.expires_at > this.now() ? this.annotator(r.annotator_id) : null;
  }

  endSession(token: string): void {
    this.db.prepare('DELETE FROM sessions WHERE token_hash = ?').run(hashToken(token));
  }

  // ——— assignments and labels ———

  /**
   * The annotator's next item in a project, leased to them for the project's lease time: the one they
   * already hold, else (at the gold rate) a gold item they have not labelled, else an item with fewer than
   * `overlap` labels and live leases that they have not labelled, chosen by the project's selection rule.
   * The shown order is a seeded random permutation, stored with the assignment.
   */
  next(projectName: string, annotatorId: number): NextResult {
    return this.transaction(() => {
      const p = this.project(projectName);
      const who = this.annotator(annotatorId);
      if (!who) throw new StoreError(403, 'unknown annotator');
      if (who.paused) return { kind: 'paused' } as const;
      const now = this.now();
      const held = this.db.prepare(`SELECT a.id FROM assignments a JOIN items i ON i.id = a.item_id
        WHERE a.annotator_id = ? AND i.project_id = ? AND a.status = 'leased' AND a.expires_at > ? ORDER BY a.id LIMIT 1`).get(annotatorId, p.id, now) as { id: number } | undefined;
      if (held) return { kind: 'item', assignment: this.assignment(held.id) } as const;
      const n = (this.db.prepare('SELECT COALESCE(MAX(id), 0) AS n FROM assignments').get() as { n: number }).n;
      const rand = mulberry32(streamKey(p.settings.seed, n));
      const pick = this.pickItem(p, annotatorId, now, rand);
      if (!pick) return { kind: 'done' } as const;
      const k = (JSON.parse((this.db.prepare('SELECT candidate_ids FROM items WHERE id = ?').get(pick.itemId) as { candidate_ids: string }).candidate_ids) as number[]).length;
      const shown = shuffle(Array.from({ length: k }, (_, i) => i), rand);
      const id = Number(this.db.prepare(`INSERT INTO assignments (item_id, annotator_id, shown, rule, probability, leased_at, expires_at, status)
        VALUES (?, ?, ?, ?, ?, ?, ?, 'leased')`).run(pick.itemId, annotatorId, JSON.stringify(shown), pick.rule, pick.probability, now, now + p.settings.leaseSeconds * 1000).lastInsertRowid);
      return { kind: 'item', assignment: this.assignment(id) } as const;
    });
  }

  /** Gold first at the gold rate, else the selection rule over the eligible items; null when none is left. */
  private pickItem(p: Project, annotatorId: number, now: number, rand: () => number): { itemId: number; rule: string; probability: number } | null {
    const args = { project: p.id, who: annotatorId, now, overlap: p.overlap };
    // Per item: its labels (and whether one is this annotator's) and its live leases, each counted once.
    const counted = `WITH lab AS (SELECT item_id, COUNT(*) AS n, MAX(annotator_id = @who) AS mine FROM labels WHERE project_id = @project GROUP BY item_id),
      lease AS (SELECT a.item_id, COUNT(*) AS n FROM assignments a JOIN items j ON j.id = a.item_id
        WHERE j.project_id = @project AND a.status = 'leased' AND a.expires_at > @now GROUP BY a.item_id)
      SELECT i.id FROM items i LEFT JOIN lab ON lab.item_id = i.id LEFT JOIN lease ON lease.item_id = i.id
      WHERE i.project_id = @project AND COALESCE(lab.mine, 0) = 0`;
    const gold = this.db.prepare(`${counted} AND i.gold IS NOT NULL ORDER BY i.id`).all(args) as { id: number }[];
    const regular = this.db.prepare(`${counted} AND i.gold IS NULL AND COALESCE(lab.n, 0) + COALESCE(lease.n, 0) < @overlap ORDER BY i.id`).all(args) as { id: number }[];
    const goldDraw = rand();
    if (gold.length > 0 && (regular.length === 0 || goldDraw < p.settings.goldRate)) {
      const i = Math.floor(rand() * gold.length);
      return { itemId: gold[i]!.id, rule: 'gold', probability: (regular.length === 0 ? 1 : p.settings.goldRate) / gold.length };
    }
    if (regular.length === 0) return null;
    const rule = SELECTION_RULES[p.settings.selection];
    const outcomes = rule === SELECTION_RULES.random ? null : this.pairOutcomes(p.id);
    const pool: SelectionCandidate[] = regular.map((r) => ({ itemId: r.id, outcomes: outcomes?.get(r.id) ?? [0, 0] }));
    const chosen = rule(pool, rand);
    return { itemId: pool[chosen.index]!.itemId, rule: p.settings.selection, probability: chosen.probability * (gold.length > 0 ? 1 - p.settings.goldRate : 1) };
  }

  /** Each item's pairwise outcomes so far: wins of candidate 0 and of candidate 1 (ties half each). */
  private pairOutcomes(projectId: number): Map<number, [number, number]> {
    const rows = this.db.prepare("SELECT item_id, label FROM labels WHERE project_id = ? AND task = 'pairwise'").all(projectId) as { item_id: number; label: string }[];
    const out = new Map<number, [number, number]>();
    for (const r of rows) {
      const l = JSON.parse(r.label) as TaskLabels['pairwise'];
      if (l.bothBad || l.cantJudge) continue;
      const o = out.get(r.item_id) ?? [0, 0];
      if (l.margin > 0) o[0]++;
      else if (l.margin < 0) o[1]++;
      else (o[0] += 0.5), (o[1] += 0.5);
      out.set(r.item_id, o);
    }
    return out;
  }

  /** An assignment as its annotator sees it. */
  assignment(id: number): Assignment {
    const a = this.db.prepare(`SELECT a.id, a.item_id, a.shown, a.expires_at, p.name AS project FROM assignments a
      JOIN items i ON i.id = a.item_id JOIN projects p ON p.id = i.project_id WHERE a.id = ?`).get(id) as
      { id: number; item_id: number; shown: string; expires_at: number; project: string } | undefined;
    if (!a) throw new StoreError(404, `no assignment ${id}`);
    const p = this.project(a.project);
    const { prompt, candidates } = this.itemCandidates(a.item_id);
    const shown = JSON.parse(a.shown) as number[];
    return { id: a.id, itemId: a.item_id, project: p.name, task: p.task, prompt, shownTexts: shown.map((i) => candidates[i]!.text), expiresAt: a.expires_at, guidelineVersion: p.guidelineVersion };
  }

  /** The annotator who holds an assignment (for the web layer's ownership check). */
  assignmentOwner(id: number): number | null {
    const r = this.db.prepare('SELECT annotator_id FROM assignments WHERE id = ?').get(id) as { annotator_id: number } | undefined;
    return r?.annotator_id ?? null;
  }

  /**
   * Stores an annotator's answer to their assignment, in one transaction. Refused with nothing stored: an
   * assignment that is not theirs (403), already answered (409), whose lease expired (410: the item went
   * back to the queue), or an answer that does not fit the task (400, naming the field). A correction is
   * stored as a new candidate too; a gold item's answer is scored, and an annotator whose gold accuracy
   * falls below the project's threshold is paused.
   */
  submitLabel(assignmentId: number, annotatorId: number, answer: unknown): { labelId: number; goldCorrect: boolean | null; paused: boolean } {
    return this.transaction(() => {
      const a = this.db.prepare('SELECT id, item_id, annotator_id, shown, leased_at, expires_at, status FROM assignments WHERE id = ?').get(assignmentId) as
        { id: number; item_id: number; annotator_id: number; shown: string; leased_at: number; expires_at: number; status: string } | undefined;
      if (!a || a.annotator_id !== annotatorId) throw new StoreError(403, `item ${assignmentId} is not assigned to you`);
      if (a.status === 'done') throw new StoreError(409, `assignment ${assignmentId} is already labelled`);
      const now = this.now();
      if (a.expires_at <= now) throw new StoreError(410, `the lease on assignment ${assignmentId} expired; the item went back to the queue`);
      const projectName = (this.db.prepare('SELECT p.name FROM items i JOIN projects p ON p.id = i.project_id WHERE i.id = ?').get(a.item_id) as { name: string }).name;
      const p = this.project(projectName);
      const { candidates, gold } = this.itemCandidates(a.item_id);
      const shown = JSON.parse(a.shown) as number[];
      let canon: ReturnType<typeof canonicalLabel>;
      try {
        canon = canonicalLabel(p.task, answer, shown, candidates.map((c) => c.text), p.settings);
      } catch (e) {
        throw new StoreError(400, (e as Error).message);
      }
      const goldCorrect = gold === null ? null : isGoldCorrect(p.task, gold, canon.label);
      const labelId = Number(this.db.prepare(`INSERT INTO labels (assignment_id, item_id, annotator_id, project_id, task, answer, label, critique, shown,
        guideline_version, time_ms, gold_correct, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
        .run(a.id, a.item_id, annotatorId, p.id, p.task, JSON.stringify(answer), JSON.stringify(canon.label), canon.critique, a.shown,
          p.guidelineVersion, now - a.leased_at, goldCorrect === null ? null : goldCorrect ? 1 : 0, now).lastInsertRowid);
      this.db.prepare("UPDATE assignments SET status = 'done' WHERE id = ?").run(a.id);
      if (p.task === 'correction') this.addCorrection(candidates[0]!, (canon.label as TaskLabels['correction']).text, annotatorId);
      const paused = goldCorrect !== null && this.pauseIfBelow(p, annotatorId);
      return { labelId, goldCorrect, paused };
    });
  }

  private addCorrection(original: CandidateRow, text: string, annotatorId: number): void {
    const promptId = (this.db.prepare('SELECT prompt_id FROM candidates WHERE id = ?').get(original.id) as { prompt_id: number }).prompt_id;
    this.db.prepare("INSERT INTO candidates (prompt_id, text, origin, parent_id, created_by, created_at) VALUES (?, ?, 'correction', ?, ?, ?)")
      .run(promptId, text, original.id, annotatorId, this.now());
  }

  /** Pauses the annotator when their gold accuracy in this project is below the threshold; true if paused. */
  private pauseIfBelow(p: Project, annotatorId: number): boolean {
    const g = this.db.prepare('SELECT COUNT(*) AS n, SUM(gold_correct) AS k FROM labels WHERE project_id = ? AND annotator_id = ? AND gold_correct IS NOT NULL')
      .get(p.id, annotatorId) as { n: number; k: number };
    if (g.n < p.settings.minGold || g.k / g.n >= p.settings.pauseBelow) return false;
    this.setPaused(annotatorId, true);
    return true;
  }

  /** Every label of a project with its item, annotator and assignment facts (oldest first). */
  labels(projectName: string, opts: { annotatorId?: number } = {}): LabelRow[] {
    const p = this.project(projectName);
    const rows = this.db.prepare(`SELECT l.id, l.item_id, l.annotator_id, n.name AS annotator, l.task, l.answer, l.label, l.critique, l.shown,
      l.guideline_version, l.time_ms, l.gold_correct, l.created_at, a.rule, a.probability, i.gold IS NOT NULL AS is_gold
      FROM labels l JOIN annotators n ON n.id = l.annotator_id JOIN assignments a ON a.id = l.assignment_id JOIN items i ON i.id = l.item_id
      WHERE l.project_id = ? AND (? IS NULL OR l.annotator_id = ?) ORDER BY l.id`).all(p.id, opts.annotatorId ?? null, opts.annotatorId ?? null) as RawLabelRow[];
    return rows.map((r) => ({
      id: r.id, itemId: r.item_id, annotatorId: r.annotator_id, annotator: r.annotator, task: r.task, answer: JSON.parse(r.answer),
      label: JSON.parse(r.label), critique: r.critique, shown: JSON.parse(r.shown), guidelineVersion: r.guideline_version, timeMs: r.time_ms,
      goldCorrect: r.gold_correct === null ? null : r.gold_correct === 1, isGold: r.is_gold === 1, createdAt: r.created_at,
      selection: { rule: r.rule, probability: r.probability },
    }));
  }

  /** One label as its author sees it: the answer as given, the critique, when. */
  label(labelId: number): { id: number; task: TaskType; answer: unknown; critique: string | null; createdAt: number } {
    const r = this.db.prepare('SELECT id, task, answer, critique, created_at FROM labels WHERE id = ?').get(labelId) as
      { id: number; task: TaskType; answer: string; critique: string | null; created_at: number } | undefined;
    if (!r) throw new StoreError(404, `no label ${labelId}`);
    return { id: r.id, task: r.task, answer: JSON.parse(r.answer), critique: r.critique, createdAt: r.created_at };
  }

  /** The owner of a label (for the web layer's check that annotators read only their own). */
  labelOwner(labelId: number): number | null {
    const r = this.db.prepare('SELECT annotator_id FROM labels WHERE id = ?').get(labelId) as { annotator_id: number } | undefined;
    return r?.annotator_id ?? null;
  }

  /** Counts for the admin view: items (gold apart), labels, items with all `overlap` labels, live leases. */
  progress(projectName: string): { items: number; goldItems: number; labels: number; complete: number; leased: number } {
    const p = this.project(projectName);
    const q = (sql: string, ...args: unknown[]) => (this.db.prepare(sql).get(...args) as { n: number }).n;
    return {
      items: q('SELECT COUNT(*) AS n FROM items WHERE project_id = ? AND gold IS NULL', p.id),
      goldItems: q('SELECT COUNT(*) AS n FROM items WHERE project_id = ? AND gold IS NOT NULL', p.id),
      labels: q('SELECT COUNT(*) AS n FROM labels WHERE project_id = ?', p.id),
      complete: q('SELECT COUNT(*) AS n FROM items i WHERE i.project_id = ? AND i.gold IS NULL AND (SELECT COUNT(*) FROM labels l WHERE l.item_id = i.id) >= ?', p.id, p.overlap),
      leased: q("SELECT COUNT(*) AS n FROM assignments a JOIN items i ON i.id = a.item_id WHERE i.project_id = ? AND a.status = 'leased' AND a.expires_at > ?", p.id, this.now()),
    };
  }
}

interface RawLabelRow {
  id: number; item_id: number; annotator_id: number; annotator: string; task: TaskType; answer: string; label: string; critique: string | null;
  shown: string; guideline_version: number; time_ms: number; gold_correct: number | null; created_at: number; rule: string; probability: number; is_gold: number;
}

/** One stored label with what the exports and statistics need. */
export interface LabelRow {
  id: number;
  itemId: number;
  annotatorId: number;
  annotator: string;
  task: TaskType;
  /** The answer exactly as submitted (in screen order). */
  answer: unknown;
  /** Its canonical form (in the item's candidate order). */
  label: TaskLabels[TaskType];
  critique: string | null;
  /** shown[p] = the candidate index at screen position p. */
  shown: number[];
  guidelineVersion: number;
  timeMs: number;
  goldCorrect: boolean | null;
  isGold: boolean;
  createdAt: number;
  /** How the item was chosen, and its probability of being chosen then (for re-weighting). */
  selection: { rule: string; probability: number };
}

function shuffle<T>(xs: T[], rand: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

function checkSettings(s: ProjectSettings): ProjectSettings {
  const bad = (field: string, want: string, got: unknown) => new StoreError(400, `setting '${field}': expected ${want}, got ${JSON.stringify(got)}`);
  if (!Number.isInteger(s.strengthMax) || s.strengthMax < 1 || s.strengthMax > 10) throw bad('strengthMax', 'an integer in 1…10', s.strengthMax);
  if (!Array.isArray(s.axes) || s.axes.length === 0 || !s.axes.every((a) => typeof a === 'string' && /^\w{1,32}$/.test(a))) throw bad('axes', 'a list of axis names', s.axes);
  if (!Number.isInteger(s.scaleMin) || !Number.isInteger(s.scaleMax) || s.scaleMin >= s.scaleMax) throw bad('scaleMin/scaleMax', 'integers with min < max', [s.scaleMin, s.scaleMax]);
  for (const f of ['goldRate', 'pauseBelow'] as const) if (!(s[f] >= 0 && s[f] <= 1)) throw bad(f, 'a number in [0, 1]', s[f]);
  if (!Number.isInteger(s.minGold) || s.minGold < 1) throw bad('minGold', 'an integer ≥ 1', s.minGold);
  if (!(s.leaseSeconds > 0)) throw bad('leaseSeconds', 'a positive number', s.leaseSeconds);
  if (!(s.selection in SELECTION_RULES)) throw bad('selection', Object.keys(SELECTION_RULES).join(' | '), s.selection);
  if (!Number.isInteger(s.seed)) throw bad('seed', 'an integer', s.seed);
  return s;
}

function checkGold(task: TaskType, gold: unknown, k: number): void {
  const better = (gold as { better?: unknown }).better;
  if (task !== 'pairwise') throw new StoreError(400, `field 'gold': gold answers are pairwise ({"better": 0 | 1}); a ${task} project has none`);
  if (better !== 0 && better !== 1) throw new StoreError(400, `field 'gold.better': expected 0 or 1 (an index into the ${k} responses), got ${JSON.stringify(better)}`);
}

/** Whether a pairwise label agrees with the gold answer (a tie, both-bad or can't-judge does not). */
function isGoldCorrect(task: TaskType, gold: unknown, label: TaskLabels[TaskType]): boolean | null {
  if (task !== 'pairwise') return null;
  const l = label as TaskLabels['pairwise'];
  const better = (gold as { better: 0 | 1 }).better;
  return !l.bothBad && !l.cantJudge && (better === 0 ? l.margin > 0 : l.margin < 0);
}
