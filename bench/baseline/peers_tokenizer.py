"""A Hugging Face tokenizer for stories260K, built from its llama2c tokenizer.bin (TRL needs one).

tokenizer.bin: int32 max_token_length, then per token float32 score, int32 byte length, the piece's bytes;
ids 0-2 are <unk>, BOS ("\\n<s>\\n") and EOS ("\\n</s>\\n"), 3-258 the byte tokens <0x00>..<0xFF>, and the
rest SentencePiece pieces with "▁" written as a space. llama2c's encoder prepends one space, looks each
UTF-8 character up (bytes + 3 when it has no piece) and then merges, over and over, the adjacent pair whose
merged piece has the highest score. A BPE whose merge ranks are those scores (highest first; what
transformers' SentencePieceExtractor derives from a .model file) with byte fallback does the same;
`rlhf bench peers` checks that both tokenizers give identical ids on sample texts and reports any difference.

Usage: build(path_to_tokenizer_bin, out_dir) -> out_dir (tokenizer.json + tokenizer_config.json).
"""
import json
import os
import struct


def read_llama2c(path):
    with open(path, "rb") as f:
        raw = f.read()
    (max_len,) = struct.unpack_from("<i", raw, 0)
    off, pieces, scores = 4, [], []
    while off < len(raw):
        score, n = struct.unpack_from("<fi", raw, off)
        off += 8
        pieces.append(raw[off : off + n].decode("utf-8", errors="replace"))
        scores.append(score)
        off += n
    return pieces, scores


def build(bin_path, out_dir):
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors

    pieces, scores = read_llama2c(bin_path)
    names = ["<unk>", "<s>", "</s>"] + [p.replace(" ", "▁") for p in pieces[3:]]
    vocab = {name: i for i, name in enumerate(names)}
    # Merges: every split of a multi-character piece into two pieces of the vocabulary, ranked by the merged
    # piece's score (highest first), ties by id; byte tokens and the specials never merge.
    merges = []
    for i, name in enumerate(names):
        if i < 259 or len(name) < 2:
            continue
        for k in range(1, len(name)):
            a, b = name[:k], name[k:]
            if vocab.get(a, 0) >= 259 and vocab.get(b, 0) >= 259:
                merges.append((scores[i], i, a, b))
    merges.sort(key=lambda m: (-m[0], m[1]))
    bpe = models.BPE(vocab=vocab, merges=[(a, b) for _, _, a, b in merges], unk_token="<unk>", byte_fallback=True, fuse_unk=True)
    tok = Tokenizer(bpe)
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tok.add_special_tokens([AddedToken("<unk>", special=True), AddedToken("<s>", special=True), AddedToken("</s>", special=True)])
    # BOS first, as llama2c's encode(bos=True) and rlhf-ts's encode(text, { addBos: true }).
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    os.makedirs(out_dir, exist_ok=True)
    tok.save(os.path.join(out_dir, "tokenizer.json"))
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
                   "pad_token": "</s>", "add_bos_token": True, "model_max_length": 512}, f)
    return out_dir
