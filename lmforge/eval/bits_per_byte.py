"""Bits per byte: a language-modelling score that does not depend on the tokenizer.

Perplexity per token rewards a tokenizer that cuts text into more, easier pieces; bits per
UTF-8 byte (total negative log-likelihood in bits / total bytes) compares checkpoints with
different tokenizers fairly, which tokenizer extension and language adaptation need.

Each document is scored on its own, preceded by EOS (how the trainer saw document starts),
so every token of the text is predicted; documents longer than the context are cut into
consecutive windows that each start where the previous one ended.
"""

import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from lmforge.data import iter_documents
from lmforge.eval.memorization import memorization
from lmforge.generate import load_model_and_tokenizer, resolve_model_dir
from lmforge.recipe import EvalConfig
from lmforge.rundir import record_stage, write_report_section
from lmforge.rundir.plots import grouped_bars


def _windows(ids: list[int], context: int) -> list[list[int]]:
    """Split [eos] + ids into windows of at most context + 1 tokens overlapping by one."""
    return [ids[i : i + context + 1] for i in range(0, max(1, len(ids) - 1), context)]


@torch.no_grad()
def bits_per_byte(model, tokenizer, inputs: list[str | Path], text_field: str = "text", batch_size: int = 8,
                  max_docs: int | None = None) -> dict:
    """NLL of every document token; returns bits/byte, nats/token, perplexity and counts."""
    context = model.config.max_position_embeddings
    eos = tokenizer.eos_token_id
    windows, nbytes, ndocs = [], 0, 0
    for text, _ in iter_documents(inputs, text_field):
        if max_docs is not None and ndocs >= max_docs:
            break
        if not text:
            continue
        ndocs += 1
        nbytes += len(text.encode("utf-8"))
        windows += _windows([eos, *tokenizer(text, add_special_tokens=False).input_ids], context)
    windows.sort(key=len)  # similar lengths per batch: little padding
    nll, ntokens = 0.0, 0
    for i in range(0, len(windows), batch_size):
        group = windows[i : i + batch_size]
        width = max(len(w) for w in group)
        batch = torch.full((len(group), width), eos, dtype=torch.long)
        labels = torch.full((len(group), width - 1), -100, dtype=torch.long)
        for row, w in enumerate(group):
            batch[row, : len(w)] = torch.tensor(w)
            labels[row, : len(w) - 1] = torch.tensor(w[1:])
        # right padding needs no attention mask: causal attention never looks ahead at the pads
        logits = model(input_ids=batch[:, :-1].to(model.device)).logits.float()
        nll += F.cross_entropy(logits.flatten(0, 1), labels.flatten().to(model.device),
                               ignore_index=-100, reduction="sum").item()
        ntokens += int((labels != -100).sum())
    return {
        "docs": ndocs,
        "bytes": nbytes,
        "tokens": ntokens,
        "bits_per_byte": nll / math.log(2) / max(nbytes, 1),
        "nats_per_token": nll / max(ntokens, 1),
        "perplexity": math.exp(nll / max(ntokens, 1)),
    }


def run_eval_stage(cfg: EvalConfig, run_dir: str | Path) -> dict:
    """Score cfg.model (default: the run's newest checkpoint) on each language's held-out text."""
    started = time.time()
    run_dir = Path(run_dir)
    model_dir = resolve_model_dir(cfg.model or run_dir)
    model, tokenizer = load_model_and_tokenizer(model_dir)
    scores = {lang: bits_per_byte(model, tokenizer, [path], cfg.text_field, cfg.batch_size, cfg.max_docs)
              for lang, path in cfg.bpb_texts.items()}
    summary = {"model": str(model_dir), "bits_per_byte": scores}
    if cfg.memorization:
        data = cfg.memorization_data or run_dir / "tokens" / "train"
        summary["memorization"] = memorization(model, data, cfg.memorization_samples,
                                               cfg.memorization_prefix, cfg.memorization_continuation)
    record_stage(run_dir, "eval", cfg.model_dump(), [model_dir, *cfg.bpb_texts.values()], None, started, summary)
    plot = grouped_bars(run_dir / "plots" / "eval_bits_per_byte.png", {model_dir.name: {l: s["bits_per_byte"]
                        for l, s in scores.items()}}, "bits per byte (lower is better)", "held-out text by language")
    lines = ["## Eval", "", f"Language modelling on held-out text, model `{model_dir}`.", "",
             "| language | documents | bytes | tokens | bits/byte | perplexity (per token) |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {lang} | {s['docs']} | {s['bytes']:,} | {s['tokens']:,} | {s['bits_per_byte']:.4f} | "
              f"{s['perplexity']:.3f} |" for lang, s in scores.items()]
    if "memorization" in summary:
        m = summary["memorization"]
        lines += ["", f"Memorization (Pythia): {m['memorized']:.1%} of {m['sequences']} training sequences are "
                  f"continued exactly for {m['continuation']} tokens from a {m['prefix']}-token prefix "
                  f"({m['token_match']:.1%} of continuation tokens match)."]
    lines += ["", f"![bits per byte]({plot.relative_to(run_dir)})"]
    write_report_section(run_dir, "eval", "\n".join(lines))
    return summary
