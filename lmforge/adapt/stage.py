"""`lmforge adapt`: continued pretraining of an existing model on a new language (LeoLM's stage 2).

    <run>/adapt/base/          the base as loaded, tokenizer extended, RoPE scaled (HF folder)
    <run>/adapt/tokens/<src>/  each source tokenized with that tokenizer
    <run>/adapt/<phase>/       one training run per phase (checkpoints, metrics), each
                               starting from the previous phase's last checkpoint
    <run>/adapted/             the final model, which `eval`/`generate` on the run pick up

Before and after, the stage measures bits per byte on held-out text per language, the task
suite, fertility and passkey retrieval, and reports gain (target language) and forgetting
(source language) with paired-bootstrap significance.

Defaults follow the continual-pretraining literature: every phase re-warms the LR to the base's
peak (the recipe's `train.lr`) and decays it again with cosine (Gupta et al. 2023; Ibrahim et al.
2024 show re-warming + re-decaying matches retraining from scratch when some source data is
replayed). Ibrahim et al. replay 5% of the source data for a weak shift and 25% for a strong one
such as English -> German; the demo uses 25%.
"""

import math
import shutil
import time
from pathlib import Path

from typing_extensions import TypedDict

from lmforge.adapt.context import apply_rope_scaling, passkey_accuracy
from lmforge.adapt.tokenizer_extension import extend_tokenizer, init_new_embeddings
from lmforge.data import read_meta, tokenize_files
from lmforge.errors import ConfigError
from lmforge.eval import compare_results, comparison_table, evaluate_model, headline
from lmforge.eval.during import during_report
from lmforge.models import latest_checkpoint, load_model_and_tokenizer, run_model
from lmforge.recipe import AdaptConfig, EvalConfig, ModelConfig, PhaseConfig, TrainConfig
from lmforge.rundir import read_metrics, record_stage, write_report_section
from lmforge.rundir.plots import grouped_bars
from lmforge.tasks import load_task
from lmforge.tokenizer import fertility
from lmforge.train import pretrain
from lmforge.train.distributed import barrier, setup_distributed
from lmforge.train.figures import efficiency_line


def measure(model, tokenizer, cfg: AdaptConfig, tasks, passkey_lengths: list[int], work_dir: Path) -> dict:
    """Everything compared before/after: the eval stage's bits per byte and tasks, plus fertility
    and passkey retrieval."""
    scoring = EvalConfig(bpb_texts=cfg.heldout, text_field=cfg.text_field, limit=cfg.limit, max_docs=cfg.max_docs)
    out = {
        **evaluate_model(model, tokenizer, scoring, tasks, work_dir),
        "fertility": {
            lang: fertility(tokenizer, [p], cfg.text_field)["tokens_per_word"] for lang, p in cfg.heldout.items()
        },
    }
    if cfg.passkey_trials:
        lang = cfg.target_language if cfg.target_language in ("en", "de") else "en"
        out["passkey"] = {
            n: passkey_accuracy(model, tokenizer, n, cfg.passkey_trials, lang=lang) for n in passkey_lengths
        }
    return out


def prepare_base(model, tokenizer, cfg: AdaptConfig, source, out: Path):
    """Extend the base's tokenizer, scale its RoPE, save it as a plain HF folder (changes `model`);
    returns what was done and the tokenizer the adapted model uses."""
    info = {
        "source": str(source),
        "vocab_before": len(tokenizer),
        "added_tokens": 0,
        "context_before": model.config.max_position_embeddings,
    }
    if cfg.new_tokens:
        learn_from = cfg.new_tokens_from or max(cfg.phases[0].mix, key=cfg.phases[0].mix.get)
        extended, added = extend_tokenizer(tokenizer, cfg.sources[learn_from], cfg.new_tokens, cfg.text_field)
        init_new_embeddings(model, tokenizer, extended, added)
        tokenizer = extended
        info.update(
            added_tokens=len(added),
            added_from=learn_from,
            examples=[tokenizer.convert_tokens_to_string([t]) for t in added[:12]],
        )
    if cfg.rope_scaling_factor:
        info["context_after"] = apply_rope_scaling(model.config, cfg.rope_scaling, cfg.rope_scaling_factor)
    else:
        info["context_after"] = model.config.max_position_embeddings
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return info, tokenizer


