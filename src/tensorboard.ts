/**
 * TensorBoard event files, written directly: the TFRecord framing and the few protobuf messages a scalar
 * or a text summary needs (tensorflow/core/util/event.proto, summary.proto, tensor.proto), so no
 * TensorFlow or protobuf package is involved. W&B's `wandb sync --sync-tensorboard` reads the same files.
 *
 * TFRecord: each record is uint64 length (little-endian) · uint32 masked CRC-32C of those 8 bytes · the
 * data · uint32 masked CRC-32C of the data, where masked(c) = ((c >>> 15) | (c << 17)) + 0xa282ead8.
 * The first event carries file_version "brain.Event:2". A resumed run writes a SessionLog START at its
 * step, so TensorBoard drops what an earlier file logged at or after it (its restart purge).
 * metrics.jsonl stays the source of truth; this is a view of it.
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import type { Schema } from './config.js';
import { hostname } from 'node:os';
import { join } from 'node:path';

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32C (Castagnoli), as TFRecord uses. */
export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC32C_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const masked = (c: number): number => ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;

/** One TFRecord around `data`. */
export function tfRecord(data: Uint8Array): Buffer {
  const head = Buffer.alloc(12);
  head.writeBigUInt64LE(BigInt(data.length), 0);
  head.writeUInt32LE(masked(crc32c(head.subarray(0, 8))), 8);
  const tail = Buffer.alloc(4);
  tail.writeUInt32LE(masked(crc32c(data)), 0);
  return Buffer.concat([head, data, tail]);
}

// ---- protobuf wire format: just what the messages below need -------------------------------------------

function varint(n: number | bigint): Buffer {
  let x = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  do {
    const b = Number(x & 0x7fn);
    x >>= 7n;
    out.push(x > 0n ? b | 0x80 : b);
  } while (x > 0n);
  return Buffer.from(out);
}
const key = (field: number, wire: number): Buffer => varint((field << 3) | wire);
const bytesField = (field: number, b: Uint8Array): Buffer => Buffer.concat([key(field, 2), varint(b.length), b]);
const stringField = (field: number, s: string): Buffer => bytesField(field, Buffer.from(s, 'utf8'));
function doubleField(field: number, x: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(x);
  return Buffer.concat([key(field, 1), b]);
}
function floatField(field: number, x: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeFloatLE(x);
  return Buffer.concat([key(field, 5), b]);
}

/** Summary.Value with simple_value (a scalar). */
const scalarValue = (tag: string, x: number): Buffer => Buffer.concat([stringField(1, tag), floatField(2, x)]);

/** Summary.Value for the text plugin: metadata.plugin_data.plugin_name "text", a scalar DT_STRING tensor. */
function textValue(tag: string, text: string): Buffer {
  const metadata = bytesField(1, stringField(1, 'text')); // SummaryMetadata.plugin_data = PluginData{plugin_name}
  const tensor = Buffer.concat([key(1, 0), varint(7), bytesField(2, Buffer.alloc(0)), stringField(8, text)]); // dtype DT_STRING, shape [], string_val
  return Buffer.concat([stringField(1, tag), bytesField(8, tensor), bytesField(9, metadata)]);
}

/** An Event: wall_time, step, and one of file_version / summary / session_log. */
function event(wallTime: number, step: number, body: Buffer): Buffer {
  return Buffer.concat([doubleField(1, wallTime), key(2, 0), varint(step), body]);
}

/** The numeric leaves of a metrics row as TensorBoard tags: nested keys joined by '/', nulls and non-numbers skipped. */
export function scalarTags(row: Record<string, unknown>, prefix = ''): [string, number][] {
  return Object.entries(row).flatMap(([k, v]): [string, number][] => {
    if (k === 'step' && prefix === '') return [];
    const tag = prefix ? `${prefix}/${k}` : k;
    if (typeof v === 'number' && Number.isFinite(v)) return [[tag, v]];
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) return scalarTags(v as Record<string, unknown>, tag);
    return [];
  });
}

/** The `logging` section every trainer's config has. */
export interface LoggingFields {
  /** A directory for TensorBoard event files ('' = none; metrics.jsonl is always written). */
  tensorboard: string;
}

/** No TensorBoard files unless asked for. */
export const LOGGING_DEFAULTS: Readonly<LoggingFields> = { tensorboard: '' };

/** The `logging` section's schema (shared by every trainer's config schema). */
export const LOGGING_SCHEMA: Schema<LoggingFields> = {
  tensorboard: { doc: "TensorBoard event files in this directory: every metric as a scalar (online trainers: evaluation samples as text too; '' = none)" },
};

/** A writer for a config's logging section, or undefined when it asks for none. */
export function tensorBoardFor(config: unknown, resumedFrom: number | null): TensorBoardWriter | undefined {
  const dir = (config as { logging?: Partial<LoggingFields> } | null)?.logging?.tensorboard;
  return dir ? new TensorBoardWriter(dir, { resumedFrom }) : undefined;
}

/** Appends events to one new file in a log directory (one file per run session; each event appended as it comes, so nothing needs closing). */
export class TensorBoardWriter {
  readonly path: string;
  constructor(dir: string, opts: { resumedFrom?: number | null; clock?: () => number; fileSuffix?: string } = {}) {
    mkdirSync(dir, { recursive: true });
    this.clock = opts.clock ?? (() => Date.now() / 1000);
    const t = this.clock();
    this.path = join(dir, `events.out.tfevents.${Math.floor(t)}.${opts.fileSuffix ?? `${hostname()}.${process.pid}`}`);
    writeFileSync(this.path, '');
    this.write(event(t, 0, stringField(3, 'brain.Event:2')));
    if (opts.resumedFrom != null) this.write(event(t, opts.resumedFrom, bytesField(6, Buffer.concat([key(1, 0), varint(1)])))); // SessionLog{status: START}
  }
  private readonly clock: () => number;

  private write(e: Buffer): void {
    appendFileSync(this.path, tfRecord(e));
  }

  /** Every numeric metric of a metrics.jsonl row as a scalar at the row's step. */
  scalars(step: number, row: Record<string, unknown>): void {
    const values = scalarTags(row).map(([tag, x]) => bytesField(1, scalarValue(tag, x)));
    if (values.length) this.write(event(this.clock(), step, bytesField(5, Buffer.concat(values))));
  }

  /** A text summary (markdown) at `step`. */
  text(step: number, tag: string, text: string): void {
    this.write(event(this.clock(), step, bytesField(5, bytesField(1, textValue(tag, text)))));
  }
}
