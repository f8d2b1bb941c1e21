"""The TRL side of `bench/train_throughput.py --stage sft|dpo`: one SFTTrainer / DPOTrainer run, started
by `accelerate launch --multi_gpu --num_processes N` (accelerate's multi-process launcher; with
`use_cpu` the processes train on the CPU over gloo) or plainly for one process.

It tunes the model folder it is given with LoRA on the same data, batch per process, LR schedule
and step count as lmforge, records when each optimizer step ended, and saves the merged model, so
that the bench measures both contenders' results the same way.

    accelerate launch --multi_gpu --num_processes 2 bench/trl_worker.py --stage sft --model DIR \
        --data FILE --batch 8 --steps 30 --out DIR
"""

import argparse
import json
import logging
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import datasets  # noqa: E402
import torch  # noqa: E402
from peft import LoraConfig  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback  # noqa: E402
from transformers.trainer_callback import PrinterCallback  # noqa: E402

from lmforge.chat.formats import read_conversations  # noqa: E402
from lmforge.chat.template import render_chat  # noqa: E402
from lmforge.dpo.data import mix_pairs  # noqa: E402
from lmforge.recipe import PreferenceDataset, SftConfig  # noqa: E402
from lmforge.train.precision import use_bf16  # noqa: E402


def sft_rows(tok, path: str) -> list[dict]:
    convs, _, _ = read_conversations(path, "auto")
    rows = []
    for c in convs:
        prompt = render_chat(tok, c["messages"][:-1], add_generation_prompt=True)
        rows.append({"prompt": prompt, "completion": render_chat(tok, c["messages"])[len(prompt) :]})
    return rows


def dpo_rows(tok, path: str) -> list[dict]:
    raw, _, _ = mix_pairs([PreferenceDataset(path=path)], 0)
    rows = []
    for p in raw:
        prompt = render_chat(tok, p["prompt"], add_generation_prompt=True)
        full = {k: render_chat(tok, p["prompt"] + [p[k]]) for k in ("chosen", "rejected")}
        rows.append({"prompt": prompt, **{k: v[len(prompt) :] for k, v in full.items()}})
    return rows


def shared_dataset(rows: list[dict], out: Path, cuda: bool) -> datasets.Dataset:
    """The rows as a dataset with its cache in `out`: TRL's precomputed reference log-probs are
    cached next to the dataset, and an in-memory one would put them in a temporary folder of each
    process, where the other processes cannot find rank 0's."""
    from accelerate import PartialState

    state = PartialState(cpu=not cuda)
    path = out / "rows.jsonl"
    with state.main_process_first():
        if state.is_main_process:
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(out / "cache"))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--stage", choices=["sft", "dpo"], required=True)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--batch", type=int, required=True, help="per process")
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup-steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    datasets.disable_progress_bars()
    if a.threads:
        torch.set_num_threads(a.threads)
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32)
    cuda = torch.cuda.is_available()
    bf16 = use_bf16("auto", torch.device("cuda" if cuda else "cpu"))  # the precision lmforge picks
    common = dict(
        output_dir=str(a.out / "trainer"),
        per_device_train_batch_size=a.batch,
        learning_rate=a.lr,
        max_steps=a.steps,
        lr_scheduler_type="cosine",
        warmup_steps=a.warmup_steps,
        weight_decay=0.0,
        max_grad_norm=1.0,
        logging_steps=10**6,
        save_strategy="no",
        report_to=[],
        use_cpu=not cuda,
        bf16=bf16,
        gradient_checkpointing=False,
        dataloader_num_workers=0,
        seed=0,
        disable_tqdm=True,
    )
    lora = LoraConfig(
        r=16, lora_alpha=32, lora_dropout=0.0, target_modules=SftConfig().lora_targets, task_type="CAUSAL_LM"
    )
    data = shared_dataset(sft_rows(tok, a.data) if a.stage == "sft" else dpo_rows(tok, a.data), a.out, cuda)
    if a.stage == "sft":
        from trl import SFTConfig, SFTTrainer

        args = SFTConfig(**common, packing=False, max_length=256)
        trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tok, peft_config=lora)
    else:
        from trl import DPOConfig, DPOTrainer

        # the reference pass once before training, as lmforge does (its steps then compare alike)
        args = DPOConfig(**common, beta=0.1, loss_type=["sigmoid"], max_length=None, precompute_ref_log_probs=True)
        trainer = DPOTrainer(model=model, args=args, train_dataset=data, processing_class=tok, peft_config=lora)
    trainer.remove_callback(PrinterCallback)
    marks: dict[int, float] = {}

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            marks[state.global_step] = time.perf_counter()

    trainer.add_callback(Clock())
    trainer.train()
    if trainer.accelerator.is_main_process:
        merged = trainer.model.merge_and_unload()
        merged.save_pretrained(a.out / "model", safe_serialization=True)
        tok.save_pretrained(a.out / "model")
        (a.out / "marks.json").write_text(json.dumps(marks))


if __name__ == "__main__":
    main()
