/** The little HTTP the servers share: a bounded JSON body, JSON answers, errors in OpenAI's shape, a listening server's handle. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiError } from './openai.js';

/** Request bodies above this are refused (413) before they are parsed. */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** The request's body parsed as JSON; ApiError 400 when it is not JSON, 413 when it is too large. */
export async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ApiError(413, `the request body is over ${MAX_BODY_BYTES} bytes`);
    chunks.push(c as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (e) {
    throw new ApiError(400, `the request body is not JSON: ${(e as Error).message}`);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

/** A route's handler; a thrown ApiError becomes its status and OpenAI's error body, anything else a 500. */
export type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/** A started server: its base URL, and close(). */
export interface RunningServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Listens on host:port (0 = any free port) and routes `METHOD /path` to handlers. */
export async function listen(routes: Readonly<Record<string, Handler>>, host: string, port: number, log: (line: string) => void): Promise<RunningServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const handler = routes[`${req.method} ${path}`];
    const failed = (e: unknown) => {
      const err = e instanceof ApiError ? e : new ApiError(500, `internal error: ${(e as Error).message}`, null, 'server_error');
      if (err.status >= 500) log(`${req.method} ${path}: ${err.message}`);
      if (!res.headersSent) sendJson(res, err.status, err.body());
      else res.end();
    };
    if (!handler) return failed(new ApiError(404, `no route ${req.method} ${path} (routes: ${Object.keys(routes).join(', ')})`, null, 'not_found'));
    handler(req, res).catch(failed);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${actual}`,
    port: actual,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}
