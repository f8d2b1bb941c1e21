"""SFT throughput with LoRA: lmforge sft vs TRL's `SFTTrainer`, same model, data, LoRA and schedule.

Both tune the same randomly initialised Llama (demo-style 2,048-token BPE with the ChatML
template) with the same LoRA config (rank 16, alpha 32, all linear projections), AdamW, LR,
warmup + cosine, batch size and number of steps, loss on the answer tokens only. The data are the
shipped single-turn instruction examples (English Alpaca-format and German messages-format),
given to TRL as prompt/completion pairs rendered with the same chat template, so both see the
same token ids. Throughput counts real (non-padding) tokens over `trainer.train()` /
`train_sft()` only; start-up and dataset tokenization are excluded for both. Quality check: the
held-out loss per answer token of both tuned models, measured the same way.

Contenders, alternating for `--rounds`:
  lmforge         precision "auto" (bf16 autocast where the CPU has native bf16), length-grouped batches
  trl_bf16        SFTTrainer with bf16=True (the same precision)
  trl_default     SFTTrainer defaults (fp32 on CPU)

With `--packing` (issue #27), conversations whose lengths vary like real chat data: answers cut
from the shipped corpus at lengths drawn from a log-normal distribution (median ~120 tokens, long
tail clipped to 20-1,000), short prompts; a model with a 1,024-token context. Contenders, each
`--steps` steps at the same tokens per step (`--rows` rows of 1,024 tokens; the padded run takes
as many conversations as fill that many tokens on average), in lmforge's precision:
  lmforge_packed  sft.packing: whole conversations in rows of 1,024 with document masks
  lmforge_padded  lmforge's default: length-grouped padded batches
  trl_packed      SFTTrainer packing=True (best-fit decreasing, which TRL runs padding-free: the
                  rows of a batch flattened into one with position ids)

    python bench/sft_throughput.py
    python bench/sft_throughput.py --packing
"""

import argparse
import logging
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lmforge.chat.encoding import encode_all  # noqa: E402
from lmforge.chat.template import render_chat  # noqa: E402
from lmforge.recipe import ModelConfig, SftConfig, SftDataset, TokenizerConfig  # noqa: E402
from lmforge.sft.data import mix_datasets  # noqa: E402
from lmforge.sft.train import heldout_loss, train_sft  # noqa: E402
from lmforge.tokenizer import run_tokenizer_stage  # noqa: E402
from lmforge.train.model import build_model, count_params, hf_config  # noqa: E402
from lmforge.train.tuning import attach_method  # noqa: E402

INSTR = ROOT / "examples" / "instructions"
CORPUS = [str(ROOT / "examples" / "corpus" / lang / "train.jsonl") for lang in ("en", "de")]


def single_turn(convs: list[dict]) -> list[dict]:
    return [c for c in convs if [m["role"] for m in c["messages"] if m["role"] != "system"] == ["user", "assistant"]]


def run_lmforge(model, tok, examples, cfg) -> tuple[float, int]:
    start = time.perf_counter()
    stats, _ = train_sft(model, examples, cfg, 0, tok.pad_token_id, None)
    return time.perf_counter() - start, stats["tokens"]


