"""Training throughput. `--stage pretrain` (the default): lmforge pretrain vs the Hugging Face
`Trainer`, same model, data and batch (below). `--stage sft|dpo`: LoRA tuning on 1 and N processes,
lmforge vs TRL under accelerate (bench/tuning_throughput.py says how).

Both train the same LlamaForCausalLM config from the same initial weights on windows of the
same packed shards, with the same batch, AdamW settings, schedule and clipping, in one process
on this machine. Throughput is measured over steady-state steps only (wall time from the end
of step `--warmup` to the end of the last step), which excludes start-up and compilation.

Three trainers run, alternating, `--rounds` times each:
  lmforge              its defaults (precision "auto": bf16 autocast where the chip has native bf16)
  hf_trainer           the Trainer's defaults (fp32 on CPU)
  hf_trainer_bf16      the Trainer with bf16=True, i.e. the same precision as lmforge picked

    python bench/train_throughput.py                  # defaults: CPU, ~10M-parameter model
    python bench/train_throughput.py --steps 40 --hidden 512 --layers 8
    python bench/train_throughput.py --stage sft --nproc 1 2      # CPU: 2 processes vs 1, vs TRL
    python bench/train_throughput.py --stage dpo --nproc 1 2
    # on a GPU: SmolLM2-135M/360M or Llama-3.2-1B shapes, bf16, SDPA flash, torch.compile; prints MFU:
    python bench/train_throughput.py --model 360m --seq-len 2048 --batch 8 --steps 60 --warmup 20 --compile
    python bench/train_throughput.py --stage sft --model 1b --nproc 1 --batch 8 --steps 40

Prints tokens/s of each and the ratio; paste the table into bench/RESULTS.md.
"""

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lmforge.data import PackedTokens, run_tokenize_stage  # noqa: E402
from lmforge.recipe import ModelConfig, TokenizeConfig, TokenizerConfig, TrainConfig  # noqa: E402
from lmforge.rundir import read_metrics  # noqa: E402
from lmforge.tokenizer import run_tokenizer_stage  # noqa: E402
from lmforge.train import hf_config, pretrain  # noqa: E402
from lmforge.train.model import build_model  # noqa: E402

CORPUS = [str(ROOT / "examples" / "corpus" / lang / "train.jsonl") for lang in ("en", "de")]


def prepare_data(out: Path) -> Path:
    if not (out / "tokens" / "train" / "meta.json").exists():
        run_tokenizer_stage(TokenizerConfig(inputs=CORPUS, vocab_size=2048), out)
        run_tokenize_stage(TokenizeConfig(train=CORPUS), out)
    return out / "tokens" / "train"


def train_config(a, data: Path) -> TrainConfig:
    """lmforge at its defaults except for what must match the peer (batch, lr, steps, no checkpoints)."""
    return TrainConfig(
        data=str(data),
        seq_len=a.seq_len,
        micro_batch_size=a.batch,
        max_steps=a.steps,
        lr=1e-3,
        warmup_steps=2,
        weight_decay=0.1,
        grad_clip=1.0,
        log_every=1,
        eval_every=10**9,
        checkpoint_every=10**9,
        log_spaced_checkpoints=False,
        resume=False,
        compile=a.compile,
    )


# real small models' shapes (SmolLM2-135M, SmolLM2-360M, Llama-3.2-1B): width, depth, heads, kv heads, MLP, vocab
MODELS = {
    "135m": (576, 30, 9, 3, 1536, 49152),
    "360m": (960, 32, 15, 5, 2560, 49152),
    "1b": (2048, 16, 32, 8, 8192, 128256),
}


def model_config(a) -> ModelConfig:
    return ModelConfig(
        hidden_size=a.hidden,
        num_layers=a.layers,
        num_heads=a.heads,
        num_kv_heads=a.kv_heads,
        intermediate_size=a.intermediate,
    )


def run_lmforge(a, data: Path, out: Path) -> tuple[float, float]:
    """Steady-state tokens/s and the model's training FLOPs per token."""
    run_dir = out / f"lmforge-{time.time_ns()}"
    result = pretrain(model_config(a), train_config(a, data), run_dir, seed=0)
    rows = {r["step"]: r for r in read_metrics(run_dir, "pretrain") if "loss" in r}
    seconds = rows[a.steps]["elapsed_s"] - rows[a.warmup]["elapsed_s"]
    return (a.steps - a.warmup) * a.batch * a.seq_len / seconds, result["flops_per_token"]


