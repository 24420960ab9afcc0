/**
 * `rlhf feedback serve`: the feedback web app over a FeedbackStore, on fastify with maintained plugins
 * for everything security-sensitive — @fastify/helmet (a strict Content-Security-Policy: scripts, styles
 * and images from this origin only, no inline script, no framing), @fastify/cookie (sessions in httpOnly
 * SameSite=Strict cookies, signed with a secret kept in the database), @fastify/csrf-protection (every
 * state-changing request carries the token of GET /api/csrf in `x-csrf-token`), @fastify/rate-limit (per
 * session, else per address; stricter on sign-in). Passwords, when people set one, are hashed with scrypt
 * (memory-hard). Model text goes to the browser as sanitised markdown: markdown-it with raw HTML off
 * (escaped), images off and its link check (no javascript:, vbscript:, file: or data: links).
 *
 * Roles: an annotator reaches only their own queue and labels; /api/admin/* answers 403 to them.
 */
import fastifyCookie from '@fastify/cookie';
import fastifyCsrf from '@fastify/csrf-protection';
import fastifyHelmet from '@fastify/helmet';
import fastifyRateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import MarkdownIt from 'markdown-it';
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { FeedbackError } from '../data/load.js';
import { generateItems, type GenerateItemsOptions } from './candidates.js';
import { failInterruptedChecks, rewardCheck, startRewardCheck } from './reward-check.js';
import { agreement, behaviour } from '../feedback/quality.js';
import { EXPORT_FORMATS, type ExportFormat, exportRows, importItemsFromText } from '../feedback/io.js';
import { type Annotator, FeedbackStore, StoreError } from '../feedback/store.js';

/** How the server is set up; every field has a default. */
export interface ServeOptions {
  /** Requests per minute per session (or per address before sign-in). Default 600. */
  rateLimit?: number;
  /** Sign-in and invite requests per minute per address. Default 20. */
  authRateLimit?: number;
  /** Mark cookies Secure (serve behind HTTPS). Default false: loopback HTTP. */
  secureCookies?: boolean;
}

const SESSION_COOKIE = 'rlhf_session';
const scryptAsync = promisify(scrypt) as (pw: string, salt: Buffer, len: number, opts: object) => Promise<Buffer>;
/** scrypt's cost: N = 2^15, r = 8 (32 MiB per hash), the OWASP-recommended minimum. */
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

/** A password's scrypt hash as `scrypt$N$r$p$salt$hash` (base64url). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scryptAsync(password, salt, 32, SCRYPT);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64url')}$${hash.toString('base64url')}`;
}

/** Whether `password` matches a hash from hashPassword (constant-time comparison). */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [kind, N, r, p, salt, hash] = stored.split('$');
  if (kind !== 'scrypt' || !salt || !hash) return false;
  const want = Buffer.from(hash, 'base64url');
  const got = await scryptAsync(password, Buffer.from(salt, 'base64url'), want.length, { N: Number(N), r: Number(r), p: Number(p), maxmem: SCRYPT.maxmem });
  return timingSafeEqual(want, got);
}

const markdown = new MarkdownIt({ html: false, linkify: false, typographer: false }).disable('image');

/** Model text as safe HTML: markdown with raw HTML escaped, no images, only safe link schemes. */
export function renderMarkdown(text: string): string {
  return markdown.render(text);
}

function assetsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!dir.endsWith('dist') && dirname(dir) !== dir) dir = dirname(dir);
  return join(dirname(dir), 'assets', 'feedback-app');
}

declare module 'fastify' {
  interface FastifyRequest {
    who: Annotator | null;
  }
}

