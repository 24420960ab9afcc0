/**
 * A scripted annotator over the app's HTTP API, as a browser would be one: it keeps its cookies (the
 * session and the CSRF secret), fetches a CSRF token before its first write and sends it with each. The
 * benchmark, the tests and scripted experiments label through it.
 */

/** What one request answered. */
export interface ApiResponse<T = unknown> {
  status: number;
  data: T;
}

/** The next-item answer of GET /api/projects/:project/next. */
export type NextItem =
  | { kind: 'done' | 'paused' }
  | { kind: 'item'; assignment: { id: number; task: string; expiresAt: number; promptHtml: string; responses: { html: string; text: string }[] } };

/** One HTTP client with its own cookie jar. */
export class FeedbackClient {
  private readonly cookies = new Map<string, string>();
  private csrf: string | null = null;

  constructor(readonly base: string) {}

  /** A request; the JSON answer (or text) and its status. Never throws for an HTTP error status. */
  async request<T = unknown>(method: string, path: string, body?: unknown, opts: { csrf?: boolean } = {}): Promise<ApiResponse<T>> {
    const write = method !== 'GET';
    if (write && opts.csrf !== false && this.csrf === null) this.csrf = (await this.request<{ token: string }>('GET', '/api/csrf')).data.token;
    const headers: Record<string, string> = { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') };
    if (write) headers['content-type'] = 'application/json';
    if (write && opts.csrf !== false) headers['x-csrf-token'] = this.csrf!;
    const res = await fetch(this.base + path, { method, headers, body: write ? JSON.stringify(body ?? {}) : undefined });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      this.cookies.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim());
    }
    const text = await res.text();
    const data = (res.headers.get('content-type') ?? '').includes('json') && text ? JSON.parse(text) : text;
    return { status: res.status, data: data as T };
  }

  /** Like request, but an error status throws with the server's message. */
  async ok<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await this.request<T>(method, path, body);
    if (r.status >= 400) throw new Error(`${method} ${path}: ${r.status} ${(r.data as { error?: string })?.error ?? ''}`);
    return r.data;
  }

  /** Joins with an invite token under `name`. */
  redeem(token: string, name: string, password?: string): Promise<{ name: string; role: string }> {
    return this.ok('POST', '/api/redeem', { token, name, password });
  }

  next(project: string): Promise<NextItem> {
    return this.ok('GET', `/api/projects/${encodeURIComponent(project)}/next`);
  }

  /** Submits an answer; the response (201 with the label id when stored). */
  label(assignmentId: number, answer: unknown): Promise<ApiResponse<{ labelId?: number; error?: string }>> {
    return this.request('POST', `/api/assignments/${assignmentId}/label`, { answer });
  }
}
