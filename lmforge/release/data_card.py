"""DATA_CARD.md: what the model was trained on, from the stages' own accounting (nothing re-counted):
sources and fingerprints, languages, filters and thresholds, documents read/kept/dropped per reason,
PII redactions, dedup, tokens per source, the mixture of each adaptation phase, SFT datasets."""

import json
from pathlib import Path


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _curation(run_dir: Path, manifest: dict) -> list[str]:
    acc = _read_json(run_dir / "curate" / "accounting.json")
    cfg = manifest.get("config", {}).get("curate")
    if not acc or not cfg:
        return ["No curation stage in this run: the training text was used as given (see Sources)."]
    dropped = acc.get("dropped", {})
    dedup = {k: v for k, v in dropped.items() if k.endswith("_duplicate")}
    lines = [
        f"Documents read: **{acc['read']:,}**, kept: **{acc['kept']:,}** "
        f"({acc['kept'] / max(acc['read'], 1):.1%}), dropped: {sum(dropped.values()):,}; "
        f"the accounting {'balances' if acc.get('balanced') else 'does NOT balance'} (read = kept + dropped).",
        "",
        f"Languages kept (language ID threshold {cfg.get('language_threshold')}): "
        + ", ".join(f"{k} {v:,}" for k, v in acc.get("languages_kept", {}).items())
        + "; detected in the input: "
        + ", ".join(f"{k} {v:,}" for k, v in acc.get("languages_detected", {}).items())
        + ".",
        "",
        f"Filters: {', '.join(cfg.get('filters', [])) or 'none'}"
        + (
            f"; thresholds changed from the presets: `{json.dumps(cfg['thresholds'])}`"
            if cfg.get("thresholds")
            else "; preset thresholds (FineWeb / FineWeb-2, see lmforge/curate/presets.py)"
        )
        + ".",
        "",
        f"Normalisation (ftfy + NFC): {cfg.get('normalise')}. PII redaction: {cfg.get('pii')}"
        + (
            " (" + ", ".join(f"{k} {v}" for k, v in acc.get("pii_redacted", {}).items()) + " redacted)"
            if acc.get("pii_redacted")
            else ""
        )
        + ".",
        "",
        f"Deduplication: exact {cfg.get('exact_dedup')}, MinHash {cfg.get('minhash', {}).get('enabled')} "
        f"({cfg.get('minhash', {}).get('bands')} bands x {cfg.get('minhash', {}).get('rows')} rows, "
        f"{cfg.get('minhash', {}).get('ngram')}-grams): "
        + (", ".join(f"{k} {v:,}" for k, v in dedup.items()) or "nothing removed")
        + ".",
        "",
        "| dropped because | documents |",
        "|---|---:|",
    ]
    lines += [f"| {reason} | {n:,} |" for reason, n in sorted(dropped.items(), key=lambda kv: -kv[1])]
    return lines


def _sources(manifest: dict) -> list[str]:
    lines = ["| stage | input | sha256 | bytes | files |", "|---|---|---|---:|---:|"]
    for stage, inputs in manifest.get("inputs", {}).items():
        for i in inputs:
            lines.append(f"| {stage} | `{i['path']}` | `{i['sha256'][:16]}…` | {i['bytes']:,} | {i['files']} |")
    return lines


def _tokens(run_dir: Path) -> list[str]:
    lines = []
    for split in ("train", "val"):
        meta = _read_json(run_dir / "tokens" / split / "meta.json")
        if meta:
            lines.append(
                f"- pretraining `{split}`: {meta['tokens']:,} tokens in {meta['docs']:,} documents "
                f"(vocabulary {meta['vocab_size']:,}), from "
                + ", ".join(f"`{s['path']}`" for s in meta.get("sources", []))
            )
    for meta_path in sorted((run_dir / "adapt").glob("tokens/*/meta.json")):
        meta = _read_json(meta_path)
        lines.append(
            f"- adaptation source `{meta_path.parent.name}`: {meta['tokens']:,} tokens in {meta['docs']:,} documents"
        )
    return lines or ["- no packed token shards in this run"]


def _phases(manifest: dict) -> list[str]:
    phases = manifest.get("stages", {}).get("adapt", {}).get("phases", [])
    if not phases:
        return []
    lines = [
        "",
        "### Continued pretraining mixture",
        "",
        "| phase | mix | tokens trained | steps | samples per source |",
        "|---|---|---:|---:|---|",
    ]
    for p in phases:
        lines.append(
            f"| {p['name']} | {', '.join(f'{k} {v:.0%}' for k, v in p['mix'].items())} | {p['tokens']:,} | "
            f"{p['steps']:,} | {', '.join(f'{k} {v:,}' for k, v in p.get('samples_per_source', {}).items())} |"
        )
    return lines


def _sft(manifest: dict) -> list[str]:
    sft, cfg = manifest.get("stages", {}).get("sft"), manifest.get("config", {}).get("sft")
    if not sft or not cfg:
        return []
    lines = ["", "### Instruction tuning data", "", "| file | format | weight | languages |", "|---|---|---:|---|"]
    lines += [
        f"| `{d['path']}` | {d.get('format', 'auto')} | {d.get('weight', 1)} | "
        f"{', '.join(d.get('languages') or []) or 'all'} |"
        for d in cfg.get("datasets", [])
    ]
    lines += [
        "",
        f"Conversations used: {sft.get('conversations', '?'):,}; per language: "
        + ", ".join(f"{k} {v:,}" for k, v in sft.get("languages", {}).items())
        + "; skipped: "
        + (", ".join(f"{k} {v}" for k, v in sft.get("skipped", {}).items()) or "none")
        + ".",
    ]
    return lines


def build_data_card(run_dir: Path, manifest: dict, name: str, datasets: list[str], license_id: str | None) -> str:
    lines = [
        f"# Data card: {name}",
        "",
        "Everything below comes from the run's own accounting (`curate/accounting.json`, the token shards' "
        "`meta.json`, `manifest.json`); `provenance.json` holds every input's full hash.",
        "",
        f"Data licence: {license_id or 'not declared'}."
        + (f" Hub datasets: {', '.join(datasets)}." if datasets else ""),
        "",
        "## Curation",
        "",
        *_curation(run_dir, manifest),
        "",
        "## Tokens",
        "",
        *_tokens(run_dir),
        *_phases(manifest),
        *_sft(manifest),
        "",
        "## Sources and fingerprints",
        "",
        *_sources(manifest),
        "",
    ]
    return "\n".join(lines)
