/** Typed reading of Hugging Face config.json fields, with errors that name the file and the field. */
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
