"""`export` as a pipeline stage: GGUF files of the run's released model, written next to the
release's weights (and listed in its provenance) and checked in llama.cpp."""

import time
from pathlib import Path

from typing_extensions import TypedDict

from lmforge.errors import CheckpointError
from lmforge.export.gguf import export_gguf
from lmforge.export.verify import verify_gguf
from lmforge.models import resolve_model_dir, run_model
from lmforge.recipe import ExportConfig
from lmforge.release import is_release, rehash_release
from lmforge.rundir import record_stage, write_report_section


class ExportResult(TypedDict):
    model: str
    files: list[dict]  # per GGUF: path, type, bytes, architecture, params, llama_cpp (the check's figures)


def run_export_stage(cfg: ExportConfig, run_dir: str | Path) -> ExportResult:
    started = time.time()
    run_dir = Path(run_dir)
    release = run_dir / "release"
    in_release = is_release(release)
    source = resolve_model_dir(cfg.model) if cfg.model else run_model(run_dir)  # the release first
    if source is None:
        raise CheckpointError(f"{run_dir}: the run has no model to export")
    out_dir = Path(cfg.out) if cfg.out else (release if in_release else run_dir / "export")
    files = []
    for kind in cfg.types:
        info = export_gguf(source, out_dir / f"{run_dir.name}-{kind}.gguf", kind)
        if cfg.verify_prompts:
            info["llama_cpp"] = verify_gguf(info["path"], source, cfg.verify_prompts)
        files.append(info)
    if in_release and out_dir.resolve() == release.resolve():
        rehash_release(release)
    summary = {"model": str(source), "files": files}
    record_stage(run_dir, "export", cfg.model_dump(), [source], None, started, summary)
    write_report_section(run_dir, "export", export_report(summary))
    return summary


def export_report(summary: dict) -> str:
    lines = [
        "## Export",
        "",
        f"GGUF files of `{summary['model']}` (llama.cpp, Ollama, LM Studio):",
        "",
        "| file | type | MB | llama.cpp greedy identical | top-1 agreement | tokenization identical |",
        "|---|---|---:|---|---:|---|",
    ]
    for f in summary["files"]:
        v = f.get("llama_cpp")
        lines.append(
            f"| `{Path(f['path']).name}` | {f['type']} | {f['bytes'] / 1e6:.1f} | "
            + (
                f"{v['greedy_identical']}/{v['prompts']} | {v['top1_agreement']:.1%} | "
                f"{v['tokenization_identical']}/{v['prompts']} |"
                if v
                else "not checked | – | – |"
            )
        )
    lines += [
        "",
        f"Serve it: `lmforge serve {summary['files'][0]['path']} --backend llama.cpp`" if summary["files"] else "",
    ]
    return "\n".join(lines)
