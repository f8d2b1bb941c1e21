"""`bench/train_throughput.py --stage sft|dpo`: LoRA tuning on 1 and N processes, lmforge vs TRL.

lmforge runs as users run it, `lmforge sft|dpo RECIPE` with `train.nproc_per_node = N` (it
relaunches itself under torchrun, DDP); TRL runs `SFTTrainer` / `DPOTrainer` under
`accelerate launch --multi_gpu --num_processes N` (bench/trl_worker.py). Both tune the same
randomly initialised Llama folder (demo-style 2,048-token BPE, ChatML template) with the same LoRA
(rank 16, alpha 32, every linear projection), AdamW, LR 1e-3 with 5 warmup steps and cosine decay,
`--batch` examples per process and micro-batch, and `--steps` optimizer steps, in the precision
lmforge picks (fp32 on a CPU without bf16 math). SFT: the shipped single-turn instruction examples
(English Alpaca + German chat), loss on the answers. DPO: the shipped preference pairs, beta 0.1,
sigmoid loss, reference log-probs computed once before training by both (TRL's
`precompute_ref_log_probs`), so their steps do the same work.

Throughput: examples per second over the steady-state steps (the end of step `--warmup` to the end
of the last), from lmforge's metrics and from a step-end callback in TRL; start-up, tokenization
and reference passes are outside it for both. Quality, measured the same way on both results: SFT,
the held-out loss per answer token; DPO, the DPO loss over all training pairs against the base.
Scaling efficiency = examples/s on N processes / (N x examples/s on 1).
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
INSTR = ROOT / "examples" / "instructions"
PAIRS = ROOT / "examples" / "preferences" / "pairs.jsonl"


def single_turn(convs: list[dict]) -> list[dict]:
    return [c for c in convs if [m["role"] for m in c["messages"] if m["role"] != "system"] == ["user", "assistant"]]


def prepare(out: Path, a) -> dict:
    """The base model folder, the training file and the held-out examples (written once)."""
    from transformers import AutoTokenizer

    from lmforge.chat.template import CHATML_TEMPLATE
    from lmforge.recipe import SftDataset, TokenizerConfig
    from lmforge.sft.data import mix_datasets
    from lmforge.tokenizer import run_tokenizer_stage
    from lmforge.train.model import build_model, hf_config

    if not (out / "tokenizer" / "tokenizer.json").exists():
        corpus = [str(ROOT / "examples" / "corpus" / lang / "train.jsonl") for lang in ("en", "de")]
        run_tokenizer_stage(TokenizerConfig(inputs=corpus, vocab_size=2048), out)
    tok = AutoTokenizer.from_pretrained(out / "tokenizer")
    tok.chat_template = tok.chat_template or CHATML_TEMPLATE
    base = out / f"base-{a.hidden}x{a.layers}"
    if not (base / "model.safetensors").exists():
        model = build_model(
            hf_config(a.model_cfg, max(a.vocab or 0, len(tok)), 256, tok.eos_token_id, tok.pad_token_id), 0
        )
        model.save_pretrained(base, safe_serialization=True)
        tok.save_pretrained(base)
    train = [SftDataset(path=str(INSTR / f)) for f in ("alpaca_en.jsonl", "chat_de.jsonl")]
    held = [SftDataset(path=str(INSTR / f)) for f in ("alpaca_en_heldout.jsonl", "chat_de_heldout.jsonl")]
    sft_file = out / "sft_single_turn.jsonl"
    rows = [{"messages": c["messages"], "language": c["language"]} for c in single_turn(mix_datasets(train, 0)[0])]
    sft_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return {
        "base": base,
        "tok": tok,
        "sft": sft_file,
        "sft_rows": len(rows),
        "held": single_turn(mix_datasets(held, 0)[0]),
    }


def run_lmforge(stage: str, nproc: int, a, prep: dict, work: Path) -> tuple[float, Path]:
    """Steady-state examples/s and the tuned (merged) model folder."""
    from lmforge.dpo.data import mix_pairs
    from lmforge.recipe import PreferenceDataset

    items = prep["sft_rows"] if stage == "sft" else len(mix_pairs([PreferenceDataset(path=str(PAIRS))], 0)[0])
    per_step = a.batch * nproc
    data = prep["sft"] if stage == "sft" else PAIRS
    recipe = work / f"{stage}.toml"
    recipe.write_text(
        f"[train]\nnproc_per_node = {nproc}\nthreads = {max(1, a.cores // nproc)}\n"
        f'[{stage}]\nmodel = "{prep["base"]}"\nmethod = "lora"\nbatch_size = {a.batch}\nlr = 1e-3\n'
        f"warmup_steps = 5\nepochs = {(a.steps * per_step - 0.5) / items}\nlog_every = 1\n"
        f"checkpoint_every = 1000000\nmax_len = 256\n"
        + ("beta = 0.1\n" if stage == "dpo" else "")
        + f'[[{stage}.datasets]]\npath = "{data}"\n'
    )
    run = work / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "lmforge", stage, str(recipe), "--run-dir", str(run)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        raise SystemExit(proc.stdout + proc.stderr)
    rows = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["stage"] == stage and "elapsed_s" in r:
            rows[r["step"]] = r["elapsed_s"]
    assert max(rows) == a.steps, (max(rows), a.steps)
    rate = (a.steps - a.warmup) * per_step / (rows[a.steps] - rows[a.warmup])
    return rate, run / ("chat" if stage == "sft" else "dpo/model")


def run_trl(stage: str, nproc: int, a, prep: dict, work: Path) -> tuple[float, Path]:
    launch = [sys.executable, "-m", "accelerate.commands.launch"]
    if nproc > 1:
        launch += ["--multi_gpu", "--num_processes", str(nproc)]
    else:
        launch += ["--num_processes", "1"]
    launch += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    data = prep["sft"] if stage == "sft" else PAIRS
    cmd = [
        *launch,
        str(ROOT / "bench" / "trl_worker.py"),
        *("--stage", stage, "--model", str(prep["base"]), "--data", str(data)),
        *("--batch", str(a.batch), "--steps", str(a.steps), "--threads", str(max(1, a.cores // nproc))),
        *("--out", str(work)),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if proc.returncode:
        raise SystemExit(proc.stdout + proc.stderr)
    marks = {int(k): v for k, v in json.loads((work / "marks.json").read_text()).items()}
    return (a.steps - a.warmup) * a.batch * nproc / (marks[a.steps] - marks[a.warmup]), work / "model"


def quality(stage: str, model_dir: Path, prep: dict) -> float:
    """SFT: held-out loss per answer token; DPO: the DPO loss over all training pairs vs the base."""
    from lmforge.models import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(model_dir)
    pad = tok.pad_token_id
    if stage == "sft":
        from lmforge.chat.encoding import encode_all
        from lmforge.sft.train import heldout_loss

        return heldout_loss(model, encode_all(tok, prep["held"], 256, "skip")[0], 16, pad)
    from lmforge.dpo.data import encode_pairs, mix_pairs
    from lmforge.dpo.loss import preference_loss
    from lmforge.dpo.train import all_logps
    from lmforge.recipe import PreferenceDataset

    pairs = encode_pairs(tok, mix_pairs([PreferenceDataset(path=str(PAIRS))], 0)[0], 256, "skip")[0]
    policy = all_logps(model, pairs, 16, pad)
    ref = all_logps(load_model_and_tokenizer(prep["base"])[0], pairs, 16, pad)
    return float(preference_loss(policy["chosen"], policy["rejected"], ref["chosen"], ref["rejected"], 0.1)[0].mean())


def run_tuning(a, out: Path) -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    a.cores = a.cores or os.cpu_count()
    prep = prepare(out, a)
    results: dict[tuple[str, int], list[float]] = {}
    losses: dict[tuple[str, int], float] = {}
    for _ in range(a.rounds):
        for nproc in a.nproc:
            for name, run in (("lmforge", run_lmforge), ("trl", run_trl)):
                with tempfile.TemporaryDirectory(dir=out) as tmp:
                    rate, model_dir = run(a.stage, nproc, a, prep, Path(tmp))
                    losses[name, nproc] = quality(a.stage, model_dir, prep)
                results.setdefault((name, nproc), []).append(rate)
                print(
                    f"{name:8s} {nproc} proc: {rate:7.2f} examples/s, loss after {losses[name, nproc]:.4f}", flush=True
                )
    best = {k: max(v) for k, v in results.items()}
    what = "held-out loss per answer token" if a.stage == "sft" else "DPO loss over all pairs"
    print(
        f"\n{a.stage}, LoRA r=16: model d={a.hidden} L={a.layers}, batch {a.batch} per process, {a.steps} steps "
        f"(steady state from step {a.warmup}), {a.cores} cores shared by the processes, torch {torch.__version__}, "
        f"best of {a.rounds}"
    )
    print(f"| contender | processes | examples/s (rounds) | best | scaling efficiency | {what} | lmforge / TRL |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for (name, nproc), values in results.items():
        eff = best[name, nproc] / (nproc * best[name, a.nproc[0]]) if a.nproc[0] == 1 else float("nan")
        ratio = best["lmforge", nproc] / best["trl", nproc]
        print(
            f"| {name} | {nproc} | {' / '.join(f'{v:.2f}' for v in values)} | {best[name, nproc]:.2f} | {eff:.2f} | "
            f"{losses[name, nproc]:.4f} | {ratio:.2f}x |"
        )
