/**
 * `rlhf serve-rm`: a reward model (or ensemble) trained here behind OpenRLHF's remote reward protocol
 * (src/reward/remote.ts): `POST /get_reward` with `{"query": [text, …], "prompts"?, "labels"?}` answers
 * `{"rewards": [...], "scores": [...], "extra_logs": {}}`, one reward per query (the whole prompt +
 * response text, as OpenRLHF sends it), scored as the `model:DIR` reward source scores a sequence. So an
 * OpenRLHF run (`--remote_rm_url http://HOST:PORT/get_reward`), or our own `http://…` reward source, can use it.
 */
import { resolveModelDir } from '../models/hub.js';
import { loadModelReward } from '../reward/sources.js';
import { loadTokenizer } from '../text/index.js';
import { listen, readJson, type RunningServer, sendJson } from './http.js';
import { ApiError } from './openai.js';

/** How serve-rm runs: the reward model and where it listens. */
export interface ServeRewardOptions {
  model: string;
  host?: string;
  /** 0 = any free port. */
  port?: number;
  log?: (line: string) => void;
}

function queriesOf(body: unknown): string[] {
  const q = (body as { query?: unknown } | null)?.query;
  if (!Array.isArray(q) || !q.every((x) => typeof x === 'string')) throw new ApiError(400, "'query' must be a list of strings (prompt + response texts)", 'query');
  return q as string[];
}

/** Loads the reward model and serves it (see the header); close() stops the server and frees the model. */
export async function serveRewardModel(opts: ServeRewardOptions): Promise<RunningServer> {
  const tok = loadTokenizer(resolveModelDir(opts.model));
  const source = loadModelReward(opts.model, tok);
  const log = opts.log ?? (() => {});
  try {
    const server = await listen({
      'POST /get_reward': async (req, res) => {
        const query = queriesOf(await readJson(req));
        const promptIds = query.map((q) => tok.encode(q, { addBos: true }));
        const out = source.score({ prompts: query, completions: query.map(() => ''), promptIds, completionIds: query.map(() => []) });
        log(`scored ${query.length} queries`);
        sendJson(res, 200, { rewards: out.rewards, scores: out.rewards, extra_logs: {} });
      },
    }, opts.host ?? '127.0.0.1', opts.port ?? 0, log);
    return {
      ...server,
      close: async () => {
        await server.close();
        source.dispose();
      },
    };
  } catch (err) {
    source.dispose();
    throw err;
  }
}
