/**
 * `rlhf serve-model`: an OpenAI-compatible server for any model rlhf-ts loads — `GET /v1/models`,
 * `POST /v1/completions`, `POST /v1/chat/completions` (src/serve/openai.ts lists what each accepts), with
 * concurrent requests batched on the fly (src/serve/batcher.ts).
 *
 * A completion prompt is encoded as `rlhf generate` encodes it (BOS first), and choice i of a request
 * with seed S samples from stream i of seed S, so choice 0 is exactly `rlhf generate --seed S --prompt P`
 * with the same settings. A chat request renders the model's chat template (tokenizer_config.json's
 * `chat_template`) or, for a model without one, DEFAULT_CHAT_TEMPLATE, with the assistant's header last.
 * `stream: true` answers with server-sent events (one chunk per token, then `data: [DONE]`), each written
 * as the batch decodes its token (with `stop` strings: once the choice is complete, cut at the stop).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Completion } from '../generate/generate.js';
import type { CausalLM } from '../models/common.js';
import { loadModel, resolveModelDir } from '../models/hub.js';
import { applyChatTemplate, loadTokenizer, type Tokenizer } from '../text/index.js';
import { type BatchRow, Batcher, rowKey } from './batcher.js';
import { listen, readJson, type RunningServer, sendJson } from './http.js';
import { ApiError, type ChoiceOutput, ChunkBuilder, type GenerationRequest, parseGenerationRequest, responseBody, streamChunks } from './openai.js';

/** The chat template of a model that declares none: each message as `role: content` on its own line, then `assistant:`. */
export const DEFAULT_CHAT_TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";

/** How serve-model runs: the model, where it listens, how it batches. */
export interface ServeModelOptions {
  /** A model directory, or 'stories260k'; its name is the API's model id. */
  model: string;
  host?: string;
  /** 0 = any free port. */
  port?: number;
  /** Rows per batch at most. */
  maxBatch?: number;
  /** Milliseconds a batch waits for more requests after the first arrives. */
  windowMs?: number;
  /** Log lines (each batch's size, server errors). */
  log?: (line: string) => void;
}

/** A running model server: its URL, the batch sizes it ran, close(). */
export interface ModelServer extends RunningServer {
  modelId: string;
  batchSizes: readonly number[];
}

interface Engine {
  id: string;
  model: CausalLM;
  tok: Tokenizer;
  template: string;
  batcher: Batcher;
}

/** The text each token adds, decoding with the prompt as context (a piece's leading space depends on it). */
function piecesOf(tok: Tokenizer, prompt: readonly number[], tokens: readonly number[]): string[] {
  const base = tok.decode(prompt).length;
  const texts = tokens.map((_, k) => tok.decode([...prompt, ...tokens.slice(0, k + 1)]).slice(base));
  return texts.map((t, k) => t.slice(k === 0 ? 0 : texts[k - 1]!.length));
}

/** A completion as an API choice: text cut at the first stop string (OpenAI leaves the stop sequence out). */
function choiceOf(tok: Tokenizer, prompt: readonly number[], c: Completion, stop: readonly string[]): ChoiceOutput {
  let pieces = piecesOf(tok, prompt, c.tokens);
  let text = pieces.join('');
  const at = Math.min(...stop.map((s) => text.indexOf(s)).filter((i) => i >= 0), Infinity);
  let finishReason: ChoiceOutput['finishReason'] = c.finishReason === 'length' ? 'length' : 'stop';
  if (Number.isFinite(at)) {
    text = text.slice(0, at);
    let used = 0;
    pieces = pieces.map((p) => p.slice(0, Math.max(0, at - (used += p.length) + p.length)));
    finishReason = 'stop';
  }
  return { text, tokens: c.tokens, logprobs: c.logprobs, pieces, finishReason };
}

function promptIds(e: Engine, req: GenerationRequest): number[] {
  const text = req.kind === 'chat' ? applyChatTemplate(e.template, req.messages!, { addGenerationPrompt: true }) : req.prompt!;
  const ids = e.tok.encode(text, { addBos: true });
  const room = e.model.config.maxPositions - req.maxTokens;
  if (ids.length > room) throw new ApiError(400, `the prompt has ${ids.length} tokens: with max_tokens ${req.maxTokens} that is over the model's context of ${e.model.config.maxPositions}`, 'max_tokens');
  return ids.length > 0 ? ids : [e.tok.bosId ?? 0];
}