def run_trl(model, tok, convs, cfg, steps: int, bf16: bool, out: Path, packing: bool = False, use_cpu: bool = True):
    """TRL's SFTTrainer with the same LoRA and schedule; `packing`: its packing=True (best fit
    decreasing, which TRL runs padding-free), cfg.batch_size packed rows per step."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig as TrlConfig
    from trl import SFTTrainer

    rows = []
    for c in convs:
        prompt = render_chat(tok, c["messages"][:-1], add_generation_prompt=True)
        rows.append({"prompt": prompt, "completion": render_chat(tok, c["messages"])[len(prompt) :]})
    args = TrlConfig(
        output_dir=str(out),
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.lr,
        max_steps=steps,
        lr_scheduler_type="cosine",
        warmup_steps=cfg.warmup_steps,
        weight_decay=0.0,
        max_grad_norm=1.0,
        logging_steps=10**6,
        save_strategy="no",
        report_to=[],
        bf16=bf16,
        use_cpu=use_cpu,
        packing=packing,
        max_length=cfg.max_len,
        dataloader_num_workers=0,
        seed=0,
        disable_tqdm=True,
    )
    lora = LoraConfig(
        r=cfg.lora_rank,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=0.0,
        target_modules=cfg.lora_targets,
        task_type="CAUSAL_LM",
    )
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok, peft_config=lora
    )
    tokens = [0]
    collate = trainer.data_collator

    def counting(features):
        batch = collate(features)
        tokens[0] += int(batch["attention_mask"].sum()) if "attention_mask" in batch else batch["input_ids"].numel()
        return batch

    trainer.data_collator = counting  # the dataset was tokenized in __init__, outside the timed region
    start = time.perf_counter()
    trainer.train()
    return time.perf_counter() - start, tokens[0], trainer.model


def long_tailed_conversations(tok, n: int, seed: int) -> list[dict]:
    """`n` single-turn conversations with answer lengths drawn log-normally (clipped to 20-1,000
    tokens): each answer is consecutive corpus text cut at that many tokens, its prompt a request
    to continue the document's first words. Written here for the bench; not shipped data."""
    import json
    import random

    rng = random.Random(seed)
    texts = [json.loads(line)["text"] for path in CORPUS for line in open(path)]
    rng.shuffle(texts)
    stream = tok(" ".join(texts)).input_ids
    out, at = [], 0
    for _ in range(n):
        length = int(min(1000, max(20, rng.lognormvariate(4.8, 0.9))))
        if at + length > len(stream):
            at = 0
        answer = tok.decode(stream[at : at + length]).strip()
        at += length
        opening = " ".join(answer.split()[:4])
        messages = [
            {"role": "user", "content": f"Continue this text: {opening}"},
            {"role": "assistant", "content": answer},
        ]
        out.append({"messages": messages, "language": None, "where": f"long-tailed:{len(out)}"})
    return out