def gpu_peak_flops() -> float | None:
    """Dense bf16 peak of the local GPU from the planner's table, matched by name."""
    if not torch.cuda.is_available():
        return None
    from lmforge.plan import GPUS

    name = torch.cuda.get_device_name().replace(" ", "")
    for key in sorted(GPUS, key=len, reverse=True):
        if key.split("-")[0] in name and ("PCIe" in name) == ("PCIe" in key):
            return GPUS[key] * 1e12
    return None


class Windows(torch.utils.data.Dataset):
    """The same packed windows, shaped as the Trainer expects (labels shifted inside the model)."""

    def __init__(self, data: Path, seq_len: int):
        self.data = PackedTokens(data, seq_len)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict:
        ids = torch.from_numpy(self.data.window(i)[:-1])
        return {"input_ids": ids, "labels": ids}


def run_hf_trainer(a, data: Path, out: Path, bf16: bool) -> float:
    from transformers import Trainer, TrainerCallback, TrainingArguments

    meta = json.loads((data / "meta.json").read_text())
    model = build_model(hf_config(model_config(a), meta["vocab_size"], a.seq_len, meta["eos_id"], None), seed=0)
    marks: dict[int, float] = {}

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            marks[state.global_step] = time.perf_counter()

    args = TrainingArguments(
        output_dir=str(out / "hf"),
        per_device_train_batch_size=a.batch,
        gradient_accumulation_steps=1,
        max_steps=a.steps,
        learning_rate=1e-3,
        warmup_steps=2,
        lr_scheduler_type="cosine",
        weight_decay=0.1,
        adam_beta1=0.9,
        adam_beta2=0.95,
        max_grad_norm=1.0,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=not torch.cuda.is_available(),
        bf16=bf16,
        torch_compile=a.compile,
        disable_tqdm=True,
        seed=0,
        dataloader_num_workers=0,
    )
    Trainer(model=model, args=args, train_dataset=Windows(data, a.seq_len), callbacks=[Clock()]).train()
    return (a.steps - a.warmup) * a.batch * a.seq_len / (marks[a.steps] - marks[a.warmup])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kv-heads", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--rounds", type=int, default=2, help="alternate the two trainers this many times; best of each")
    p.add_argument("--compile", action="store_true", help="torch.compile in both")
    p.add_argument("--stage", choices=["pretrain", "sft", "dpo"], default="pretrain")
    p.add_argument("--model", choices=sorted(MODELS), help="a real model's shape (overrides --hidden etc.)")
    p.add_argument("--nproc", type=int, nargs="+", default=[1, 2], help="sft/dpo: process counts to compare")
    p.add_argument("--cores", type=int, default=None, help="sft/dpo: cores the processes share (default: all)")
    a = p.parse_args()
    a.intermediate = a.vocab = None
    if a.model:
        a.hidden, a.layers, a.heads, a.kv_heads, a.intermediate, a.vocab = MODELS[a.model]
    a.model_cfg = model_config(a)
    out = ROOT / "bench" / "out" / "train_throughput"
    if a.stage != "pretrain":
        from tuning_throughput import run_tuning

        run_tuning(a, out)
        return
    data = prepare_data(out)
    from lmforge.train.precision import use_bf16

    results = {"lmforge": [], "hf_trainer": [], "hf_trainer_bf16": []}
    fpt = 0.0
    for _ in range(a.rounds):
        tps, fpt = run_lmforge(a, data, out)
        results["lmforge"].append(tps)
        results["hf_trainer"].append(run_hf_trainer(a, data, out, bf16=False))
        results["hf_trainer_bf16"].append(run_hf_trainer(a, data, out, bf16=True))
    best = {k: max(v) for k, v in results.items()}
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(
        f"\nmachine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}; model d={a.hidden} L={a.layers} heads={a.heads}/{a.kv_heads}, "
        f"seq {a.seq_len}, batch {a.batch}, compile={a.compile}; lmforge precision auto -> "
        f"{'bf16' if use_bf16('auto', device) else 'fp32'}"
    )
    print("| trainer | tokens/s (each round) | best |")
    print("|---|---|---:|")
    for k, v in results.items():
        print(f"| {k} | {', '.join(f'{x:,.0f}' for x in v)} | {best[k]:,.0f} |")
    print(f"ratio lmforge / HF Trainer (defaults): {best['lmforge'] / best['hf_trainer']:.2f}x")
    print(f"ratio lmforge / HF Trainer (bf16=True): {best['lmforge'] / best['hf_trainer_bf16']:.2f}x")
    peak = gpu_peak_flops()
    if peak:
        print(
            f"lmforge MFU on {torch.cuda.get_device_name()}: {best['lmforge'] * fpt / peak:.1%} "
            f"({fpt / 1e6:.0f} MFLOP/token, bf16 dense peak {peak / 1e12:.0f} TFLOP/s)"
        )


if __name__ == "__main__":
    main()
