// Chat templates: the Jinja template in a model's tokenizer_config.json (`chat_template`) that turns a list
// of messages into the exact prompt string the model was fine-tuned on, rendered with `@huggingface/jinja`
// (which, like transformers, trims blocks and lstrips blocks and provides `raise_exception`).

import { Template } from '@huggingface/jinja';

/** One message of a conversation: its role and text. */
export interface ChatMessage {
  /** 'system' | 'user' | 'assistant' in most templates; a template may accept others (e.g. 'tool'). */
  role: string;
  content: string;
}

/** How a chat template renders: whether it ends with the assistant's header, and the BOS and EOS text. */
export interface ChatTemplateOptions {
  /** End with the header of an assistant turn, so the model's continuation is the reply. Default false. */
  addGenerationPrompt?: boolean;
  /** Rendered for `bos_token`; default '' (transformers would render a missing token as "None"). */
  bosToken?: string | null;
  /** Rendered for `eos_token`; default ''. */
  eosToken?: string | null;
  /** Further template variables (e.g. `tools`, `enable_thinking`, `date_string`). */
  variables?: Readonly<Record<string, unknown>>;
}

/** Parsed templates by source: a run renders the same one or two templates for every prompt. */
const parsed = new Map<string, Template>();

/**
 * Renders `messages` with a chat template, as transformers' `apply_chat_template(..., tokenize=False)` does.
 * Encode the result with `addBos: false` when the template writes `bos_token` itself (most do).
 * Throws with the template's own message when it does not parse or calls `raise_exception`.
 */
export function applyChatTemplate(template: string, messages: readonly ChatMessage[], opts: ChatTemplateOptions = {}): string {
  let compiled = parsed.get(template);
  if (compiled === undefined) {
    try {
      compiled = new Template(template);
    } catch (e) {
      throw new Error(`chat template does not parse: ${(e as Error).message}`, { cause: e });
    }
    parsed.set(template, compiled);
  }
  try {
    return compiled.render({
      ...opts.variables,
      messages: messages.map((m) => ({ ...m })),
      add_generation_prompt: opts.addGenerationPrompt ?? false,
      bos_token: opts.bosToken ?? '',
      eos_token: opts.eosToken ?? '',
    });
  } catch (e) {
    throw new Error(`chat template failed to render: ${(e as Error).message}`, { cause: e });
  }
}