/** Builds the app (not listening yet): `await app.listen({ port, host })` serves it. */
export async function createFeedbackServer(store: FeedbackStore, opts: ServeOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, bodyLimit: 8 * 1024 * 1024 });
  await app.register(fastifyHelmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"], scriptSrc: ["'self'"], styleSrc: ["'self'"], imgSrc: ["'self'"], connectSrc: ["'self'"],
        formAction: ["'self'"], frameAncestors: ["'none'"], baseUri: ["'none'"],
      },
    },
  });
  await app.register(fastifyCookie, { secret: store.secret('cookie-secret') });
  await app.register(fastifyCsrf, {
    sessionPlugin: '@fastify/cookie', cookieOpts: { path: '/', sameSite: 'strict', httpOnly: true, signed: true, secure: opts.secureCookies ?? false },
  });
  await app.register(fastifyRateLimit, {
    max: opts.rateLimit ?? 600, timeWindow: '1 minute',
    keyGenerator: (req) => req.cookies?.[SESSION_COOKIE] ?? req.ip,
  });
  app.decorateRequest('who', null);
  app.addHook('preHandler', async (req) => {
    const token = req.cookies[SESSION_COOKIE];
    req.who = token ? store.sessionAnnotator(token) : null;
  });
  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    if (err instanceof StoreError) return reply.code(err.status).send({ error: err.message });
    if (err instanceof FeedbackError) return reply.code(400).send({ error: err.message });
    const code = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    return reply.code(code).send({ error: code === 500 ? 'internal error' : err.message });
  });
  staticRoutes(app);
  authRoutes(app, store, opts);
  annotatorRoutes(app, store);
  adminRoutes(app, store);
  return app;
}

function staticRoutes(app: FastifyInstance): void {
  const dir = assetsDir();
  const files: Record<string, [string, string]> = {
    '/': ['index.html', 'text/html; charset=utf-8'],
    '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
    '/app.css': ['app.css', 'text/css; charset=utf-8'],
  };
  for (const [route, [file, type]] of Object.entries(files)) {
    const body = readFileSync(join(dir, file), 'utf8');
    app.get(route, async (_req, reply) => reply.type(type).header('cache-control', 'no-store').send(body));
  }
  app.get('/favicon.ico', async (_req, reply) => reply.code(204).send()); // browsers ask; there is none
}

/** 401 without a session, 403 for the wrong role; otherwise the signed-in person. */
function need(req: FastifyRequest, role?: 'admin'): Annotator {
  if (!req.who) throw Object.assign(new Error('sign in first'), { statusCode: 401 });
  if (role === 'admin' && req.who.role !== 'admin') throw new StoreError(403, 'admins only');
  return req.who;
}

const body = (req: FastifyRequest): Record<string, unknown> => {
  const b = req.body;
  if (typeof b !== 'object' || b === null || Array.isArray(b)) throw new StoreError(400, 'expected a JSON object body');
  return b as Record<string, unknown>;
};

function startSession(store: FeedbackStore, reply: FastifyReply, who: Annotator, secure: boolean): void {
  reply.setCookie(SESSION_COOKIE, store.createSession(who.id), { path: '/', httpOnly: true, sameSite: 'strict', secure, maxAge: 12 * 3600 });
}

