// Tokenizers and chat templates: text ⇄ token ids for every model format the project loads.
export { cannotFit, loadTokenizer, type LoadTokenizerOptions, type Tokenizer } from './tokenizer.js';
export { Llama2cTokenizer, type Llama2cOptions } from './llama2c.js';
export { Gpt2BpeTokenizer, type Gpt2BpeOptions } from './bpe.js';
export { HfTokenizer, type HfTokenizerConfig, type HfTokenizerOptions, type HfTokenSpec } from './hf.js';
export { applyChatTemplate, type ChatMessage, type ChatTemplateOptions } from './chat.js';
export { PACKAGED_TOKENIZERS, packagedTokenizerFiles } from './packaged.js';
