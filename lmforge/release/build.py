"""`lmforge release RUN`: turn a run directory into `<run>/release/`, a folder a stranger can load,
read, verify and republish: the final model as a plain HF folder, model card, data card, MOF class
(`mof.yaml`), provenance with every file's hash, licences, the intermediate checkpoints, the data,
the evaluation, the code that made it and the run's report."""

import json
import shutil
import time
from pathlib import Path

import yaml
from typing_extensions import TypedDict

from lmforge.errors import CheckpointError, ConfigError
from lmforge.models import load_model_and_tokenizer, resolve_model_dir, run_model
from lmforge.recipe import ReleaseConfig, read_config_file
from lmforge.release.data_card import build_data_card
from lmforge.release.licenses import spdx
from lmforge.release.model_card import build_model_card
from lmforge.release.mof import COMPONENTS, classify, mof_document
from lmforge.release.provenance import write_provenance
from lmforge.rundir import record_stage, sha256_file, write_report_section
from lmforge.rundir.environment import package_versions
from lmforge.rundir.files import fingerprint
from lmforge.rundir.manifest import read_manifest

SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the lmforge checkout (or site-packages) in use
CHECKPOINT_FILES = ("config.json", "generation_config.json", "trainer_state.json")
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def _licenses(cfg: ReleaseConfig) -> dict:
    """Declared licences as canonical SPDX ids; unknown ids and component names are errors."""
    lic = cfg.licenses
    out = {
        k: spdx(v, f"release.licenses.{k}") if v else None
        for k, v in (("code", lic.code), ("data", lic.data), ("documents", lic.documents), ("weights", lic.weights))
    }
    comps = {}
    for name, v in lic.components.items():
        if name not in COMPONENTS:
            raise ConfigError(
                f"release.licenses.components: '{name}' is not an MOF component (one of: {', '.join(COMPONENTS)})"
            )
        comps[name] = spdx(v, f"release.licenses.components.{name}")
    return {**out, "components": comps}


def _component_license(name: str, licenses: dict) -> str | None:
    if name in licenses["components"]:
        return licenses["components"][name]
    if name.startswith("Model parameters") or name == "Model metadata":
        return licenses["weights"]
    kind = COMPONENTS[name][0]
    return licenses[{"code": "code", "data": "data", "document": "documents"}[kind]]


def _save_model(ref: Path, root: Path, dtype: str) -> tuple:
    import torch

    model, tokenizer = load_model_and_tokenizer(ref)
    if hasattr(model, "merge_and_unload"):  # a peft adapter: release the merged plain model
        model = model.merge_and_unload()
    model = model.to(getattr(torch, DTYPES[dtype]))
    model.save_pretrained(root, safe_serialization=True)
    tokenizer.save_pretrained(root)
    return model, tokenizer


def _checkpoints(run_dir: Path, root: Path, copy: bool) -> list[dict]:
    """The intermediate checkpoints (log-spaced suite included) with their hashes; model files only
    (optimizer and RNG state stay in the run)."""
    index = []
    for ckpt in sorted((run_dir / "checkpoints").glob("step-*"), key=lambda p: int(p.name.split("-")[1])):
        if not (ckpt / "config.json").is_file():
            continue
        files = [
            f
            for f in sorted(ckpt.iterdir())
            if f.is_file() and (f.suffix == ".safetensors" or f.name in CHECKPOINT_FILES)
        ]
        state = json.loads((ckpt / "trainer_state.json").read_text()) if (ckpt / "trainer_state.json").is_file() else {}
        entry = {
            "name": ckpt.name,
            "step": state.get("step"),
            "tokens": state.get("tokens"),
            "files": {f.name: sha256_file(f) for f in files},
        }
        if copy:
            dest = root / "checkpoints" / ckpt.name
            dest.mkdir(parents=True)
            for f in files:
                shutil.copy2(f, dest / f.name)
            entry["path"] = f"checkpoints/{ckpt.name}"
        index.append(entry)
    return index


def _copy(src: Path, dest: Path) -> bool:
    if not src.exists():
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest)
    return True


def _copy_code(root: Path) -> None:
    """The code that made the model: lmforge's source, its pyproject and pinned libraries."""
    code = root / "code"
    shutil.copytree(SOURCE_ROOT / "lmforge", code / "lmforge", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "LICENSE", "README.md"):
        _copy(SOURCE_ROOT / name, code / name)
    (code / "requirements.txt").write_text(
        "".join(f"{k}=={v}\n" for k, v in package_versions().items() if k not in ("lmforge", "python"))
    )


def _eval_data(manifest: dict, root: Path) -> bool:
    """Task specs with their item files, and the held-out texts, under eval/data/."""
    cfg = manifest.get("config", {}).get("eval", {})
    copied = False
    for spec in cfg.get("tasks", []):
        spec = Path(spec)
        copied |= _copy(spec, root / "eval" / "data" / spec.name)
        data = spec.parent / read_config_file(spec, "task spec").get("data", "")
        if data.is_file():
            _copy(data, root / "eval" / "data" / data.name)
    for lang, path in cfg.get("bpb_texts", {}).items():
        copied |= _copy(Path(path), root / "eval" / "data" / f"heldout_{lang}{Path(path).suffix}")
    return copied


