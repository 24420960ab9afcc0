"""TRL's own trainers for `rlhf bench peers`: the same workloads as bench/peers.ts runs through rlhf-ts.

Needs trl (1.13) and transformers on the same torch as the addon links: scripts/setup-peers.sh installs them
into .venv-peers/, a virtual environment layered over .venv/ (its torch is the very libtorch the addon
links). Started as a long-lived process (bench/baseline/common.py); each command runs one whole training
run and answers its timings and quality:

  rm   TRL's RewardTrainer on AutoModelForSequenceClassification loaded from the backbone directory that
       bench/peers.ts wrote (the same scratch weights as ours; the 1×D score head is each side's own
       random init), on the same token ids (SST-2 pairs through rlhf-ts's GPT-2 BPE, BOS first; TRL takes
       pre-tokenized `chosen_ids`/`rejected_ids`). Quality: held-out pairwise accuracy.
  dpo  TRL's DPOTrainer on stories260K (assets/stories260k), the reference log-probs precomputed (as ours
       caches them). DPOTrainer tokenizes text only, so the pairs go in as text through a Hugging Face
       tokenizer built from tokenizer.bin (peers_tokenizer.py; bench/peers.ts checks it gives our ids), and
       TRL appends EOS to each completion (one token more per completion than ours). Quality: held-out
       implicit-reward accuracy and margin, and the mean training loss of the last steps.

Timing: a TrainerCallback records the clock at each on_step_end; the step time is the mean interval after
the first `warm` steps (warm start, compilation of nothing, allocator growth excluded), as bench/peers.ts
reads ours from metrics.jsonl. Settings follow TRL's CPU recommendations: fp32, use_cpu, no
dataloader workers, the default fused CPU AdamW (`adamw_torch_fused`), logging every step (as ours).
"""
import math
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import hello, reply, serve, start  # noqa: E402

torch, threads = start()
INSTALL = "TRL is not installed for this torch: run scripts/setup-peers.sh (installs trl==1.13.0 and transformers into .venv-peers/)"
try:
    import datasets
    import transformers
    import trl
except ImportError as e:
    reply({"error": f"{INSTALL} ({e})"})
    sys.exit(2)
from peers_tokenizer import build as build_tokenizer  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
STORIES = os.path.join(ROOT, "assets", "stories260k")
transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()
datasets.disable_progress_bars()


class StepClock(transformers.TrainerCallback):
    def __init__(self):
        self.ends = []

    def on_step_end(self, args, state, control, **kw):
        self.ends.append(time.perf_counter())


def step_seconds(ends, warm):
    """Mean seconds per step after the first `warm` steps."""
    if len(ends) <= warm:
        raise ValueError(f"{len(ends)} steps timed, need more than warm={warm}")
    return (ends[-1] - ends[warm - 1]) / (len(ends) - warm) if warm > 0 else (ends[-1] - ends[0]) / (len(ends) - 1)


def common_args(cmd, out):
    """The settings both sides share (bench/peers.ts sends ours), and TRL's CPU recommendations."""
    return dict(
        output_dir=out, max_steps=cmd["steps"], per_device_train_batch_size=cmd["batchSize"], learning_rate=cmd["lr"],
        lr_scheduler_type="cosine", warmup_steps=cmd["warmupSteps"], weight_decay=cmd["weightDecay"], max_grad_norm=cmd["clipGradNorm"],
        logging_steps=1, save_strategy="no", report_to="none", use_cpu=True, dataloader_num_workers=0, seed=cmd["seed"],
        bf16=False, fp16=False, disable_tqdm=True,
    )


def losses(trainer, last):
    rows = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    return sum(rows[-last:]) / len(rows[-last:])


def right_pad(seqs, pad):
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros(len(seqs), width, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return ids, mask


# ---- reward model ----------------------------------------------------------------------------------------
def rm(cmd):
    from transformers import AutoModelForSequenceClassification, PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_file=None, **_gpt2_files(cmd["model"]))
    model = AutoModelForSequenceClassification.from_pretrained(cmd["model"], num_labels=1, dtype=torch.float32)
    model.config.pad_token_id = cmd["padId"]
    tok.pad_token_id = cmd["padId"]
    train = datasets.Dataset.from_dict({"chosen_ids": cmd["train"]["chosen"], "rejected_ids": cmd["train"]["rejected"]})
    with tempfile.TemporaryDirectory() as out:
        args = trl.RewardConfig(**common_args(cmd, out), max_length=cmd["maxTokens"], center_rewards_coefficient=None)
        clock = StepClock()
        trainer = trl.RewardTrainer(model=model, args=args, train_dataset=train, processing_class=tok, callbacks=[clock])
        trainer.train()
    model.eval()
    correct, n = 0, len(cmd["test"]["chosen"])
    with torch.inference_mode():
        for i in range(0, n, 64):
            c, r = cmd["test"]["chosen"][i : i + 64], cmd["test"]["rejected"][i : i + 64]
            ids, mask = right_pad(c + r, cmd["padId"])
            s = model(input_ids=ids, attention_mask=mask).logits[:, 0]
            correct += (s[: len(c)] > s[len(c) :]).sum().item() + 0.5 * (s[: len(c)] == s[len(c) :]).sum().item()
    return {"stepSeconds": step_seconds(clock.ends, cmd["warm"]), "steps": len(clock.ends), "accuracy": correct / n,
            "trainLoss": losses(trainer, 5), "optim": args.optim}


