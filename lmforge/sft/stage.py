"""`lmforge sft`: instruction-tune the run's model into a chat model.

<run>/sft/adapter/   the peft adapter (LoRA or LLaMA-Adapter), when one is trained; LLaMA-Adapter V2's
                     scales, biases and norms beside it in adapter_v2.safetensors
<run>/chat/          the chat model as a plain HF folder: full fine-tune, or LoRA merged
                     into the base (`sft.merge`); `chat`, `eval` and `generate` pick it up
"""

import time
from collections import Counter
from pathlib import Path

from typing_extensions import NotRequired

from lmforge.chat.encoding import encode_all
from lmforge.chat.session import make_engine, reply
from lmforge.chat.template import CHATML_TEMPLATE
from lmforge.engine import SamplingParams
from lmforge.errors import ConfigError
from lmforge.eval.during import during_report, eval_hook
from lmforge.models import adapter_v2, load_model_and_tokenizer, load_tokenizer, resolve_model_dir, run_model
from lmforge.recipe import SftConfig, TrainConfig
from lmforge.rundir import read_metrics, record_stage, write_report_section
from lmforge.sft.data import heldout_by_language, mix_datasets
from lmforge.sft.train import SftTrained, heldout_loss, train_sft
from lmforge.train.distributed import setup_distributed
from lmforge.train.figures import efficiency_line
from lmforge.train.trackers import stage_metrics
from lmforge.train.tuning import attach_method, load_quantized, merged_16bit, method_parameters


def _base(cfg: SftConfig, run_dir: Path) -> Path:
    """The model to tune: sft.model, else the run's newest model from before sft (never its own
    earlier chat output)."""
    if cfg.model:
        return resolve_model_dir(cfg.model)
    found = run_model(run_dir, before="sft")
    if found is None:
        raise ConfigError(f"sft.model: not set, and {run_dir} has no adapted model or checkpoint")
    return found


class SftResult(SftTrained):
    """The training figures plus what went in (data, skipped with file:line) and what came out."""

    base: str
    model: str
    method: str  # full, lora, adapter
    conversations: int
    skipped: dict[str, int]
    skipped_where: list[str]
    languages: dict[str, int]
    heldout_loss_before: dict[str, float]  # language -> answer-token loss
    heldout_loss_after: dict[str, float]
    samples: list[dict[str, str]]  # prompt, answer
    method_params: dict[str, int]  # trainable parameters of LoRA, LLaMA-Adapter V1 and V2 on this base
    worker_rank: NotRequired[int]  # returned by ranks other than 0 (which records the stage), not recorded