def phase_config(
    train: TrainConfig,
    phase: PhaseConfig,
    sources: dict[str, Path],
    init_from: Path,
    embedding_lr_scale: float,
    world: int = 1,
) -> TrainConfig:
    """The phase as a pretrain config: token budget -> steps (over `world` processes), re-warmup as
    a fraction of them."""
    seq_len = phase.seq_len or train.seq_len
    per_step = train.micro_batch_size * train.grad_accum * world * seq_len
    steps = max(1, math.ceil(phase.tokens / per_step))
    return train.model_copy(
        update=dict(
            data=None,
            val_data=None,
            sources={n: str(sources[n]) for n in phase.mix},
            mix=phase.mix,
            init_from=str(init_from),
            seq_len=seq_len,
            max_steps=steps,
            lr=phase.lr or train.lr,
            warmup_steps=round(phase.warmup_fraction * steps),
            min_lr_ratio=phase.min_lr_ratio,
            schedule=phase.schedule,
            embedding_lr_scale=embedding_lr_scale,
            checkpoint_every=min(train.checkpoint_every, steps),
            log_spaced_checkpoints=False,
        )
    )


class AdaptResult(TypedDict, total=False):
    model: str  # <run>/adapted
    base: dict  # source, vocabulary and context before/after, the tokens added
    phases: list[dict]  # name, steps, tokens, final loss, mix, lr, seq_len, samples per source
    comparison: list[dict]  # after vs before per benchmark: gain in the target language, forgetting in the source
    before: dict
    after: dict
    interrupted: bool  # SIGTERM during a phase: rerun to resume
    world_size: int  # processes that trained together
    worker_rank: int  # returned by ranks other than 0 (which records the stage), not recorded


def run_adapt_stage(cfg: AdaptConfig, train: TrainConfig, run_dir: str | Path, seed: int) -> AdaptResult:
    started = time.time()
    run_dir = Path(run_dir)
    if not cfg.phases or not cfg.sources:
        raise ConfigError("adapt: give [adapt.sources] and at least one [[adapt.phases]]")
    d = setup_distributed(train.threads)
    work = run_dir / "adapt"
    # default base: this run's pretrained model (never its earlier `adapted/` output)
    source = cfg.base or run_model(run_dir, before="adapt")
    if source is None:
        raise ConfigError(f"adapt.base: not set, and {run_dir} has no pretrain checkpoint to adapt")
    tasks = [load_task(p) for p in cfg.tasks]

    if d.is_main:  # measuring and preparing are rank 0's; the others wait for the files
        base_model, base_tok = load_model_and_tokenizer(source, trust_remote_code=cfg.trust_remote_code)
        old_ctx = base_model.config.max_position_embeddings
        lengths = [old_ctx] + ([int(old_ctx * cfg.rope_scaling_factor)] if cfg.rope_scaling_factor else [])
        before = measure(base_model, base_tok, cfg, tasks, lengths, work)
        base_info, tokenizer = prepare_base(base_model, base_tok, cfg, source, work / "base")
        del base_model
    token_dirs = {}
    for name, files in cfg.sources.items():
        token_dirs[name] = work / "tokens" / name
        if d.is_main and (
            not (token_dirs[name] / "meta.json").is_file()
            or read_meta(token_dirs[name]).get("tokenizer") != str(work / "base")
        ):
            tokenize_files(files, tokenizer, token_dirs[name], cfg.text_field, tokenizer_path=str(work / "base"))
    barrier(d)

    init_from, phases = work / "base", []
    for phase in cfg.phases:
        pcfg = phase_config(train, phase, token_dirs, init_from, cfg.embedding_lr_scale, d.world)
        summary = pretrain(ModelConfig(), pcfg, work / phase.name, seed)
        if summary.get("interrupted"):
            return {"interrupted": True}
        phases.append(
            {
                "name": phase.name,
                "steps": summary["steps"],
                "tokens": summary["tokens"],
                "final_loss": summary["final_loss"],
                "mix": phase.mix,
                "lr": pcfg.lr,
                "seq_len": pcfg.seq_len,
                "samples_per_source": summary["samples_per_source"],
                **{k: summary[k] for k in ("tok_per_s", "padding_share", "peak_memory_gib", "settings")},
            }
        )
        init_from = latest_checkpoint(work / phase.name / "checkpoints")
    if not d.is_main:
        return {"worker_rank": d.rank}

    final = run_dir / "adapted"
    shutil.rmtree(final, ignore_errors=True)
    shutil.copytree(init_from, final, ignore=shutil.ignore_patterns("resume_state.pt"))
    model, tokenizer = load_model_and_tokenizer(final)
    after = measure(model, tokenizer, cfg, tasks, lengths, work)
    comparison = compare_results(after, before, cfg.target_language, cfg.source_language)
    summary = {
        "model": str(final),
        "base": base_info,
        "phases": phases,
        "comparison": comparison,
        "before": _headline(before),
        "after": _headline(after),
        "world_size": d.world,
    }
    record_stage(
        run_dir,
        "adapt",
        {"adapt": cfg.model_dump(), "train": train.model_dump()},
        [*(f for files in cfg.sources.values() for f in files), *cfg.heldout.values()],
        seed,
        started,
        summary,
    )
    write_report_section(run_dir, "adapt", _report(run_dir, summary, cfg))
    return summary