async function generateHandler(e: Engine, kind: GenerationRequest['kind'], req: IncomingMessage, res: ServerResponse): Promise<void> {
  const r = parseGenerationRequest(kind, await readJson(req), { maxTokens: e.model.config.maxPositions - 1, maxN: 64 });
  if (r.model !== e.id) throw new ApiError(404, `the model '${r.model}' does not exist: this server serves '${e.id}'`, 'model', 'invalid_request_error');
  const ids = promptIds(e, r);
  const rows: BatchRow[] = Array.from({ length: r.n }, (_, i) => ({ ids, key: rowKey(r.seed, i), maxNewTokens: r.maxTokens, temperature: r.temperature, topP: r.topP, stop: r.stop }));
  const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  const created = Math.floor(Date.now() / 1000);
  const send = (chunk: unknown) => res.write(`data: ${JSON.stringify(chunk)}\n\n`);
  if (r.stream && r.stop.length === 0) return streamLive(e, r, rows, ids, { id, created, res, send });
  const choices = (await e.batcher.submit(rows)).map((c) => choiceOf(e.tok, ids, c, r.stop));
  if (!r.stream) return sendJson(res, 200, responseBody(r, id, created, choices, ids.length));
  // With stop strings a token cannot be sent before the text after it shows no stop sequence began: sent whole.
  res.writeHead(200, SSE_HEADERS);
  for (const chunk of streamChunks(r, id, created, choices)) send(chunk);
  res.end('data: [DONE]\n\n');
}

const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' };

/**
 * A streamed response written as the batch decodes: each token's chunk goes to the socket from the decode
 * loop (an uncorked socket write is tried at once, so a client in another process reads tokens while the
 * batch runs).
 */
async function streamLive(e: Engine, r: GenerationRequest, rows: BatchRow[], ids: readonly number[], o: { id: string; created: number; res: ServerResponse; send: (chunk: unknown) => void }): Promise<void> {
  o.res.writeHead(200, SSE_HEADERS);
  o.res.flushHeaders();
  // http corks the socket on a chunked write until the next tick, which a decode loop never reaches: uncork each.
  const send = (chunk: unknown) => {
    o.send(chunk);
    o.res.socket?.uncork();
  };
  const eos = new Set(e.tok.eosIds.length ? e.tok.eosIds : e.model.config.eosTokenIds);
  const base = e.tok.decode(ids).length;
  rows.forEach((row, index) => {
    const b = new ChunkBuilder(r, o.id, o.created, index);
    b.open().forEach(send);
    const tokens: number[] = [];
    let sent = 0;
    row.onToken = (token, logprob) => {
      if (eos.has(token)) return;
      tokens.push(token);
      const text = e.tok.decode([...ids, ...tokens]).slice(base);
      send(b.token(text.slice(sent), token, logprob));
      sent = text.length;
    };
  });
  const out = await e.batcher.submit(rows);
  out.forEach((c, index) => o.send(new ChunkBuilder(r, o.id, o.created, index).close(c.finishReason === 'length' ? 'length' : 'stop')));
  o.res.end('data: [DONE]\n\n');
}

/** Loads the model and starts serving it (see the header); close() stops the server and frees the model. */
export async function serveModel(opts: ServeModelOptions): Promise<ModelServer> {
  const dir = resolveModelDir(opts.model);
  const model = loadModel(dir).eval();
  const tok = loadTokenizer(dir, { eosIds: model.config.eosTokenIds });
  const template = (tok as Tokenizer & { chatTemplate?: string | null }).chatTemplate ?? DEFAULT_CHAT_TEMPLATE;
  const log = opts.log ?? (() => {});
  const batcher = new Batcher(model, (ids) => tok.decode(ids), { maxBatch: opts.maxBatch ?? 64, windowMs: opts.windowMs ?? 5, log });
  const e: Engine = { id: opts.model, model, tok, template, batcher };
  const created = Math.floor(Date.now() / 1000);
  try {
    const server = await listen({
      'GET /v1/models': async (_req, res) => sendJson(res, 200, { object: 'list', data: [{ id: e.id, object: 'model', created, owned_by: 'rlhf-ts' }] }),
      'POST /v1/completions': (req, res) => generateHandler(e, 'completion', req, res),
      'POST /v1/chat/completions': (req, res) => generateHandler(e, 'chat', req, res),
    }, opts.host ?? '127.0.0.1', opts.port ?? 0, log);
    return {
      ...server, modelId: e.id, batchSizes: batcher.sizes,
      close: async () => {
        await server.close();
        model.dispose();
      },
    };
  } catch (err) {
    model.dispose();
    throw err;
  }
}
