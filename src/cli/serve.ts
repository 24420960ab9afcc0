/** `rlhf serve-model`, `rlhf serve-rm`: the model and reward-model servers (src/serve/) until SIGINT or SIGTERM. */
import { setNumThreads } from '../tensor/index.js';
import { serveModel } from '../serve/model-server.js';
import { serveRewardModel } from '../serve/reward-server.js';
import type { RunningServer } from '../serve/http.js';
import { type OptionSpec, THREADS_OPTION, UsageError } from './args.js';
import type { Command } from './main.js';

const say = (l: string) => process.stderr.write(`${l}\n`);

/** Waits for SIGINT or SIGTERM, then closes the server. */
async function untilStopped(server: RunningServer): Promise<void> {
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
}

const LISTEN: OptionSpec[] = [
  { name: 'host', type: 'string', default: '127.0.0.1', help: 'address to listen on' },
  { name: 'port', type: 'number', default: 8000, help: 'port (0 = any free port)', integer: true, min: 0 },
];

export const serveCommands: Record<string, Command> = {
  'serve-model': {
    summary: 'an OpenAI-compatible server (/v1/models, /v1/completions, /v1/chat/completions) for a model, batching concurrent requests',
    options: [
      { name: 'model', type: 'string', default: 'stories260k', help: "a model directory, or 'stories260k' (embedded); the API's model id" },
      ...LISTEN,
      { name: 'max-batch', type: 'number', default: 64, help: 'rows per batch at most', integer: true, min: 1 },
      { name: 'window-ms', type: 'number', default: 5, help: 'milliseconds a batch waits for more requests', min: 0 },
      THREADS_OPTION,
    ],
    async run(o) {
      if ((o.threads as number) > 0) setNumThreads(o.threads as number);
      const server = await serveModel({ model: o.model as string, host: o.host as string, port: o.port as number, maxBatch: o['max-batch'] as number, windowMs: o['window-ms'] as number, log: (l) => say(`[serve-model] ${l}`) });
      say(`[serve-model] serving '${server.modelId}' at ${server.url}/v1 (Ctrl-C stops)`);
      await untilStopped(server);
      const sizes = server.batchSizes;
      return { url: `${server.url}/v1`, model: server.modelId, batches: sizes.length, rows: sizes.reduce((a, x) => a + x, 0), maxBatch: Math.max(0, ...sizes) };
    },
  },
  'serve-rm': {
    summary: "a reward model behind OpenRLHF's remote reward protocol (POST /get_reward)",
    options: [{ name: 'model', type: 'string', help: 'a reward-model or ensemble directory (required)' }, ...LISTEN, THREADS_OPTION],
    async run(o) {
      if (!o.model) throw new UsageError('--model is required (a reward-model directory)');
      if ((o.threads as number) > 0) setNumThreads(o.threads as number);
      const server = await serveRewardModel({ model: o.model as string, host: o.host as string, port: o.port as number, log: (l) => say(`[serve-rm] ${l}`) });
      say(`[serve-rm] serving ${o.model as string} at ${server.url}/get_reward (Ctrl-C stops)`);
      await untilStopped(server);
      return { url: `${server.url}/get_reward` };
    },
  },
};