def _data(run_dir: Path, manifest: dict, root: Path) -> bool:
    copied = _copy(run_dir / "curate" / "data", root / "data" / "curated")
    for d in (
        manifest.get("config", {}).get("sft", {}).get("datasets", []) if "sft" in manifest.get("stages", {}) else []
    ):
        copied |= _copy(Path(d["path"]), root / "data" / "sft" / Path(d["path"]).name)
    return copied


def _samples(manifest: dict, root: Path) -> bool:
    rows = []
    for stage in ("generate", "sft"):
        for s in manifest.get("stages", {}).get(stage, {}).get("samples", []):
            rows.append({"stage": stage, **s})
    if rows:
        (root / "samples.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return bool(rows)


def _license_files(root: Path, licenses: dict) -> None:
    """LICENSES/<id>.txt per declared licence: the full text where lmforge has it (its own), else
    the SPDX id and the canonical URL of the text."""
    ids = {v for k, v in licenses.items() if k != "components" and v} | set(licenses["components"].values())
    own = SOURCE_ROOT / "LICENSE"
    for spdx_id in sorted(ids):
        path = root / "LICENSES" / f"{spdx_id}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        if spdx_id == "Apache-2.0" and own.is_file():
            shutil.copy2(own, path)
        else:
            path.write_text(
                f"SPDX-License-Identifier: {spdx_id}\n\nFull text: https://spdx.org/licenses/{spdx_id}.html\n"
            )


def _treatments(manifest: dict) -> list[str]:
    stages = manifest.get("stages", {})
    names = [
        ("pretrain", "pretrained"),
        ("adapt", "language-adapted"),
        ("sft", "instruction-tuned"),
        ("dpo", "preference-tuned"),
        ("merge", "merged"),
    ]
    return [label for stage, label in names if stage in stages]


def _base_model(manifest: dict) -> str | None:
    """The model the run started from, when it did not start from scratch."""
    cfg, stages = manifest.get("config", {}), manifest.get("stages", {})
    candidates = [
        cfg.get("adapt", {}).get("adapt", {}).get("base"),
        cfg.get("pretrain", {}).get("train", {}).get("init_from"),
    ]
    if "pretrain" not in stages and "adapt" not in stages:
        candidates.append(cfg.get("sft", {}).get("model"))
    return next((c for c in candidates if c), None)


def _checkpoints_md(index: list[dict]) -> str:
    lines = [
        "# Intermediate checkpoints",
        "",
        "| checkpoint | step | tokens | weights sha256 | in this release |",
        "|---|---:|---:|---|---|",
    ]
    for c in index:
        weights = next((h for n, h in c["files"].items() if n.endswith(".safetensors")), "")
        lines.append(f"| {c['name']} | {c['step']} | {c['tokens']} | `{weights[:16]}…` | {c.get('path', 'no')} |")
    return "\n".join(lines) + "\n"


class ReleaseResult(TypedDict):
    release: str
    model: str
    params: int
    mof_class: str
    missing_for_next_class: dict[str, list[str]]  # class -> what it still needs
    checkpoints: int


def build_release(cfg: ReleaseConfig, run_dir: str | Path) -> ReleaseResult:
    started = time.time()
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: no such run directory")
    licenses = _licenses(cfg)  # bad ids fail before anything is written
    ref = Path(resolve_model_dir(cfg.model)) if cfg.model else run_model(run_dir, before="release")
    if ref is None:
        raise CheckpointError(
            f"{run_dir}: the run has no model to release (no chat model, adapted model or checkpoint)"
        )
    if cfg.research_paper and not Path(cfg.research_paper).is_file():
        raise ConfigError(f"release.research_paper: {cfg.research_paper}: no such file")
    manifest = read_manifest(run_dir)
    name = cfg.name or run_dir.name
    root = run_dir / "release"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)

    model, _ = _save_model(ref, root, cfg.dtype)
    params = sum(p.numel() for p in model.parameters())
    architecture = (model.config.architectures or [type(model).__name__])[0]
    del model
    checkpoints = _checkpoints(run_dir, root, cfg.include_checkpoints)
    (root / "checkpoints.json").write_text(json.dumps(checkpoints, indent=1) + "\n")
    (root / "checkpoints.md").write_text(_checkpoints_md(checkpoints))
    _copy_code(root)
    _copy(run_dir / "recipe.yaml", root / "recipe.yaml")
    _copy(run_dir / "report.md", root / "report" / "report.md")
    _copy(run_dir / "plots", root / "report" / "plots")
    results_path = run_dir / "eval" / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    has_results = _copy(results_path, root / "eval" / "results.json")
    has_eval_data = _eval_data(manifest, root)
    has_data = cfg.include_data and _data(run_dir, manifest, root)
    has_samples = _samples(manifest, root)
    if cfg.research_paper:
        _copy(Path(cfg.research_paper), root / "paper" / Path(cfg.research_paper).name)
    _license_files(root, licenses)

    paths = {
        "Model architecture": "code/lmforge/train/model.py",
        "Data preprocessing code": "code/lmforge/curate",
        "Training code": "code/lmforge/train",
        "Inference code": "code/lmforge/engine",
        "Evaluation code": "code/lmforge/eval",
        "Supporting libraries and tools": "code/requirements.txt",
        "Model parameters (Final)": "model.safetensors",
        "Model parameters (Intermediate)": "checkpoints" if cfg.include_checkpoints and checkpoints else None,
        "Datasets": "data" if has_data else None,
        "Evaluation data": "eval/data" if has_eval_data else None,
        "Model metadata": "recipe.yaml" if (root / "recipe.yaml").is_file() else "config.json",
        "Sample model outputs": "samples.jsonl" if has_samples else None,
        "Model card": "README.md",
        "Data card": "DATA_CARD.md",
        "Technical report": "report/report.md" if (root / "report" / "report.md").is_file() else None,
        "Research paper": f"paper/{Path(cfg.research_paper).name}" if cfg.research_paper else None,
        "Evaluation results": "eval/results.json" if has_results else None,
    }
    if not (root / "model.safetensors").is_file():  # sharded weights
        paths["Model parameters (Final)"] = "model.safetensors.index.json"
    components = {n: {"path": p, "license": _component_license(n, licenses)} for n, p in paths.items()}
    languages = sorted(
        {
            *manifest.get("config", {}).get("curate", {}).get("languages", []),
            *(t.get("language") for t in results.get("tasks", []) if t.get("language")),
            *manifest.get("stages", {}).get("sft", {}).get("languages", {}),
        }
        - {"-"}
    )
    facts = {
        "name": name,
        "manifest": manifest,
        "results": results,
        "config": cfg,
        "licenses": licenses,
        "languages": languages,
        "architecture": architecture.removesuffix("ForCausalLM"),
        "params": params,
        "treatments": _treatments(manifest),
        "base_model": _base_model(manifest),
        "source": str(ref),
    }
    # the card is a component of the class it reports: a stub stands in while classifying
    (root / "DATA_CARD.md").write_text(build_data_card(run_dir, manifest, name, cfg.datasets, licenses["data"]))
    (root / "README.md").write_text("model card: written below\n")
    mof = classify(components, root)
    build_model_card({**facts, "mof": mof}).save(root / "README.md")
    release_meta = {
        "name": name,
        "version": cfg.version,
        "date": time.strftime("%Y-%m-%d"),
        "type": "language",
        "architecture": f"decoder-only transformer ({architecture})",
        "treatment": ", ".join(facts["treatments"]) or "none",
        "origin": facts["base_model"] or "",
        "producer": cfg.producer,
        "contact": cfg.contact,
        "repository": cfg.repository,
        "huggingface": f"https://huggingface.co/{cfg.hub_repo}" if cfg.hub_repo else "",
    }
    (root / "mof.yaml").write_text(
        yaml.safe_dump(mof_document(release_meta, licenses, mof), sort_keys=False, allow_unicode=True)
    )
    write_provenance(
        root,
        manifest,
        yaml.safe_load((run_dir / "recipe.yaml").read_text()) if (run_dir / "recipe.yaml").is_file() else {},
        checkpoints,
        {
            "released_model": {
                "source": str(ref),
                "dtype": cfg.dtype,
                "source_fingerprint": fingerprint(ref)["sha256"],
            },
            "mof_class": mof["class_name"],
        },
    )
    summary = {
        "release": str(root),
        "model": str(ref),
        "params": params,
        "mof_class": mof["class_name"],
        "missing_for_next_class": mof["missing"],
        "checkpoints": len(checkpoints),
    }
    record_stage(run_dir, "release", cfg.model_dump(), [ref], None, started, summary)
    write_report_section(run_dir, "release", release_report(summary, mof))
    return summary


def release_report(summary: dict, mof: dict) -> str:
    lines = [
        "## Release",
        "",
        f"`{summary['release']}`: {summary['params'] / 1e6:.2f}M parameters from "
        f"`{summary['model']}`, {summary['checkpoints']} intermediate checkpoints indexed.",
        "",
        f"Model Openness Framework: **{mof['class_name']}**.",
        "",
    ]
    for cls, gaps in mof["missing"].items():
        lines += [f"Missing for {cls}:", ""] + [f"- {g}" for g in gaps] + [""]
    lines += ["| MOF component | path | licence | status |", "|---|---|---|---|"]
    lines += [
        f"| {n} | {s['path'] or '–'} | {s['license'] or '–'} | {s['status']} |" for n, s in mof["components"].items()
    ]
    return "\n".join(lines)
