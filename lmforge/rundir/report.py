"""report.md: a report card that every stage adds its own section to (like nanochat's).

Each stage writes report/<stage>.md; report.md is rebuilt from those in the order the stages
ran (the manifest's order), so re-running a stage replaces its section instead of appending
a second copy.
"""

from pathlib import Path

from lmforge.rundir.files import atomic_write_text
from lmforge.rundir.manifest import read_manifest


def write_report_section(run_dir: str | Path, stage: str, markdown: str) -> Path:
    """Store one stage's section and rebuild report.md; returns the report path."""
    run_dir = Path(run_dir)
    atomic_write_text(run_dir / "report" / f"{stage}.md", markdown.strip() + "\n")
    manifest = read_manifest(run_dir)
    order = list(manifest.get("stages", {}))
    sections = sorted(
        (run_dir / "report").glob("*.md"), key=lambda p: order.index(p.stem) if p.stem in order else len(order)
    )
    head = [f"# lmforge report: {run_dir.name}", ""]
    if manifest:
        head += [
            f"- code commit: `{manifest.get('code_commit', 'unknown')}`",
            f"- torch {manifest['versions'].get('torch')}, transformers {manifest['versions'].get('transformers')}",
            f"- hardware: {manifest['hardware'].get('cpu_cores')} CPU cores, "
            f"{manifest['hardware'].get('ram_gib')} GiB RAM, GPUs: {', '.join(manifest['hardware'].get('gpus') or ['none'])}",
            "",
        ]
    body = "\n".join(p.read_text() for p in sections)
    path = run_dir / "report.md"
    atomic_write_text(path, "\n".join(head) + "\n" + body)
    return path