def _gpt2_files(model_dir):
    """GPT-2's BPE as a fast tokenizer from the vocab.json/merges.txt beside the backbone (only its pad id is used: the data are ids)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    bpe = models.BPE.from_file(os.path.join(model_dir, "vocab.json"), os.path.join(model_dir, "merges.txt"))
    t = Tokenizer(bpe)
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    t.decoder = decoders.ByteLevel()
    return {"tokenizer_object": t}


# ---- DPO -------------------------------------------------------------------------------------------------
_TOK = None


def stories_tokenizer():
    global _TOK
    if _TOK is None:
        from transformers import PreTrainedTokenizerFast

        _TOK = PreTrainedTokenizerFast.from_pretrained(build_tokenizer(os.path.join(STORIES, "tokenizer.bin"), tempfile.mkdtemp(prefix="rlhf-peers-tok-")))
    return _TOK


def tokenizer_check(cmd):
    """Our ids for sample texts against the built tokenizer's: the texts whose ids differ."""
    tok = stories_tokenizer()
    bad = [t for t, ids in zip(cmd["texts"], cmd["ids"]) if tok(t)["input_ids"] != ids]
    return {"checked": len(cmd["texts"]), "mismatches": bad[:5], "mismatchCount": len(bad)}


def sequence_logps(model, prompts, completions):
    """Summed log-probs of each completion after its prompt (BOS-first ids), one right-padded batch."""
    seqs = [p + c for p, c in zip(prompts, completions)]
    ids, mask = right_pad(seqs, 0)
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    lp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None])[..., 0]
    keep = torch.zeros_like(lp)
    for i, (p, c) in enumerate(zip(prompts, completions)):
        keep[i, len(p) - 1 : len(p) - 1 + len(c)] = 1
    return (lp * keep).sum(-1)


def dpo(cmd):
    from transformers import AutoModelForCausalLM

    tok = stories_tokenizer()
    model = AutoModelForCausalLM.from_pretrained(STORIES, dtype=torch.float32)
    ref = AutoModelForCausalLM.from_pretrained(STORIES, dtype=torch.float32).eval()
    train = datasets.Dataset.from_dict({k: cmd["train"][k] for k in ("prompt", "chosen", "rejected")})
    with tempfile.TemporaryDirectory() as out:
        args = trl.DPOConfig(**common_args(cmd, out), beta=cmd["beta"], loss_type=["sigmoid"], max_length=cmd["maxTokens"],
                             precompute_ref_log_probs=True)
        clock = StepClock()
        trainer = trl.DPOTrainer(model=model, ref_model=ref, args=args, train_dataset=train, processing_class=tok, callbacks=[clock])
        trainer.train()
    model.eval()
    t = cmd["test"]  # ids, BOS first, as ours (bench/peers.ts sends both)
    margins = []
    with torch.inference_mode():
        for i in range(0, len(t["prompt"]), 32):
            sl = slice(i, i + 32)
            pc, pr = sequence_logps(model, t["prompt"][sl], t["chosen"][sl]), sequence_logps(model, t["prompt"][sl], t["rejected"][sl])
            rc, rr = sequence_logps(ref, t["prompt"][sl], t["chosen"][sl]), sequence_logps(ref, t["prompt"][sl], t["rejected"][sl])
            margins += (cmd["beta"] * ((pc - rc) - (pr - rr))).tolist()
    acc = sum(1.0 if m > 0 else 0.5 if m == 0 else 0.0 for m in margins) / len(margins)
    return {"stepSeconds": step_seconds(clock.ends, cmd["warm"]), "steps": len(clock.ends), "accuracy": acc,
            "margin": sum(margins) / len(margins), "heldOutLoss": sum(math.log1p(math.exp(-m)) for m in margins) / len(margins),
            "trainLoss": losses(trainer, 5), "optim": args.optim}


