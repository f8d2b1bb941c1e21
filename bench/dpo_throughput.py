"""Preference-tuning throughput with LoRA: lmforge `dpo` vs TRL's trainers, same model, data, LoRA
and batch. `--loss sigmoid` (DPO, the default) against `DPOTrainer`; `--loss kto` against
`KTOTrainer` (the pairs as unpaired answers, a desirable and an undesirable one per pair; items/s
count answers); `--loss orpo` against `ORPOTrainer`; `--loss simpo` against `CPOTrainer` with
loss_type "simpo" and cpo_alpha 0 (SimPO as published). ORPO and SimPO have no reference pass.

Both tune the same randomly initialised Llama (demo-style 2,048-token BPE with the ChatML template)
with the same LoRA (rank 16, alpha 32, all linear projections), AdamW, LR with warmup + cosine,
beta 0.1, sigmoid loss, on the shipped preference pairs (examples/preferences), given to TRL as
prompt/chosen/rejected strings rendered with the same chat template. Pairs/s over the whole
training call, lmforge's one-off reference pass included. Contenders, alternating for `--rounds`:

  lmforge          precision "auto" (fp32 on a CPU without bf16 math), reference log-probs computed once
                   and cached (adapter disabled), length-grouped batches
  trl_fp32         DPOTrainer in lmforge's precision and without gradient checkpointing; the reference
                   forward (adapter disabled) at every step, its default
  trl_fp32_precompute   the same with precompute_ref_log_probs=True (its own one-off reference pass)
  trl_default      DPOTrainer's own defaults (bf16, gradient checkpointing), first round only: as users
                   run it, slow on CPUs without bf16 math

    python bench/dpo_throughput.py [--loss sigmoid|kto|orpo|simpo]

For every loss the check that both learned the same thing is the share of all pairs whose chosen
answer is more likely per token after training; for DPO also its loss over all pairs.
"""

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import datasets
import torch

os.environ.setdefault("TQDM_DISABLE", "1")  # TRL's reference pass draws a progress bar
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lmforge.chat.template import render_chat  # noqa: E402
from lmforge.dpo.data import encode_pairs, encode_unpaired, mix_pairs  # noqa: E402
from lmforge.dpo.loss import preference_loss  # noqa: E402
from lmforge.dpo.train import all_logps, preference_accuracy, reference_logps, train_dpo  # noqa: E402
from lmforge.recipe import DpoConfig, ModelConfig, PreferenceDataset, TokenizerConfig  # noqa: E402
from lmforge.tokenizer import run_tokenizer_stage  # noqa: E402
from lmforge.train.model import build_model, hf_config  # noqa: E402
from lmforge.train.tuning import attach_method  # noqa: E402

PAIRS = ROOT / "examples" / "preferences" / "pairs.jsonl"
CORPUS = [str(ROOT / "examples" / "corpus" / lang / "train.jsonl") for lang in ("en", "de")]


def final_loss(model, pairs, pad_id: int) -> float:
    """DPO loss of the tuned adapter over every pair (reference = adapter disabled), measured the
    same way for both contenders: their losses logged during training come from different batches."""
    model.eval()
    policy = all_logps(model, pairs, 16, pad_id)
    with model.disable_adapter():
        ref = all_logps(model, pairs, 16, pad_id)
    losses, _, _ = preference_loss(policy["chosen"], policy["rejected"], ref["chosen"], ref["rejected"], 0.1)
    return float(losses.mean())


def run_lmforge(model, tok, items, cfg, seed: int, tmp: Path):
    start = time.perf_counter()
    ref = None
    if cfg.loss not in ("orpo", "simpo"):
        ref = reference_logps(model, items, cfg.batch_size, tok.pad_token_id, tmp / "ref.json", "bench", adapter=True)
    train_dpo(model, items, ref, cfg, seed, tok.pad_token_id, None)
    return time.perf_counter() - start, model


def trl_trainer(loss: str, precompute: bool):
    """TRL's trainer and config for `loss`, and the config's loss settings."""
    if loss == "sigmoid":
        from trl import DPOConfig, DPOTrainer

        return (
            DPOTrainer,
            DPOConfig,
            {"loss_type": ["sigmoid"], "max_length": None, "precompute_ref_log_probs": precompute},
        )
    if loss == "kto":
        from trl import KTOConfig, KTOTrainer

        return KTOTrainer, KTOConfig, {"train_sampling_strategy": "sequential", "precompute_ref_log_probs": precompute}
    if loss == "orpo":
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

        return ORPOTrainer, ORPOConfig, {"max_length": 256}
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    return CPOTrainer, CPOConfig, {"loss_type": "simpo", "cpo_alpha": 0.0, "simpo_gamma": 0.5, "max_length": 256}


