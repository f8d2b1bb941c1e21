"""`bench/memory.py`: measured peak training memory and step time against `lmforge plan --memory`.

Each setting trains a randomly initialised SmolLM2-135M-shaped Llama (30 layers, d=576, 9 heads,
3 KV heads, vocabulary 49,152, tied embeddings) for `--steps` optimizer steps through lmforge's
own training loop (lmforge/train/loop.py: its wrapping, activation checkpointing, AdamW, the SFT
stage's loss), in a fresh process each, on random tokens. Measured: the peak memory the step adds
(CPU: peak resident set minus the resident set before the model was built, with glibc's mmap
threshold fixed at 128 KiB; CUDA: `torch.cuda.max_memory_allocated`) and the median step time after the first. Planned:
lmforge/plan/memory.py's total for the same setting. Reported: the planner's error per setting,
and for activation checkpointing the peak saved and the step time it costs, on and off at each
sequence length (target: >= 40% less peak for <= 40% more step time).

Why the fixed mmap threshold: by default glibc raises it each time a large block is freed, so
after the first step freed activation buffers stay in the heap and the resident set outgrows the
live tensors (LoRA at seq 512: 3.97 GiB resident against ~2.4 GiB of tensors, bench/RESULTS.md).
Fixed, large blocks are mapped and unmapped and the resident set follows what torch holds.

    python bench/memory.py                      # seq 1024 and 2048, full and LoRA, on/off checkpointing
    python bench/memory.py --quick --json       # three short settings (the test's)
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict

SMOLLM2_135M = dict(layers=30, hidden=576, intermediate=1536, heads=9, kv_heads=3, vocab=49152, tied=True)


def rss_now() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def worker(setting: dict, steps: int) -> dict:
    """Train one setting in this (fresh) process; returns the measured peak and step times."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from lmforge.recipe import SftConfig
    from lmforge.sft.train import answer_loss
    from lmforge.train import loop
    from lmforge.train.distributed import setup_distributed, wrap_model
    from lmforge.train.optim import make_optimizer
    from lmforge.train.tuning import attach_method

    d = setup_distributed()
    cuda = d.device.type == "cuda"
    s = setting
    shape = SMOLLM2_135M
    config = LlamaConfig(
        vocab_size=shape["vocab"],
        hidden_size=shape["hidden"],
        intermediate_size=shape["intermediate"],
        num_hidden_layers=shape["layers"],
        num_attention_heads=shape["heads"],
        num_key_value_heads=shape["kv_heads"],
        max_position_embeddings=max(2048, s["seq"]),
        tie_word_embeddings=shape["tied"],
    )
    g = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, shape["vocab"], (s["micro_batch"], s["seq"]), generator=g) for _ in range(steps)]
    base = torch.cuda.memory_allocated() if cuda else rss_now()
    torch.manual_seed(0)
    model = LlamaForCausalLM._from_config(config, attn_implementation="sdpa", dtype=torch.float32)
    if s["method"] == "lora":
        model = attach_method(
            model, SftConfig(method="lora", lora_rank=s["lora_rank"], lora_targets=s["lora_targets"]), "sft"
        )
    model.to(d.device)
    bf16 = s["precision"] == "bf16"
    wrapped = wrap_model(model, d, fsdp=False, bf16=bf16, checkpointing=s["activation_checkpointing"])
    optimizer = make_optimizer(model, 1e-4, 0.0, betas=(0.9, 0.999))
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []

    def batch(i: int):
        ids = batches[i].to(d.device)
        times.append(time.perf_counter())
        return {"input_ids": ids, "labels": ids}, ids.numel(), len(ids), None

    job = loop.Job(
        name="memory",
        steps=steps,
        grad_accum=1,
        lr_at=lambda step: 1.0,
        batch=batch,
        loss=lambda b: answer_loss(wrapped, b),
        log_every=steps,
        autocast_dtype=torch.bfloat16 if bf16 else None,
    )
    done = loop.run(job, wrapped, optimizer, d, loop.Position(), None)
    end = time.perf_counter()
    step_times = [b - a for a, b in zip(times, [*times[1:], end])][1:]  # after the first (allocation) step
    peak = torch.cuda.max_memory_allocated() - base if cuda else done.peak_memory - base
    device = torch.cuda.get_device_name() if cuda else "cpu"
    return {"measured": peak, "step_s": statistics.median(step_times), "device": device}


def measure(setting: dict, steps: int) -> dict:
    """One setting in a fresh interpreter, so that its peak is its own."""
    out = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(setting), "--steps", str(steps)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def planned(setting: dict) -> float:
    from lmforge.plan.memory import Setting, Shape, breakdown

    return breakdown(Shape(**SMOLLM2_135M), Setting(**setting))["peak"]


def settings(quick: bool, precision: str) -> list[dict]:
    from lmforge.plan.memory import Setting

    base = asdict(Setting(precision=precision))
    if quick:
        return [
            {**base, "seq": 256, "micro_batch": 2},
            {**base, "seq": 512, "micro_batch": 2, "activation_checkpointing": True},
            {**base, "seq": 512, "micro_batch": 2, "method": "lora"},
        ]
    out = []
    for seq in (1024, 2048):
        for method in ("full", "lora"):
            for ckpt in (False, True):
                out.append({**base, "seq": seq, "micro_batch": 1, "method": method, "activation_checkpointing": ckpt})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="three short settings (seq 256-512)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default=None, help="default: what lmforge picks here")
    ap.add_argument("--json", action="store_true", help="print the rows as one JSON list")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(json.loads(a.worker), a.steps)))
        return
    import torch

    from lmforge.train.precision import use_bf16

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    precision = a.precision or ("bf16" if use_bf16("auto", device) else "fp32")
    rows = []
    for s in settings(a.quick, precision):
        m = measure(s, a.steps)
        plan = planned(s)
        rows.append({**s, **m, "planned": plan, "error": plan / m["measured"] - 1})
    if a.json:
        print(json.dumps(rows))
        return
    print(f"device: {rows[0]['device']}, {precision}, SmolLM2-135M shape, {a.steps} steps per setting")
    print("| seq | batch | method | act. ckpt | measured peak GiB | planned GiB | plan error | step s |")
    print("|---:|---:|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['seq']} | {r['micro_batch']} | {r['method']} | {'on' if r['activation_checkpointing'] else 'off'} | "
            f"{r['measured'] / 2**30:.2f} | {r['planned'] / 2**30:.2f} | {r['error']:+.0%} | {r['step_s']:.2f} |"
        )
    for r in rows:
        off = next((x for x in rows if r["activation_checkpointing"] and replace_ckpt(x, r)), None)
        if off:
            print(
                f"checkpointing, seq {r['seq']} {r['method']}: peak {r['measured'] / off['measured'] - 1:+.0%}, "
                f"step time {r['step_s'] / off['step_s'] - 1:+.0%}"
            )


def replace_ckpt(x: dict, on: dict) -> bool:
    """x is `on`'s setting with activation checkpointing off."""
    keys = ("seq", "micro_batch", "method", "precision")
    return not x["activation_checkpointing"] and all(x[k] == on[k] for k in keys)


if __name__ == "__main__":
    main()
