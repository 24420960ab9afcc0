/**
 * The OpenAI API's request and response shapes for `/v1/completions` and `/v1/chat/completions`, and
 * their checks: a malformed request is an `ApiError` (HTTP 400 with OpenAI's error body,
 * `{"error": {"message", "type": "invalid_request_error", "param", "code"}}`) naming the field.
 *
 * Supported: prompt (one string), messages (role + string content), max_tokens (chat also
 * max_completion_tokens), temperature, top_p, n, seed, stop (string or up to 4 strings), stream,
 * logprobs (completions: an integer, only 0 — the sampled token's log-prob, no alternatives; chat: a
 * boolean, top_logprobs 0). Log-probs are the raw model's (before temperature and top-p), as
 * `rlhf generate` reports them. Fields OpenAI defines that change nothing here (user, stream_options,
 * frequency_penalty 0, presence_penalty 0, an empty logit_bias) are accepted; one that would change the
 * answer in a way not supported here is refused, and so is an unknown field.
 */

/** An error the client caused (400) or a missing route (404), in OpenAI's error shape. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly param: string | null = null, readonly type = 'invalid_request_error') {
    super(message);
  }
  body(): { error: { message: string; type: string; param: string | null; code: null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: null } };
  }
}

/** A chat message as the API sends it (string content only). */
export interface ApiMessage {
  role: string;
  content: string;
}

/** One generation request, checked: what the batcher needs. */
export interface GenerationRequest {
  kind: 'completion' | 'chat';
  model: string;
  prompt: string | null;
  messages: ApiMessage[] | null;
  maxTokens: number;
  temperature: number;
  topP: number;
  n: number;
  seed: number;
  stop: string[];
  stream: boolean;
  logprobs: boolean;
}

const ACCEPTED = new Set(['model', 'user', 'frequency_penalty', 'presence_penalty', 'stream_options', 'echo', 'best_of', 'suffix', 'logit_bias', 'top_logprobs', 'max_completion_tokens', 'prompt', 'messages', 'max_tokens', 'temperature', 'top_p', 'n', 'seed', 'stop', 'stream', 'logprobs']);

function num(body: Record<string, unknown>, key: string, dflt: number, check: (x: number) => boolean, what: string): number {
  const x = body[key];
  if (x === undefined || x === null) return dflt;
  if (typeof x !== 'number' || !check(x)) throw new ApiError(400, `'${key}' must be ${what}, got ${JSON.stringify(x)}`, key);
  return x;
}

function stopOf(x: unknown): string[] {
  if (x === undefined || x === null) return [];
  const list = typeof x === 'string' ? [x] : x;
  if (!Array.isArray(list) || list.length > 4 || !list.every((s) => typeof s === 'string' && s.length > 0)) {
    throw new ApiError(400, "'stop' must be a non-empty string or a list of up to 4 of them", 'stop');
  }
  return list as string[];
}

function messagesOf(x: unknown): ApiMessage[] {
  if (!Array.isArray(x) || x.length === 0) throw new ApiError(400, "'messages' must be a non-empty list of {role, content}", 'messages');
  return x.map((m, i) => {
    const r = m as { role?: unknown; content?: unknown };
    if (typeof r?.role !== 'string' || typeof r.content !== 'string') throw new ApiError(400, `messages[${i}] must have a string 'role' and a string 'content'`, `messages[${i}]`);
    return { role: r.role, content: r.content };
  });
}

/** Checks a request body of `kind`; every problem is an ApiError naming the field. */
export function parseGenerationRequest(kind: GenerationRequest['kind'], raw: unknown, limits: { maxTokens: number; maxN: number }): GenerationRequest {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ApiError(400, 'the request body must be a JSON object');
  const body = raw as Record<string, unknown>;
  for (const k of Object.keys(body)) if (!ACCEPTED.has(k)) throw new ApiError(400, `unknown field '${k}'`, k);
  if (typeof body.model !== 'string') throw new ApiError(400, "'model' is required (a string; see /v1/models)", 'model');
  if (kind === 'completion' && typeof body.prompt !== 'string') throw new ApiError(400, "'prompt' must be a string (lists of prompts are not supported: send one request each)", 'prompt');
  if (body.echo || (body.best_of !== undefined && body.best_of !== 1) || body.suffix) throw new ApiError(400, 'echo, best_of > 1 and suffix are not supported', 'echo');
  for (const k of ['frequency_penalty', 'presence_penalty']) if (body[k] !== undefined && body[k] !== null && body[k] !== 0) throw new ApiError(400, `'${k}' other than 0 is not supported`, k);
  if (body.logit_bias && Object.keys(body.logit_bias).length > 0) throw new ApiError(400, "'logit_bias' is not supported", 'logit_bias');
  const tokenKey = kind === 'chat' && body.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens';
  const lp = body.logprobs;
  let logprobs: boolean;
  if (kind === 'chat') {
    if (lp !== undefined && lp !== null && typeof lp !== 'boolean') throw new ApiError(400, "'logprobs' must be a boolean", 'logprobs');
    if (body.top_logprobs) throw new ApiError(400, "'top_logprobs' > 0 is not supported (only the sampled token's log-prob)", 'top_logprobs');
    logprobs = lp === true;
  } else {
    if (lp !== undefined && lp !== null && lp !== 0) throw new ApiError(400, "'logprobs' must be 0 (the sampled token's log-prob; alternatives are not supported)", 'logprobs');
    logprobs = lp === 0;
  }
  const temperature = num(body, 'temperature', 1, (x) => x >= 0 && x <= 2, 'a number in [0, 2]');
  return {
    kind,
    model: body.model,
    prompt: kind === 'completion' ? (body.prompt as string) : null,
    messages: kind === 'chat' ? messagesOf(body.messages) : null,
    maxTokens: num(body, tokenKey, kind === 'chat' ? Math.min(256, limits.maxTokens) : 16, (x) => Number.isInteger(x) && x >= 1 && x <= limits.maxTokens, `an integer in [1, ${limits.maxTokens}]`),
    temperature,
    topP: num(body, 'top_p', 1, (x) => x > 0 && x <= 1, 'a number in (0, 1]'),
    n: num(body, 'n', 1, (x) => Number.isInteger(x) && x >= 1 && x <= limits.maxN, `an integer in [1, ${limits.maxN}]`),
    seed: num(body, 'seed', 0, (x) => Number.isInteger(x), 'an integer'),
    stop: stopOf(body.stop),
    stream: body.stream === true,
    logprobs,
  };
}

