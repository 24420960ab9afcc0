/** Prompts for online RL: a JSONL file of {"prompt": …}, a text file (one per line), or inline. */
import { readFileSync } from 'node:fs';
import type { OnlineConfig } from './config.js';

export function loadPrompts(d: OnlineConfig['data']): string[] {
  if (!d.path) {
    if (d.prompts.length === 0) throw new Error("data.prompts is empty and data.path is unset: give prompts ('' = BOS only)");
    return [...d.prompts];
  }
  let text: string;
  try {
    text = readFileSync(d.path, 'utf8');
  } catch (e) {
    throw new Error(`data.path ${d.path}: ${(e as Error).message}`);
  }
  const lines = text.split('\n');
  const out: string[] = [];
  const jsonl = d.path.endsWith('.jsonl') || d.path.endsWith('.json');
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    if (!jsonl) return void out.push(line);
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch (e) {
      throw new Error(`${d.path}:${i + 1}: not valid JSON (${(e as Error).message})`);
    }
    const p = (rec as { prompt?: unknown }).prompt;
    if (typeof p !== 'string') throw new Error(`${d.path}:${i + 1}: field 'prompt' must be a string`);
    out.push(p);
  });
  if (out.length === 0) throw new Error(`${d.path}: no prompts`);
  return out;
}