def packing_bench(a, tok) -> None:
    from lmforge.train.documents import pack_rows
    from lmforge.train.precision import use_bf16

    row_len = 1024
    config = hf_config(
        ModelConfig(hidden_size=a.hidden, num_layers=a.layers, num_heads=a.heads),
        len(tok),
        row_len,
        tok.eos_token_id,
        tok.pad_token_id,
    )
    convs = long_tailed_conversations(tok, 1200, seed=0)
    held = long_tailed_conversations(tok, 60, seed=1)
    examples, _, _ = encode_all(tok, convs, row_len, "truncate")
    held_examples, _, _ = encode_all(tok, held, row_len, "truncate")
    lengths = sorted(len(x) for x, _ in examples)
    mean = sum(lengths) / len(lengths)
    per_step = a.rows * row_len
    padded_batch = max(1, round(per_step / mean))
    rows = pack_rows([len(x) for x, _ in examples], row_len, 0)
    base = dict(method="lora", lr=1e-3, warmup_steps=5, max_len=row_len)
    packed_cfg = SftConfig(**base, batch_size=a.rows, packing=True, epochs=a.steps * a.rows / len(rows))
    padded_cfg = SftConfig(**base, batch_size=padded_batch, epochs=a.steps * padded_batch / len(examples))
    results = {"lmforge_packed": [], "lmforge_padded": [], **({"trl_packed": []} if not a.no_trl else {})}
    losses, padding = {}, {}
    for r in range(a.rounds):
        for name in results:
            model = build_model(config, seed=0)
            if name == "trl_packed":
                cuda = torch.cuda.is_available()
                bf16 = use_bf16("auto", torch.device("cuda" if cuda else "cpu"))  # lmforge's choice
                steps, out = a.trl_steps or a.steps, a.out / f"trl-packed-{r}"
                t, n, model = run_trl(model, tok, convs, packed_cfg, steps, bf16, out, packing=True, use_cpu=not cuda)
            else:
                cfg = packed_cfg if name == "lmforge_packed" else padded_cfg
                model = attach_method(model, cfg, "sft")
                start = time.perf_counter()
                stats, _ = train_sft(
                    model, examples, cfg, 0, tok.pad_token_id, None, row_len=row_len if cfg.packing else None
                )
                t, n = time.perf_counter() - start, stats["tokens"]
                padding[name] = stats["padding_share"]
            results[name].append(n / t)
            losses[name] = heldout_loss(model, held_examples, 8, tok.pad_token_id)
            print(f"round {r} {name}: {n / t:,.0f} real tokens/s, held-out loss {losses[name]:.4f}", flush=True)
    n_params = count_params(build_model(config, seed=0))
    precision = "bf16" if use_bf16("auto", torch.device("cpu")) else "fp32"
    print(
        f"model: Llama {n_params / 1e6:.1f}M params (hidden {a.hidden}, {a.layers} layers, context {row_len}), LoRA "
        f"r={packed_cfg.lora_rank}, {precision}; {len(examples)} conversations, lengths min {lengths[0]} / median "
        f"{lengths[len(lengths) // 2]} / mean {mean:.0f} / p95 {lengths[int(0.95 * len(lengths))]} / max {lengths[-1]} "
        f"tokens; {a.steps} steps of ~{per_step} tokens ({a.rows} rows of {row_len}; padded: {padded_batch} "
        f"conversations); {torch.get_num_threads()} threads, best of {a.rounds} rounds"
    )
    print("| contender | real tokens/s (rounds) | best | padding share | held-out loss after | packed speed-up |")
    print("|---|---|---:|---:|---:|---:|")
    best = {k: max(v) for k, v in results.items()}
    for name, values in results.items():
        share = f"{padding[name]:.1%}" if name in padding else "0 (padding-free)"
        print(
            f"| {name} | {' / '.join(f'{v:,.0f}' for v in values)} | {best[name]:,.0f} | {share} | "
            f"{losses[name]:.4f} | {best['lmforge_packed'] / best[name]:.2f}x |",
            flush=True,
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "sft")
    p.add_argument("--packing", action="store_true", help="packed vs padded vs TRL packed, long-tailed lengths")
    p.add_argument("--rows", type=int, default=4, help="--packing: rows of 1,024 tokens per step")
    p.add_argument("--no-trl", action="store_true", help="--packing: lmforge packed and padded only")
    p.add_argument(
        "--trl-steps", type=int, help="--packing: fewer steps for TRL (its held-out loss then is not comparable)"
    )
    a = p.parse_args()
    logging.disable(logging.WARNING)
    if not (a.out / "tokenizer" / "tokenizer.json").exists():
        run_tokenizer_stage(TokenizerConfig(inputs=CORPUS, vocab_size=2048), a.out)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(a.out / "tokenizer")
    if a.packing:
        return packing_bench(a, tok)
    config = hf_config(
        ModelConfig(hidden_size=a.hidden, num_layers=a.layers, num_heads=a.heads),
        len(tok),
        256,
        tok.eos_token_id,
        tok.pad_token_id,
    )
    convs = single_turn(
        mix_datasets(
            [SftDataset(path=str(INSTR / "alpaca_en.jsonl")), SftDataset(path=str(INSTR / "chat_de.jsonl"))], 0
        )[0]
    )
    held = single_turn(
        mix_datasets(
            [
                SftDataset(path=str(INSTR / "alpaca_en_heldout.jsonl")),
                SftDataset(path=str(INSTR / "chat_de_heldout.jsonl")),
            ],
            0,
        )[0]
    )
    examples, _, _ = encode_all(tok, convs, 256, "skip")
    # lmforge counts epochs; this many is exactly a.steps steps, TRL's max_steps
    cfg = SftConfig(
        method="lora",
        batch_size=a.batch,
        lr=1e-3,
        warmup_steps=5,
        max_len=256,
        epochs=a.steps * a.batch / len(examples),
    )
    held_examples, _, _ = encode_all(tok, held, 256, "skip")
    results = {"lmforge": [], "trl_bf16": [], "trl_default": []}
    losses = {}
    for r in range(a.rounds):
        for name in results:
            model = build_model(config, seed=0)
            if name == "lmforge":
                model = attach_method(model, cfg, "sft")
                t, n = run_lmforge(model, tok, examples, cfg)
            else:
                t, n, model = run_trl(model, tok, convs, cfg, a.steps, name == "trl_bf16", a.out / f"trl-{r}")
            results[name].append(n / t)
            losses[name] = heldout_loss(model, held_examples, 16, tok.pad_token_id)
    n_params = count_params(build_model(config, seed=0))
    print(
        f"model: Llama {n_params / 1e6:.1f}M params (hidden {a.hidden}, {a.layers} layers); LoRA r={cfg.lora_rank} "
        f"on {', '.join(cfg.lora_targets)}; {len(examples)} single-turn conversations, batch {a.batch}, "
        f"{a.steps} steps, {torch.get_num_threads()} threads, best of {a.rounds} rounds"
    )
    print("| contender | tokens/s (rounds) | best | held-out loss after | lmforge speed-up |")
    print("|---|---|---:|---:|---:|")
    best = {k: max(v) for k, v in results.items()}
    for name, values in results.items():
        print(
            f"| {name} | {' / '.join(f'{v:,.0f}' for v in values)} | {best[name]:,.0f} | {losses[name]:.4f} | "
            f"{best['lmforge'] / best[name]:.2f}x |"
        )


if __name__ == "__main__":
    main()
