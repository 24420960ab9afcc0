// Shared by the tokenizer tests: where the repository is, and text that stresses round trips.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest ancestor holding package.json, of this compiled file or else of the cwd. */
export function repoRoot(): string {
  for (const start of [dirname(fileURLToPath(import.meta.url)), process.cwd()]) {
    for (let d = start; ; d = dirname(d)) {
      if (existsSync(join(d, 'package.json'))) return d;
      if (dirname(d) === d) break;
    }
  }
  throw new Error('no package.json above the test file or the working directory');
}

export const repoPath = (...parts: string[]): string => join(repoRoot(), ...parts);

/** Hand-picked hard cases: leading/trailing/multiple spaces, newlines, tabs, accents, CJK, emoji. */
export const HARD_TEXTS: readonly string[] = [
  'Once upon a time',
  ' leading space',
  '  two leading spaces',
  'trailing  ',
  '\n\nnewlines first\n',
  'tab\tseparated\tvalues',
  'Café, naïve, façade, Ångström, ß',
  'e\u0301 (combining acute) vs é',
  '日本語のテキストと中文和한국어',
  'emoji 🎉 skin tone 👍🏽 family 👨‍👩‍👧 flag 🇫🇷',
  'math ∑ x² ≤ ∞ and € ™ “quotes”',
  'a\u00a0b\u2028c\u3000d',
  "It's, we're, they'll, I'd, you've",
  '<0x41> and <s> as literal text',
  'x',
];

/** Deterministic pseudo-random strings over a pool mixing ASCII, whitespace, accents, CJK and emoji. */
export function randomTexts(count: number, maxLen: number, seed = 12345): string[] {
  const pool = [...'abcdefghijklmnopqrstuvwxyz ABCXYZ.,!?\'"\n\t 0123456789éèüßñÅ日本中文한국😀🎉👍🏽€™â<>|[]~\\%'];
  let s = seed;
  const rnd = (): number => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  return Array.from({ length: count }, () => {
    let text = '';
    for (let n = Math.floor(rnd() * maxLen); n > 0; n--) text += pool[Math.floor(rnd() * pool.length)]!;
    return text;
  });
}
