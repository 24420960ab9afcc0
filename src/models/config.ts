/** Typed reading of Hugging Face config.json fields, with errors that name the file and the field. */

/**
 * Upper bounds on config.json's sizes, far above any released model's (Llama 3.1 405B: 126 layers, hidden
 * 16384, vocabulary 128256, 128k positions), so that a corrupt or hostile config is refused before the
 * model is built: `num_hidden_layers: 1000000` would otherwise allocate until memory runs out.
 */
export const CONFIG_SIZE_LIMITS: Readonly<Record<string, number>> = {
  num_hidden_layers: 1024, n_layer: 1024,
  hidden_size: 1 << 16, n_embd: 1 << 16,
  intermediate_size: 1 << 20, n_inner: 1 << 20,
  num_attention_heads: 1024, n_head: 1024, num_key_value_heads: 1024, head_dim: 4096,
  vocab_size: 1 << 22,
  max_position_embeddings: 1 << 20, n_positions: 1 << 20,
};

export class ConfigReader {
  constructor(private readonly raw: Record<string, unknown>, private readonly source: string) {}

  fail(field: string, msg: string): never {
    throw new Error(`${this.source}: field '${field}': ${msg}`);
  }
  private get(field: string): unknown {
    return this.raw[field];
  }
  private missing(field: string): never {
    return this.fail(field, 'missing (required)');
  }
  num(field: string, dflt?: number): number {
    const v = this.get(field);
    if (v === undefined || v === null) return dflt ?? this.missing(field);
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(field, `expected a number, got ${JSON.stringify(v)}`);
    return v;
  }
  int(field: string, dflt?: number): number {
    const v = this.num(field, dflt);
    if (!Number.isInteger(v) || v <= 0) this.fail(field, `expected a positive integer, got ${v}`);
    const limit = CONFIG_SIZE_LIMITS[field];
    if (limit !== undefined && v > limit) this.fail(field, `${v} is over the limit of ${limit} (a corrupt config.json?)`);
    return v;
  }
  optInt(field: string): number | null {
    const v = this.get(field);
    if (v === undefined || v === null) return null;
    if (Array.isArray(v)) return this.optIntFrom(field, v[0]);
    return this.optIntFrom(field, v);
  }
  private optIntFrom(field: string, v: unknown): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) this.fail(field, `expected a token id, got ${JSON.stringify(v)}`);
    return v;
  }
  /** A token id or a list of them (eos_token_id may be either). */
  intList(field: string): number[] {
    const v = this.get(field);
    if (v === undefined || v === null) return [];
    return (Array.isArray(v) ? v : [v]).map((x) => this.optIntFrom(field, x));
  }
  bool(field: string, dflt: boolean): boolean {
    const v = this.get(field);
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') this.fail(field, `expected true or false, got ${JSON.stringify(v)}`);
    return v;
  }
  str(field: string, dflt?: string): string {
    const v = this.get(field);
    if (v === undefined || v === null) return dflt ?? this.missing(field);
    if (typeof v !== 'string') this.fail(field, `expected a string, got ${JSON.stringify(v)}`);
    return v;
  }
}

/**
 * What rlhf-ts does with one config.json field: `honoured` (the model code reads it), `metadata` (it
 * changes nothing that is computed: names, dtype of the published file, labels), or a function that
 * returns why a value is refused (null when the value is one the model code matches).
 */
export type FieldRule = 'honoured' | 'metadata' | ((value: unknown) => string | null);

/** Fields any Hugging Face config may carry that change nothing rlhf-ts computes (PreTrainedConfig's own, ours). */
export const METADATA_FIELDS: Readonly<Record<string, FieldRule>> = Object.fromEntries(
  ['_name_or_path', 'architectures', 'model_type', 'transformers_version', 'torch_dtype', 'dtype', 'use_cache', 'id2label',
    'label2id', 'num_labels', 'problem_type', 'output_attentions', 'output_hidden_states', 'return_dict', 'chunk_size_feed_forward',
    'tokenizer_class', 'task_specific_params', 'finetuning_task', 'rlhf_reward', 'bos_token_id', 'eos_token_id', 'pad_token_id',
    'initializer_range'].map((f) => [f, 'metadata' as const]),
);

/** A rule refusing every value but `ok` (and absence): for switches whose other setting the model code does not implement. */
export function onlyValue(ok: unknown, what: string): FieldRule {
  return (v) => (v === undefined || v === null || v === ok ? null : `${JSON.stringify(v)} is not implemented (${what}); only ${JSON.stringify(ok)} is`);
}

/**
 * Every field of `raw` must be in `rules` (or METADATA_FIELDS): an unknown one, or a value a rule refuses,
 * is an error naming the file and the field, so a config the model code would silently misread (Mistral's
 * `sliding_window` run as plain causal attention, once) cannot load.
 */
export function checkFields(raw: Record<string, unknown>, source: string, family: string, rules: Readonly<Record<string, FieldRule>>): void {
  for (const [field, value] of Object.entries(raw)) {
    const rule = rules[field] ?? METADATA_FIELDS[field];
    if (rule === undefined) {
      throw new Error(`${source}: field '${field}' is not implemented for ${family} models (remove it only if it does not change what the model computes)`);
    }
    if (typeof rule === 'function') {
      const why = rule(value);
      if (why !== null) throw new Error(`${source}: field '${field}': ${why}`);
    }
  }
}
