/**
 * The lab's experiments as one shape: `rlhf lab <name> [--config FILE] [--set k=v] [--quick] [--out DIR]`.
 * An experiment has a documented, validated config (with smaller `quick` overrides for tests) and a run that
 * returns one report section (plots, tables, a paragraph of what was observed) plus its headline numbers.
 * Runs write into OUT/<name>/ (resumable as each experiment arranges), the section into
 * OUT/sections/<name>.json, and OUT/report.html is rebuilt from every section present — so experiments run
 * one after another add up to one report.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Schema } from '../config.js';
import { buildReport, writeReport, type Section } from './report.js';
import { readJsonFile } from '../atomic.js';

/** What an experiment runs in: its own directory, the seed, --quick, progress lines and an abort signal. */
export interface LabContext {
  /** This experiment's own directory (OUT/<name>). */
  dir: string;
  seed: number;
  quick: boolean;
  progress: (line: string) => void;
  signal?: AbortSignal;
}

/** What an experiment returns: its report section and its headline numbers. */
export interface LabOutcome {
  section: Section;
  /** Headline numbers, printed with --json and kept beside the section. */
  result: Record<string, unknown>;
}

/** A `rlhf lab <name>` experiment: its config with defaults, schema and --quick overrides, and run(). */
export interface Experiment<C extends object = object> {
  name: string;
  summary: string;
  defaults: C;
  schema: Schema<C>;
  /** What --quick changes (merged over the defaults): the same experiment, small, under a minute. */
  quick: Record<string, unknown>;
  run(cfg: C, ctx: LabContext): Promise<LabOutcome>;
}

/** Writes an experiment's outcome into OUT/sections/<name>.json and rebuilds OUT/report.html from all sections. */
export function recordOutcome(out: string, name: string, outcome: LabOutcome, meta: { config: unknown; seed: number }): string {
  const dir = join(out, 'sections');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.json`);
  writeFileSync(`${path}.tmp`, JSON.stringify({ name, ...outcome, config: meta.config, seed: meta.seed }));
  renameSync(`${path}.tmp`, path);
  return rebuildLabReport(out);
}

/** OUT/report.html from every OUT/sections/*.json, in name order. */
export function rebuildLabReport(out: string): string {
  const dir = join(out, 'sections');
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')).sort() : [];
  const saved = files.map((f) => readJsonFile<{ name: string; section: Section; config: unknown; seed: number }>(join(dir, f)));
  const report = join(out, 'report.html');
  writeReport(report, buildReport({
    title: 'rlhf lab: the reward model\'s failures, measured',
    summary: [`${saved.length} experiment${saved.length === 1 ? '' : 's'} in this report: ${saved.map((s) => s.name).join(', ')}. Each section says what was run and what was observed.`],
    meta: { config: Object.fromEntries(saved.map((s) => [s.name, s.config])), seed: saved[0]?.seed ?? 0, versions: { node: process.version }, hardware: {} },
    sections: saved.map((s) => s.section),
  }));
  return report;
}