def _headline(m: dict) -> dict:
    return {**headline(m), "fertility": m["fertility"], **({"passkey": m["passkey"]} if "passkey" in m else {})}


def _report(run_dir: Path, s: dict, cfg: AdaptConfig) -> str:
    b = s["base"]
    lines = ["## Adapt", "", f"Continued pretraining of `{b['source']}` -> `{s['model']}`."]
    if b["added_tokens"]:
        lines.append(
            f"Tokenizer extended by {b['added_tokens']} tokens learned from `{b['added_from']}` "
            f"({b['vocab_before']} -> {b['vocab_before'] + b['added_tokens']}), e.g. "
            + ", ".join(f"`{t}`" for t in b["examples"][:8])
            + "."
        )
    if b["context_after"] != b["context_before"]:
        lines.append(
            f"Context {b['context_before']} -> {b['context_after']} positions ({cfg.rope_scaling} RoPE scaling "
            f"x{cfg.rope_scaling_factor})."
        )
    lines += [
        "",
        "| phase | mix | seq len | peak LR | steps | tokens | realised share | final loss |",
        "|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for p in s["phases"]:
        total = sum(p["samples_per_source"].values()) or 1
        share = ", ".join(f"{n} {c / total:.1%}" for n, c in p["samples_per_source"].items())
        mix = ", ".join(f"{n} {w:g}" for n, w in p["mix"].items())
        lines.append(
            f"| {p['name']} | {mix} | {p['seq_len']} | {p['lr']:g} | {p['steps']} | {p['tokens']:,} | "
            f"{share} | {p['final_loss']:.4f} |"
        )
    lines += [""] + [f"Phase {p['name']}: {efficiency_line(p)}" for p in s["phases"]]
    rows, offset = [], 0  # the phases' evaluations during training, on one token axis
    for p in s["phases"]:
        phase = read_metrics(run_dir / "adapt" / p["name"], "pretrain")
        rows += [{**r, "tokens": r["tokens"] + offset} for r in phase if "tokens" in r]
        offset += p["tokens"]
    lines += during_report(run_dir, rows, "adapt")
    before, after = s["before"], s["after"]
    lines += [
        "",
        "| language | bits/byte before | after | change | tokens/word before | after |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for lang, x in before["bits_per_byte"].items():
        y = after["bits_per_byte"][lang]
        lines.append(
            f"| {lang} | {x:.4f} | {y:.4f} | {(y - x) / x:+.1%} | {before['fertility'][lang]:.3f} | "
            f"{after['fertility'][lang]:.3f} |"
        )
    if before["bits_per_byte"]:
        plot = grouped_bars(
            run_dir / "plots" / "adapt_bits_per_byte.png",
            {"before": before["bits_per_byte"], "after": after["bits_per_byte"]},
            "bits per byte (lower is better)",
            "held-out text before and after adaptation",
        )
        lines += ["", f"![bits per byte before and after]({plot.relative_to(run_dir)})"]
    if "passkey" in after:
        lines += [
            "",
            "Passkey retrieval (share of trials): "
            + ", ".join(
                f"{n} tokens: {before['passkey'][n]:.0%} -> {after['passkey'][n]:.0%}" for n in after["passkey"]
            ),
        ]
    lines += [
        "",
        "Gain and forgetting (positive = better; paired bootstrap, * p < 0.05):",
        "",
        *comparison_table(s["comparison"], "before", "after"),
    ]
    return "\n".join(lines)