def run_trl(model, tok, raw, cfg, steps: int, precompute: bool, defaults: bool, seed: int, out: Path):
    from peft import LoraConfig
    from transformers.trainer_callback import PrinterCallback

    trainer_class, config_class, settings = trl_trainer(cfg.loss, precompute)
    rows = []
    for p in raw:
        prompt = render_chat(tok, p["prompt"], add_generation_prompt=True)
        full = {k: render_chat(tok, p["prompt"] + [p[k]]) for k in ("chosen", "rejected")}
        if cfg.loss == "kto":  # the same answers as lmforge's unpaired ones: chosen desirable, rejected not
            rows += [{"prompt": prompt, "completion": full[k][len(prompt) :], "label": k == "chosen"} for k in full]
        else:
            rows.append({"prompt": prompt, **{k: full[k][len(prompt) :] for k in full}})
    args = config_class(
        output_dir=str(out),
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.lr,
        max_steps=steps,
        lr_scheduler_type="cosine",
        warmup_steps=cfg.warmup_steps,
        weight_decay=0.0,
        max_grad_norm=1.0,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        beta=cfg.beta,
        **settings,
        dataloader_num_workers=0,
        seed=seed,
        disable_tqdm=True,
        **({} if defaults else {"bf16": False, "gradient_checkpointing": False}),
    )
    lora = LoraConfig(
        r=cfg.lora_rank,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=0.0,
        target_modules=cfg.lora_targets,
        task_type="CAUSAL_LM",
    )
    trainer = trainer_class(
        model=model, args=args, train_dataset=datasets.Dataset.from_list(rows), processing_class=tok, peft_config=lora
    )
    trainer.remove_callback(PrinterCallback)
    start = time.perf_counter()
    trainer.train()
    return time.perf_counter() - start, trainer.model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "dpo")
    p.add_argument("--skip-default", action="store_true", help="leave out TRL's defaults (~8 min here)")
    p.add_argument("--loss", choices=["sigmoid", "kto", "orpo", "simpo"], default="sigmoid")
    a = p.parse_args()
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    datasets.disable_progress_bars()
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
    raw, _, _ = mix_pairs([PreferenceDataset(path=str(PAIRS))], 0)
    pairs, _, _ = encode_pairs(tok, raw, 256, "skip")
    items = pairs
    if a.loss == "kto":
        answers, _, _ = mix_pairs([PreferenceDataset(path=str(PAIRS))], 0, unpaired=True)
        items, _, _ = encode_unpaired(tok, answers, 256, "skip", a.batch)
    cfg = DpoConfig(
        method="lora",
        loss=a.loss,
        batch_size=a.batch,
        lr=1e-3,
        warmup_steps=5,
        beta=2.0 if a.loss == "simpo" else 0.1,
        epochs=a.steps * a.batch / len(items),
    )  # exactly a.steps steps, TRL's max_steps
    with tempfile.TemporaryDirectory() as tmp:  # untimed: first-use costs of torch's kernels hit no contender
        run_lmforge(
            attach_method(build_model(config, seed=0), cfg, "dpo"),
            tok,
            items[: 3 * a.batch],
            cfg.model_copy(update={"epochs": 1.0}),
            0,
            Path(tmp),
        )
    results = {"lmforge": [], "trl_fp32": [], "trl_fp32_precompute": [], "trl_default": []}
    if a.loss in ("orpo", "simpo"):  # no reference model: nothing to precompute
        del results["trl_fp32_precompute"]
    losses = {}
    unit = "answers" if a.loss == "kto" else "pairs"
    for r in range(a.rounds):
        for name in results:
            if name == "trl_default" and (r > 0 or a.skip_default):
                continue
            model = build_model(config, seed=0)
            with tempfile.TemporaryDirectory() as tmp:
                if name == "lmforge":
                    torch.manual_seed(r)  # the LoRA init, as TRL seeds it from args.seed
                    t, tuned = run_lmforge(attach_method(model, cfg, "dpo"), tok, items, cfg, r, Path(tmp))
                else:
                    t, tuned = run_trl(
                        model, tok, raw, cfg, a.steps, name.endswith("precompute"), name == "trl_default", r, Path(tmp)
                    )
            tuned = tuned.float().eval()
            loss = final_loss(tuned, pairs, tok.pad_token_id) if a.loss == "sigmoid" else float("nan")
            with torch.no_grad():
                accuracy = preference_accuracy(all_logps(tuned, pairs, 16, tok.pad_token_id))
            results[name].append(a.steps * a.batch / t)
            losses.setdefault(name, []).append((loss, accuracy))
            print(
                f"round {r} {name:20s} {results[name][-1]:7.2f} {unit}/s  after training: DPO loss over all "
                f"pairs {loss:.4f}, chosen more likely per token in {accuracy:.3f} of them",
                flush=True,
            )
    best = {k: max(v) for k, v in results.items() if v}
    median = {k: statistics.median(v) for k, v in results.items() if v}
    print(
        f"\n{a.loss}: {len(items)} {unit}, {a.steps} steps x {a.batch} {unit}, d={a.hidden}, {a.layers} layers, "
        "LoRA r=16; round r uses seed r (batch order, LoRA init)"
    )
    for name, values in losses.items():
        print(
            f"{name:20s} after training: DPO loss {min(v[0] for v in values):.4f}-{max(v[0] for v in values):.4f}, "
            f"likelihood accuracy {min(v[1] for v in values):.3f}-{max(v[1] for v in values):.3f}"
        )
    for name in [n for n in ("trl_fp32", "trl_fp32_precompute", "trl_default") if n in best]:
        print(
            f"lmforge / {name}: best {best['lmforge'] / best[name]:.2f}x, median {median['lmforge'] / median[name]:.2f}x "
            "(target >= 1.5)"
        )


if __name__ == "__main__":
    main()
