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

    python bench/sft_throughput.py
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


def run_trl(model, tok, convs, cfg, steps: int, bf16: bool, out: Path):
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
        use_cpu=True,
        packing=False,
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "sft")
    a = p.parse_args()
    logging.disable(logging.WARNING)
    if not (a.out / "tokenizer" / "tokenizer.json").exists():
        run_tokenizer_stage(TokenizerConfig(inputs=CORPUS, vocab_size=2048), a.out)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(a.out / "tokenizer")
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
