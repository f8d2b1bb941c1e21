"""`lmforge tokenize`: documents -> packed token shards, one dataset folder per split."""

import time
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from typing_extensions import TypedDict

from lmforge.data.packed import ShardWriter
from lmforge.data.readers import iter_documents, resolve_inputs
from lmforge.errors import CheckpointError, ConfigError
from lmforge.recipe import TokenizeConfig
from lmforge.rundir import fingerprint, record_stage, write_report_section

BATCH_DOCS = 512


def load_tokenizer(path: str | Path):
    """A local HF tokenizer folder; never runs remote code."""
    from transformers import AutoTokenizer

    if not (Path(path) / "tokenizer.json").exists() and not (Path(path) / "tokenizer_config.json").exists():
        raise CheckpointError(
            f"{path}: no tokenizer found (expected tokenizer.json); run `lmforge tokenizer train` first"
        )
    return AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)


def tokenize_files(
    inputs: list[str | Path],
    tokenizer,
    out_dir: str | Path,
    text_field: str = "text",
    shard_tokens: int = 50_000_000,
    tokenizer_path: str = "",
) -> dict:
    """Encode every document (EOS appended) into shards under `out_dir`; returns meta.json's content."""
    if tokenizer.eos_token_id is None:
        raise ConfigError("tokenizer has no eos token; packed documents need a separator")
    writer = ShardWriter(out_dir, len(tokenizer), tokenizer.eos_token_id, shard_tokens)
    files = resolve_inputs(inputs)
    batch: list[str] = []
    empty = 0

    def flush() -> None:
        for ids in tokenizer(batch, add_special_tokens=False)["input_ids"]:
            writer.add(ids)
        batch.clear()

    with Progress(
        TextColumn("tokenize"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("docs {task.fields[docs]}"),
        TimeElapsedColumn(),
        transient=True,
    ) as progress:
        task = progress.add_task("files", total=len(files), docs=0)
        n = 0
        for path in files:
            for text, _ in iter_documents([path], text_field):
                empty += not text.strip()
                batch.append(text)
                n += 1
                if len(batch) >= BATCH_DOCS:
                    flush()
                    progress.update(task, docs=n)
            progress.advance(task)
        flush()
    return writer.close(
        {
            "tokenizer": tokenizer_path,
            "empty_docs": empty,
            "sources": [fingerprint(f) for f in files],
        }
    )


class SplitResult(TypedDict):
    tokens: int
    docs: int
    dtype: str
    empty_docs: int
    path: str


class TokenizeResult(TypedDict, total=False):
    train: SplitResult
    val: SplitResult  # when there is a validation split


def run_tokenize_stage(cfg: TokenizeConfig, run_dir: str | Path) -> TokenizeResult:
    """Tokenize the train (and optional val) inputs into `<run>/tokens/{train,val}`."""
    started = time.time()
    run_dir = Path(run_dir)
    if not cfg.train:
        raise ConfigError("tokenize.train: give at least one input file")
    tok_path = Path(cfg.tokenizer) if cfg.tokenizer else run_dir / "tokenizer"
    tokenizer = load_tokenizer(tok_path)
    out = Path(cfg.out) if cfg.out else run_dir / "tokens"
    summary: TokenizeResult = {}
    for split, inputs in (("train", cfg.train), ("val", cfg.val)):
        if inputs:
            meta = tokenize_files(inputs, tokenizer, out / split, cfg.text_field, cfg.shard_tokens, str(tok_path))
            summary[split] = {k: meta[k] for k in ("tokens", "docs", "dtype", "empty_docs")} | {
                "path": str(out / split)
            }
    record_stage(run_dir, "tokenize", cfg.model_dump(), [*cfg.train, *cfg.val, tok_path], None, started, summary)
    lines = ["## Tokenize", "", "| split | documents | tokens | dtype | path |", "|---|---:|---:|---|---|"]
    lines += [f"| {s} | {m['docs']} | {m['tokens']} | {m['dtype']} | `{m['path']}` |" for s, m in summary.items()]
    write_report_section(run_dir, "tokenize", "\n".join(lines))
    return summary