function authRoutes(app: FastifyInstance, store: FeedbackStore, opts: ServeOptions): void {
  const secure = opts.secureCookies ?? false;
  const strict = { config: { rateLimit: { max: opts.authRateLimit ?? 20, timeWindow: '1 minute', keyGenerator: (req: FastifyRequest) => req.ip } } };
  app.get('/api/csrf', async (_req, reply) => ({ token: reply.generateCsrf() }));
  app.post('/api/redeem', { ...strict, onRequest: app.csrfProtection }, async (req, reply) => {
    const b = body(req);
    const password = typeof b.password === 'string' && b.password !== '' ? b.password : null;
    if (password !== null && password.length < 8) throw new StoreError(400, "field 'password': at least 8 characters");
    const who = store.redeemInvite(String(b.token ?? ''), b.name as string, password === null ? null : await hashPassword(password));
    startSession(store, reply, who, secure);
    return { name: who.name, role: who.role };
  });
  app.post('/api/login', { ...strict, onRequest: app.csrfProtection }, async (req, reply) => {
    const b = body(req);
    const who = store.annotatorByName(String(b.name ?? ''));
    const ok = who?.passwordHash && typeof b.password === 'string' && (await verifyPassword(b.password, who.passwordHash));
    if (!who || !ok) throw new StoreError(403, 'unknown name or wrong password');
    startSession(store, reply, who, secure);
    return { name: who.name, role: who.role };
  });
  app.post('/api/logout', { onRequest: app.csrfProtection }, async (req, reply) => {
    const token = req.cookies[SESSION_COOKIE];
    if (token) store.endSession(token);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return { ok: true };
  });
  app.get('/api/me', async (req) => {
    const who = need(req);
    const projects = store.projectNames().map((name) => {
      const p = store.project(name);
      return { name, task: p.task, guidelines: store.guidelines(name) };
    });
    return { name: who.name, role: who.role, paused: who.paused, projects };
  });
}

function annotatorRoutes(app: FastifyInstance, store: FeedbackStore): void {
  app.get<{ Params: { project: string } }>('/api/projects/:project/next', async (req) => {
    const who = need(req);
    const next = store.next(req.params.project, who.id);
    if (next.kind !== 'item') return next;
    const a = next.assignment;
    const p = store.project(a.project);
    const { strengthMax, axes, scaleMin, scaleMax } = p.settings;
    return {
      kind: 'item',
      assignment: {
        id: a.id, task: a.task, expiresAt: a.expiresAt, promptHtml: renderMarkdown(a.prompt),
        // Each shown response as sanitised markdown, plus its plain text for corrections and span marking
        // (the browser puts that in with textContent, never as HTML). No ids, no model names.
        responses: a.shownTexts.map((t) => ({ html: renderMarkdown(t), text: t })),
        guidelines: store.guidelines(a.project), settings: { strengthMax, axes, scaleMin, scaleMax },
      },
    };
  });
  app.post<{ Params: { id: string } }>('/api/assignments/:id/label', { onRequest: app.csrfProtection }, async (req, reply) => {
    const who = need(req);
    const id = Number(req.params.id);
    if (!Number.isInteger(id)) throw new StoreError(400, `assignment id must be an integer, got '${req.params.id}'`);
    const r = store.submitLabel(id, who.id, body(req).answer);
    return reply.code(201).send(r);
  });
  app.get<{ Params: { project: string } }>('/api/projects/:project/my-labels', async (req) => {
    const who = need(req);
    return store.labels(req.params.project, { annotatorId: who.id }).map((l) => ({ id: l.id, task: l.task, answer: l.answer, critique: l.critique, createdAt: l.createdAt }));
  });
  app.get<{ Params: { id: string } }>('/api/labels/:id', async (req) => {
    const who = need(req);
    const owner = store.labelOwner(Number(req.params.id));
    if (owner === null) throw new StoreError(404, `no label ${req.params.id}`);
    if (owner !== who.id && who.role !== 'admin') throw new StoreError(403, 'you can read only your own labels');
    return store.label(Number(req.params.id));
  });
}

