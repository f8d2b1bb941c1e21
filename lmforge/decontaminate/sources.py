"""A run's training data, by source, as the manifest records it: the curated shards, the text the
tokenizer stage packed, the adapt stage's sources, SFT and DPO sets, and what translate and
self-instruct wrote. Records are read whole and every string in them is looked at (a text field,
or the turns of a conversation, or a preference pair's prompt and answers)."""

from collections.abc import Iterator
from pathlib import Path

from lmforge.data import iter_documents, iter_records, resolve_inputs
from lmforge.rundir.manifest import read_manifest

SKIP_KEYS = {"id", "language", "lang", "role", "format", "where", "metadata", "url", "source"}


def training_sources(run_dir: str | Path) -> dict[str, list[str]]:
    """source name -> files or folders (those that exist), from the run's manifest."""
    m = read_manifest(run_dir)
    config, stages = m.get("config", {}), m.get("stages", {})
    out: dict[str, list[str]] = {}
    if "curate" in stages:
        out["curate"] = [str(Path(run_dir) / "curate" / "data")]
    out["tokenize"] = list((config.get("tokenize") or {}).get("train") or [])
    out["adapt"] = [p for files in ((config.get("adapt") or {}).get("sources") or {}).values() for p in files]
    for stage in ("sft", "dpo"):
        out[stage] = [d["path"] for d in (config.get(stage) or {}).get("datasets") or []]
    out["translate"] = [
        f["output"]
        for f in (stages.get("translate") or {}).get("files", [])
        if not f["output"].endswith((".toml", ".yaml"))
    ]
    if (stages.get("self_instruct") or {}).get("output"):
        out["self_instruct"] = [stages["self_instruct"]["output"]]
    return {name: [p for p in paths if Path(p).exists()] for name, paths in out.items() if paths}


def strings(value, key: str | None = None) -> Iterator[str]:
    """Every string of a record worth reading (not ids, language tags or roles)."""
    if key in SKIP_KEYS:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v, key)


def iter_texts(paths: list[str]) -> Iterator[tuple[str, str]]:
    """(text, file:line) for every string of every record (a plain-text file: the file), streamed."""
    for path in resolve_inputs(paths):
        if path.suffix == ".txt":
            yield from iter_documents([path])
            continue
        for record, where in iter_records([path]):
            for text in strings(record):
                yield text, where