def run_sft_stage(cfg: SftConfig, run_dir: str | Path, seed: int, tracking: TrainConfig | None = None) -> SftResult:
    """`tracking`: the recipe's [train] block, whose tracker keys (and nproc/fsdp keys) apply to every
    training stage. Under torchrun every process runs this; rank 0 alone writes the results."""
    started = time.time()
    run_dir = Path(run_dir)
    tracking = tracking or TrainConfig()
    d = setup_distributed(tracking.threads)
    if not cfg.datasets:
        raise ConfigError("sft.datasets: give at least one instruction file")
    base_dir = _base(cfg, run_dir)
    if cfg.qlora:  # the 4-bit base is what trains and what before/after measure; the output is 16-bit
        model, tokenizer = load_quantized(base_dir, cfg, "sft", d.device), load_tokenizer(base_dir)
    else:
        model, tokenizer = load_model_and_tokenizer(base_dir)
        model.to(d.device)
    if not tokenizer.chat_template:  # the documented default, saved with the chat model below
        tokenizer.chat_template = CHATML_TEMPLATE
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    max_len = cfg.max_len or model.config.max_position_embeddings

    convs, skipped, where = mix_datasets(cfg.datasets, seed)
    examples, long, long_where = encode_all(tokenizer, convs, max_len, cfg.too_long)
    skipped.update(long)
    where += long_where
    if not examples:
        raise ConfigError("sft: no usable conversations in sft.datasets")
    heldout = heldout_by_language(tokenizer, cfg.heldout, seed, max_len)
    before = {lang: heldout_loss(model, ex, cfg.batch_size, pad, d) for lang, ex in heldout.items()}

    def rebuild():  # FSDP2: an unsharded copy for rank 0 to gather the trained weights into
        return attach_method(load_model_and_tokenizer(base_dir)[0], cfg, "sft", seed)

    model = attach_method(model, cfg, "sft", seed)
    metrics = stage_metrics(run_dir, tracking, "sft", cfg.model_dump(), is_main=d.is_main)
    try:
        trained, model = train_sft(
            model,
            examples,
            cfg,
            seed,
            pad,
            metrics.log if metrics else None,
            resume_dir=run_dir / "sft" / "resume",
            d=d,
            train=tracking,
            rebuild=rebuild,
            row_len=max_len if cfg.packing else None,
            evaluate_with=lambda steps, m: eval_hook(
                tracking, lambda: m, tokenizer, run_dir / "sft" / "eval", d, steps
            ),
        )
    finally:
        if metrics:
            metrics.close()
    if trained["interrupted"]:
        return {"interrupted": True}
    if not d.is_main:
        return {"worker_rank": d.rank}
    after = {lang: heldout_loss(model, ex, cfg.batch_size, pad) for lang, ex in heldout.items()}

    chat_dir = run_dir / "chat"
    if cfg.method == "full":
        model.save_pretrained(chat_dir, safe_serialization=True)
        tokenizer.save_pretrained(chat_dir)
    else:
        model.save_pretrained(run_dir / "sft" / "adapter")
        tokenizer.save_pretrained(run_dir / "sft" / "adapter")
        if cfg.method == "adapter_v2":  # its units beside peft's prompts; loading folds them in
            adapter_v2.save_units(model, run_dir / "sft" / "adapter")
            adapter_v2.fold_units(model)
        if cfg.qlora:  # the adapter merged into the 16-bit base (the samples below come from it too)
            model = merged_16bit(model, base_dir, cfg, "sft", seed)
        elif cfg.method == "lora" and cfg.merge:
            model = model.merge_and_unload()
        if cfg.method == "lora" and cfg.merge:
            model.save_pretrained(chat_dir, safe_serialization=True)
            tokenizer.save_pretrained(chat_dir)
    engine = make_engine(model, tokenizer)
    samples = [
        {
            "prompt": p,
            "reply": reply(
                engine, [{"role": "user", "content": p}], SamplingParams(max_tokens=cfg.max_new_tokens, temperature=0)
            ),
        }
        for p in cfg.sample_prompts
    ]
    summary = {
        "base": str(base_dir),
        "model": str(resolve_model_dir(run_dir)),
        "method": cfg.method,
        "conversations": len(examples),
        "skipped": dict(skipped),
        "skipped_where": where[:20],
        "languages": dict(Counter(c["language"] or "-" for c in convs)),
        "heldout_loss_before": before,
        "heldout_loss_after": after,
        **trained,
        "method_params": method_parameters(model.config, cfg, "sft"),
        "samples": samples,
    }
    record_stage(
        run_dir,
        "sft",
        cfg.model_dump(),
        [base_dir, *(d.path for d in cfg.datasets + cfg.heldout)],
        seed,
        started,
        summary,
    )
    write_report_section(run_dir, "sft", _report(summary, run_dir))
    return summary


def _report(s: dict, run_dir: Path) -> str:
    lines = [
        "## SFT",
        "",
        f"`{s['base']}` tuned with **{s['method']}** on {s['conversations']} conversations "
        f"({', '.join(f'{k}: {v}' for k, v in s['languages'].items())}), {s['steps']} steps, "
        f"{s['trainable_params']:,} trainable parameters; chat model `{s['model']}`.",
        "",
        efficiency_line(s),
    ]
    if s["method_params"]:
        names = {"lora": "LoRA (this recipe's rank and targets)", "adapter": "LLaMA-Adapter V1", "adapter_v2": "V2"}
        lines += [
            "",
            "Trainable parameters by method on this base: "
            + ", ".join(f"{names[k]} {v:,}" for k, v in s["method_params"].items())
            + ".",
        ]
    if s["skipped"]:
        lines += [
            "",
            "Skipped or truncated: "
            + ", ".join(f"{k}: {v}" for k, v in s["skipped"].items())
            + (f" (first: `{s['skipped_where'][0]}`)" if s["skipped_where"] else "")
            + ".",
        ]
    if s["heldout_loss_before"]:
        lines += ["", "| held-out language | loss before (nats/assistant token) | after |", "|---|---:|---:|"]
        lines += [
            f"| {lang} | {b:.4f} | {s['heldout_loss_after'][lang]:.4f} |"
            for lang, b in s["heldout_loss_before"].items()
        ]
    lines += during_report(run_dir, read_metrics(run_dir, "sft"), "sft")
    for x in s["samples"]:
        lines += ["", f"> **user:** {x['prompt']}".replace("\n", "\n> "), ">", f"> **assistant:** {x['reply']}"]
    return "\n".join(lines)