function adminRoutes(app: FastifyInstance, store: FeedbackStore): void {
  const admin = { onRequest: app.csrfProtection };
  app.post('/api/admin/projects', admin, async (req, reply) => {
    need(req, 'admin');
    const b = body(req);
    const p = store.createProject({ name: b.name as string, task: b.task as string, overlap: b.overlap as number | undefined,
      guidelines: b.guidelines as string | undefined, settings: b.settings as object | undefined });
    return reply.code(201).send(p);
  });
  app.post<{ Params: { project: string } }>('/api/admin/projects/:project/items', admin, async (req, reply) => {
    need(req, 'admin');
    const b = body(req);
    if (typeof b.jsonl !== 'string') throw new StoreError(400, "field 'jsonl': expected the import file's text");
    return reply.code(201).send(importItemsFromText(store, req.params.project, b.jsonl, typeof b.name === 'string' ? b.name : 'upload.jsonl'));
  });
  app.post<{ Params: { project: string } }>('/api/admin/projects/:project/guidelines', admin, async (req) => {
    need(req, 'admin');
    const text = body(req).text;
    if (typeof text !== 'string' || text === '') throw new StoreError(400, "field 'text': expected the guidelines");
    return { version: store.addGuidelines(req.params.project, text) };
  });
  app.post<{ Params: { project: string } }>('/api/admin/projects/:project/generate', admin, async (req, reply) => {
    need(req, 'admin');
    return reply.code(201).send(generateItems(store, req.params.project, body(req) as unknown as GenerateItemsOptions));
  });
  app.post<{ Params: { project: string } }>('/api/admin/projects/:project/reward-check', admin, async (req, reply) => {
    need(req, 'admin');
    void startRewardCheck(store, req.params.project); // runs in a child process; the stats show it
    return reply.code(202).send(rewardCheck(store, req.params.project));
  });
  app.post('/api/admin/invites', admin, async (req) => {
    need(req, 'admin');
    const role = body(req).role as 'admin' | 'annotator';
    const token = store.createInvite(role);
    return { token, path: `/?invite=${token}` };
  });
  app.post<{ Params: { id: string } }>('/api/admin/annotators/:id/resume', admin, async (req) => {
    need(req, 'admin');
    store.setPaused(Number(req.params.id), false);
    return { ok: true };
  });
  app.get<{ Params: { project: string } }>('/api/admin/projects/:project/stats', async (req) => {
    need(req, 'admin');
    const p = store.project(req.params.project);
    const labels = store.labels(p.name);
    const lengths = (itemId: number) => store.itemCandidates(itemId).candidates.map((c) => c.text.length);
    return {
      project: p, progress: store.progress(p.name), annotators: behaviour(labels, lengths), agreement: agreement(labels, p.overlap), rewardModel: rewardCheck(store, p.name),
    };
  });
  app.get<{ Params: { project: string }; Querystring: { format?: string } }>('/api/admin/projects/:project/export', async (req, reply) => {
    need(req, 'admin');
    const format = (req.query.format ?? 'raw') as ExportFormat;
    if (!EXPORT_FORMATS.includes(format)) throw new StoreError(400, `format must be one of ${EXPORT_FORMATS.join(', ')}, got '${format}'`);
    const rows = exportRows(store, req.params.project, format);
    return reply.type('application/x-ndjson').send(rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : ''));
  });
}

/** A running feedback app: where it listens, the admin invite made on first start, and how to stop it. */
export interface RunningServer {
  url: string;
  /** A one-time admin invite path (`/?invite=…`) when the database had no admin yet; null otherwise. */
  adminInvite: string | null;
  app: FastifyInstance;
  store: FeedbackStore;
  close(): Promise<void>;
}

/**
 * Opens (or creates) the database and serves the app on host:port (port 0: any free port). On a database
 * with no admin yet it makes a one-time admin invite, so the first person to open it becomes the admin.
 */
export async function startFeedbackServer(opts: ServeOptions & { db: string; port?: number; host?: string }): Promise<RunningServer> {
  const store = new FeedbackStore(opts.db);
  try {
    const adminInvite = store.hasAdmin() ? null : `/?invite=${store.createInvite('admin', 24 * 3600)}`;
    failInterruptedChecks(store);
    const app = await createFeedbackServer(store, opts);
    const host = opts.host ?? '127.0.0.1';
    await app.listen({ port: opts.port ?? 8787, host });
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : opts.port;
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    return { url, adminInvite, app, store, close: async () => { await app.close(); store.close(); } };
  } catch (e) {
    store.close();
    throw e;
  }
}
