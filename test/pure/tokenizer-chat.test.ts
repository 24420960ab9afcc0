import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { applyChatTemplate, type ChatMessage } from '../../src/text/chat.js';
import { HfTokenizer } from '../../src/text/hf.js';
import { repoPath } from './tokenizer-fixtures.js';

// Expected strings below were rendered by Python jinja2 3.1.6 in transformers' environment
// (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, raise_exception).

const CHATML =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

// meta-llama/Llama-2-7b-chat-hf's chat_template.
const LLAMA2 =
  "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}" +
  '{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}' +
  "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
  "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}" +
  "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}" +
  "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

const messages: ChatMessage[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Hi there ' },
  { role: 'assistant', content: ' Hello!' },
  { role: 'user', content: 'Again?' },
];

describe('chat templates', () => {
  test('ChatML with a generation prompt', () => {
    assert.equal(
      applyChatTemplate(CHATML, messages.slice(0, 2), { addGenerationPrompt: true }),
      '<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi there <|im_end|>\n<|im_start|>assistant\n',
    );
    assert.ok(!applyChatTemplate(CHATML, messages.slice(0, 2)).endsWith('assistant\n'));
  });

  test('Llama-2 template with system prompt, bos and eos tokens', () => {
    assert.equal(
      applyChatTemplate(LLAMA2, messages, { bosToken: '<s>', eosToken: '</s>' }),
      '<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi there [/INST] Hello! </s><s>[INST] Again? [/INST]',
    );
  });

  test('blocks are trimmed and lstripped, as in transformers', () => {
    const template = "{% for m in messages %}\n  {% if m.role == 'user' %}\nU: {{ m.content }}\n  {% else %}\nA: {{ m.content }}\n  {% endif %}\n{% endfor %}";
    assert.equal(applyChatTemplate(template, messages.slice(1, 3)), 'U: Hi there \nA:  Hello!\n');
  });

  test("the template's raise_exception and syntax errors come back as clear errors", () => {
    assert.throws(
      () => applyChatTemplate(LLAMA2, [messages[1]!, messages[1]!]),
      /chat template failed to render: .*Conversation roles must alternate/,
    );
    assert.throws(() => applyChatTemplate('{% for m in messages %}{{ m.content }}', messages), /chat template does not parse/);
  });

  test("a model's own template, rendered and encoded: its special tokens become their ids", () => {
    const tok = HfTokenizer.fromDir(repoPath('test', 'fixtures', 'hf-tokenizer'));
    const prompt = applyChatTemplate(tok.chatTemplate!, [{ role: 'user', content: 'Hello' }], {
      addGenerationPrompt: true,
      bosToken: tok.bosToken,
      eosToken: tok.eosToken,
    });
    assert.equal(prompt, '<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n');
    const ids = tok.encode(prompt, { addBos: false });
    assert.deepEqual(ids.filter((id) => id >= 296 && id <= 297), [296, 297, 296]); // <|im_start|> <|im_end|> <|im_start|>
  });
});