/** One generated choice, before shaping. */
export interface ChoiceOutput {
  text: string;
  tokens: number[];
  logprobs: number[];
  /** The text of each token (the decoded difference it adds). */
  pieces: string[];
  finishReason: 'stop' | 'length';
}

function completionLogprobs(c: ChoiceOutput) {
  let offset = 0;
  const textOffset = c.pieces.map((p) => ((offset += p.length), offset - p.length));
  return { tokens: c.pieces, token_logprobs: c.logprobs, top_logprobs: null, text_offset: textOffset };
}

function chatLogprobs(c: ChoiceOutput) {
  return { content: c.pieces.map((p, i) => ({ token: p, logprob: c.logprobs[i]!, bytes: [...Buffer.from(p, 'utf8')], top_logprobs: [] })) };
}

/** The non-streaming response body. */
export function responseBody(req: GenerationRequest, id: string, created: number, choices: readonly ChoiceOutput[], promptTokens: number): unknown {
  const usage = { prompt_tokens: promptTokens, completion_tokens: choices.reduce((a, c) => a + c.tokens.length, 0), total_tokens: 0 };
  usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
  if (req.kind === 'completion') {
    return {
      id, object: 'text_completion', created, model: req.model, usage,
      choices: choices.map((c, index) => ({ index, text: c.text, logprobs: req.logprobs ? completionLogprobs(c) : null, finish_reason: c.finishReason })),
    };
  }
  return {
    id, object: 'chat.completion', created, model: req.model, usage,
    choices: choices.map((c, index) => ({ index, message: { role: 'assistant', content: c.text }, logprobs: req.logprobs ? chatLogprobs(c) : null, finish_reason: c.finishReason })),
  };
}

/** The chunks of one streamed choice, built as its tokens come: the opening (chat), one per token, the closing. */
export class ChunkBuilder {
  private readonly base: { id: string; object: string; created: number; model: string };
  constructor(private readonly req: GenerationRequest, id: string, created: number, private readonly index: number) {
    this.base = { id, object: req.kind === 'completion' ? 'text_completion' : 'chat.completion.chunk', created, model: req.model };
  }

  /** The chat role chunk that opens a choice (none for completions). */
  open(): unknown[] {
    return this.req.kind === 'chat' ? [{ ...this.base, choices: [{ index: this.index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] }] : [];
  }

  /** One token's chunk: its text piece and, when asked for, its log-prob. */
  token(piece: string, token: number, logprob: number): unknown {
    const one: ChoiceOutput = { text: piece, pieces: [piece], logprobs: [logprob], tokens: [token], finishReason: 'length' };
    const logprobs = this.req.logprobs ? (this.req.kind === 'chat' ? chatLogprobs(one) : completionLogprobs(one)) : null;
    const choice = this.req.kind === 'chat' ? { index: this.index, delta: { content: piece }, logprobs, finish_reason: null } : { index: this.index, text: piece, logprobs, finish_reason: null };
    return { ...this.base, choices: [choice] };
  }

  /** The closing chunk with the finish reason. */
  close(finishReason: ChoiceOutput['finishReason']): unknown {
    const choice = this.req.kind === 'chat' ? { index: this.index, delta: {}, logprobs: null, finish_reason: finishReason } : { index: this.index, text: '', logprobs: null, finish_reason: finishReason };
    return { ...this.base, choices: [choice] };
  }
}

/** The server-sent events of a streamed response whose choices are complete: each choice's chunks in turn. */
export function streamChunks(req: GenerationRequest, id: string, created: number, choices: readonly ChoiceOutput[]): unknown[] {
  return choices.flatMap((c, index) => {
    const b = new ChunkBuilder(req, id, created, index);
    return [...b.open(), ...c.pieces.map((p, t) => b.token(p, c.tokens[t]!, c.logprobs[t]!)), b.close(c.finishReason)];
  });
}