# ---- GRPO ------------------------------------------------------------------------------------------------
class Afinn:
    """npm `sentiment`'s AFINN-165 analysis (rlhf-ts's afinn_comparative), from the package's own lexicon:
    lower-case, punctuation to spaces, split on single spaces; a word's valence flips after a negator; the
    comparative score is the sum over the number of tokens."""

    def __init__(self, lang_dir):
        import json
        import re

        self.labels = json.load(open(os.path.join(lang_dir, "labels.json")))
        self.negators = json.load(open(os.path.join(lang_dir, "negators.json")))
        self.punct = re.compile(r"[.,/#!?$%^&*;:{}=_`\"~()]")
        self.spaces = re.compile(r"\s\s+")

    def comparative(self, text):
        t = self.spaces.sub(" ", self.punct.sub(" ", text.lower().replace("\n", " "))).strip().split(" ")
        score = 0
        for i, w in enumerate(t):
            if w in self.labels:
                v = self.labels[w]
                score += -v if i > 0 and self.negators.get(t[i - 1]) else v
        return score / len(t) if t else 0.0


def reward_check(cmd):
    a = Afinn(cmd["lexicon"])
    bad = [(t, r, a.comparative(t)) for t, r in zip(cmd["texts"], cmd["rewards"]) if abs(a.comparative(t) - r) > 1e-9]
    return {"checked": len(cmd["texts"]), "mismatchCount": len(bad), "mismatches": bad[:3]}


def timed(obj, name, into):
    """Wraps obj.name so that each call's seconds are appended to `into`."""
    fn = getattr(obj, name)

    def wrapper(*a, **kw):
        t0 = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            into.append(time.perf_counter() - t0)

    setattr(obj, name, wrapper)


def grpo(cmd):
    from transformers import AutoModelForCausalLM

    afinn = Afinn(cmd["lexicon"])

    def afinn_comparative(completions, **kw):
        return [afinn.comparative(c) for c in completions]

    tok = stories_tokenizer()
    model = AutoModelForCausalLM.from_pretrained(STORIES, dtype=torch.float32)
    n = cmd["prompts"] * cmd["samplesPerPrompt"]
    train = datasets.Dataset.from_dict({"prompt": [""] * (cmd["prompts"] * (cmd["steps"] + 1))})  # "" = BOS only, as ours
    with tempfile.TemporaryDirectory() as out:
        base = common_args({**cmd, "batchSize": n, "warmupSteps": 0}, out)
        base["lr_scheduler_type"] = "constant"
        args = trl.GRPOConfig(**base, num_generations=cmd["samplesPerPrompt"], max_completion_length=cmd["maxNewTokens"], temperature=1.0,
                              top_p=1.0, top_k=0, beta=cmd["klCoef"], loss_type="bnpo", scale_rewards="group", num_iterations=1,
                              steps_per_generation=1, use_vllm=False, epsilon=0.2)
        clock = StepClock()
        trainer = trl.GRPOTrainer(model=model, reward_funcs=afinn_comparative, args=args, train_dataset=train, processing_class=tok, callbacks=[clock])
        gen, gen_and_score = [], []
        timed(trainer, "_generate", gen)
        timed(trainer, "_generate_and_score_completions", gen_and_score)
        trainer.train()
    w = cmd["warm"]
    rewards = [r["reward"] for r in trainer.state.log_history if "reward" in r]
    lengths = [r["completions/mean_length"] for r in trainer.state.log_history if "completions/mean_length" in r]
    step = step_seconds(clock.ends, w)
    g = sum(gen[w:]) / len(gen[w:])
    sc = sum(gen_and_score[w:]) / len(gen_and_score[w:]) - g
    return {"stepSeconds": step, "steps": len(clock.ends), "generation": g, "scoring": sc, "update": step - g - sc,
            "reward": sum(rewards[-5:]) / len(rewards[-5:]), "length": sum(lengths) / len(lengths), "optim": args.optim}


def versions(_cmd):
    import accelerate

    return {"trl": trl.__version__, "transformers": transformers.__version__, "accelerate": accelerate.__version__,
            "datasets": datasets.__version__, "torch": torch.__version__}


def with_threads_after(out):
    """What a run left libtorch's pool at (accelerate or the Trainer must not have changed it)."""
    return {**out, "threadsAfter": torch.get_num_threads()} if "stepSeconds" in out else out


hello(torch)
serve({"rm": rm, "dpo": dpo, "grpo": grpo, "tokenizer": tokenizer_check, "reward": reward_check, "versions": versions},
      whole_command=True, quiet_stdout=True, finish=with_threads_after)
