"""`lmforge curate`: raw text in, clean, language-tagged, deduplicated JSONL shards out.

Two datatrove pipelines, run by one of datatrove's executors (local process pool by default,
Slurm or Ray with the same recipe):

  1. filter, N tasks in parallel (input files are spread over tasks):
     readers -> bad input -> ftfy/NFC -> language ID -> heuristic filters -> [quality classifier]
     -> [decontamination against evaluation tasks] -> PII redaction -> <out>/filtered/
  2. dedup, one task (needs every document; depends on 1):
     exact dedup -> MinHash-LSH -> <out>/data/<language>/<rank>.jsonl.gz
     or, with `minhash.multistage`, datatrove's four MinHash stages (minhash_stages.py), none of
     which holds the corpus in memory: signatures -> buckets -> clusters -> filter + write.

Dropped documents go to <out>/dropped/<step>/ with their reason in `metadata.filter_reason`;
the accounting (read = kept + dropped per reason) and histograms go to <out>/accounting.json,
the run's report and PNG plots. The run stops with an error if the accounting does not balance.
"""

import contextlib
import glob
import inspect
import json
import os
import shutil
import sys
import time
from pathlib import Path

from datatrove.pipeline.writers import JsonlWriter
from typing_extensions import TypedDict

from lmforge.curate.accounting import LengthProbe, account
from lmforge.curate.code import CodeFilters, RedactSecrets, SourceFolderReader
from lmforge.curate.decontaminate import DropContaminated, task_specs
from lmforge.curate.dedup import ExactDedup, MinHashDedup
from lmforge.curate.language import OfflineLanguageFilter
from lmforge.curate.minhash_stages import bucket_step, cluster_step, filter_step, minhash_config, signature_step
from lmforge.curate.normalise import NormaliseText
from lmforge.curate.pii import RedactPII
from lmforge.curate.presets import PRESETS
from lmforge.curate.quality_classifier import QualityClassifierFilter, train_quality_classifier
from lmforge.curate.quality_filters import CHECKS, HeuristicFilters
from lmforge.curate.readers import (
    AccountedDatasetReader,
    AccountedParquetReader,
    JsonlReader,
    PhaseOutputReader,
    RejectBadInput,
    TextFolderReader,
    WarcReader,
    input_format,
    is_saved_dataset,
    truncated_inputs,
)
from lmforge.curate.report import write_curate_report
from lmforge.curate.workers import children_die_with_us
from lmforge.errors import ConfigError, DataError
from lmforge.recipe import CurateConfig
from lmforge.rundir import atomic_write_text, record_stage

READERS = {"jsonl": JsonlReader, "parquet": AccountedParquetReader, "txt": TextFolderReader, "warc": WarcReader}


def check_thresholds(cfg: CurateConfig) -> None:
    """Every override names a known filter and parameter, and every kept language has thresholds."""
    for lang, filters in cfg.thresholds.items():
        for name, values in filters.items():
            if name not in CHECKS:
                raise ConfigError(f"curate.thresholds.{lang}.{name}: unknown filter; choose from {list(CHECKS)}")
            params = inspect.signature(CHECKS[name]).parameters
            for key in values:
                if key not in params or params[key].kind is not inspect.Parameter.KEYWORD_ONLY:
                    raise ConfigError(f"curate.thresholds.{lang}.{name}.{key}: unknown threshold")
    if "gopher_quality" in cfg.filters:
        for lang in cfg.languages:
            if lang not in PRESETS and "stop_words" not in cfg.thresholds.get(lang, {}).get("gopher_quality", {}):
                raise ConfigError(
                    f"curate: no filter thresholds for language {lang!r}; presets exist for "
                    f"{sorted(PRESETS)}; give curate.thresholds.{lang}.gopher_quality.stop_words"
                )


def build_readers(cfg: CurateConfig, out: Path) -> list:
    """One reader per input format; files of a format are listed in a paths file so that the
    executor spreads them over tasks. Files of unknown format inside input folders are not read;
    they are listed in <out>/ignored_files.txt and counted in the report."""
    files: dict[str, list[Path]] = {}
    readers, ignored = [], []
    for item in cfg.inputs:
        if item.startswith("hf:"):
            name = item[3:]
            config = cfg.hf_config.get(name) if isinstance(cfg.hf_config, dict) else cfg.hf_config
            options = {"split": cfg.hf_split} | ({"name": config} if config else {})
            readers.append(
                AccountedDatasetReader(
                    name, dataset_options=options, text_key=cfg.text_field, streaming=True, limit=cfg.hf_limit or -1
                )
            )
            continue
        path = Path(item)
        if is_saved_dataset(path):
            readers.append(AccountedDatasetReader(str(path.resolve()), load_from_disk=True, text_key=cfg.text_field))
            continue
        matches = [Path(p) for p in sorted(glob.glob(item))] if any(c in item for c in "*?[") else [path]
        if not matches or not all(m.exists() for m in matches):
            raise ConfigError(f"curate.inputs: {item}: no such file or folder")
        for m in matches:
            if cfg.preset == "code" and m.is_dir():  # every file is a document: code has many extensions
                readers.append(SourceFolderReader(str(m.resolve()), text_key=cfg.text_field))
                continue
            found = sorted(p for p in m.rglob("*") if p.is_file()) if m.is_dir() else [m]
            for f in found:
                fmt = input_format(f)
                if fmt is None and not m.is_dir():
                    raise ConfigError(f"curate.inputs: {f}: unknown format (JSONL, Parquet, .txt, WARC)")
                if fmt:
                    files.setdefault(fmt, []).append(f.resolve())
                else:
                    ignored.append(str(f))
    for fmt, paths in files.items():
        root = Path(os.path.commonpath([p.parent for p in paths]))
        listing = out / f"inputs_{fmt}.txt"
        listing.write_text("\n".join(str(p.relative_to(root)) for p in paths) + "\n")
        readers.append(READERS[fmt](str(root), paths_file=str(listing), text_key=cfg.text_field))
    if not readers:
        raise ConfigError("curate.inputs: no input files found")
    if ignored:
        (out / "ignored_files.txt").write_text("\n".join(ignored) + "\n")
    return readers


def side_file(out: Path, step: str) -> JsonlWriter:
    return JsonlWriter(str(out / "dropped" / step), output_filename="${rank}.jsonl.gz")


def dropped_writer(cfg: CurateConfig, out: Path, step: str) -> JsonlWriter | None:
    """The step's side file for dropped documents, if the recipe keeps them."""
    return side_file(out, step) if cfg.write_dropped else None


def code_pipeline(cfg: CurateConfig, out: Path) -> list:
    """The filter phase of `preset = "code"` (lmforge/curate/code.py)."""
    steps = [
        *build_readers(cfg, out),
        RejectBadInput(side_file(out, "bad_input")),
        LengthProbe(str(out / "stats"), "read"),
    ]
    steps.append(CodeFilters(cfg.code, exclusion_writer=dropped_writer(cfg, out, "code")))
    if cfg.decontaminate:
        writer = dropped_writer(cfg, out, "decontaminate")
        steps.append(DropContaminated(task_specs(cfg.decontaminate), exclusion_writer=writer))
    steps += [RedactSecrets()] if cfg.code.secrets else []
    steps += [RedactPII()] if cfg.pii else []
    return steps + [JsonlWriter(str(out / "filtered"), output_filename="${rank}.jsonl.gz")]


def filter_pipeline(cfg: CurateConfig, out: Path, quality_model: Path | None) -> list:
    if cfg.preset == "code":
        return code_pipeline(cfg, out)
    steps = [*build_readers(cfg, out), RejectBadInput(side_file(out, "bad_input"))]
    steps += [NormaliseText()] if cfg.normalise else []
    steps += [
        LengthProbe(str(out / "stats"), "read"),
        OfflineLanguageFilter(
            cfg.languages, cfg.language_threshold, exclusion_writer=dropped_writer(cfg, out, "language")
        ),
    ]
    if cfg.filters:
        steps.append(
            HeuristicFilters(cfg.filters, cfg.thresholds, exclusion_writer=dropped_writer(cfg, out, "heuristics"))
        )
    if quality_model:
        steps.append(
            QualityClassifierFilter(
                str(quality_model),
                cfg.quality_classifier.threshold,
                exclusion_writer=dropped_writer(cfg, out, "quality_classifier"),
            )
        )
    if cfg.decontaminate:
        writer = dropped_writer(cfg, out, "decontaminate")
        steps.append(DropContaminated(task_specs(cfg.decontaminate), exclusion_writer=writer))
    steps += [RedactPII()] if cfg.pii else []
    return steps + [JsonlWriter(str(out / "filtered"), output_filename="${rank}.jsonl.gz")]


def filtered_reader(out: Path) -> JsonlReader:
    return PhaseOutputReader(str(out / "filtered"), glob_pattern="*.jsonl.gz")


def written(out: Path) -> list:
    return [
        LengthProbe(str(out / "stats"), "kept"),
        JsonlWriter(str(out / "data"), output_filename="${language}/${rank}.jsonl.gz"),
    ]


def dedup_pipeline(cfg: CurateConfig, out: Path) -> list:
    steps = [filtered_reader(out)]
    code = cfg.preset == "code"
    if cfg.exact_dedup:
        steps.append(ExactDedup(exclusion_writer=dropped_writer(cfg, out, "exact_dedup"), code=code))
    m = cfg.minhash
    if m.enabled:
        writer = dropped_writer(cfg, out, "near_dedup")
        steps.append(MinHashDedup(m.bands, m.rows, m.ngram, m.verify_threshold, exclusion_writer=writer, code=code))
    return steps + written(out)


def multistage_dedup(cfg: CurateConfig, out: Path, tasks: int) -> list[tuple[str, list, int]]:
    """datatrove's four MinHash stages as (name, pipeline, tasks); the last also writes the data.
    Exact dedup runs inside each final task: exact copies across tasks have equal signatures, so
    MinHash removes them (as near duplicates)."""
    m, mh = cfg.minhash, out / "minhash"
    config = minhash_config(m.bands, m.rows, m.ngram)
    last = [filtered_reader(out), filter_step(str(mh / "remove_ids"), dropped_writer(cfg, out, "near_dedup"))]
    last += [ExactDedup(exclusion_writer=dropped_writer(cfg, out, "exact_dedup"))] if cfg.exact_dedup else []
    return [
        ("minhash_signatures", [filtered_reader(out), signature_step(str(mh / "signatures"), config)], tasks),
        ("minhash_buckets", [bucket_step(str(mh / "signatures"), str(mh / "buckets"), config)], m.bands),
        ("minhash_clusters", [cluster_step(str(mh / "buckets"), str(mh / "remove_ids"), config)], 1),
        ("dedup", last + written(out), tasks),
    ]


def dedup_phases(cfg: CurateConfig, out: Path, tasks: int) -> list[tuple[str, list, int]]:
    if cfg.minhash.enabled and cfg.minhash.multistage:
        return multistage_dedup(cfg, out, tasks)
    return [("dedup", dedup_pipeline(cfg, out), 1)]


def make_executor(cfg: CurateConfig, pipeline: list, logging_dir: Path, tasks: int, workers: int, depends=None):
    """datatrove's executor for the recipe's `executor`: the same pipeline, local or on a cluster."""
    common = {"pipeline": pipeline, "tasks": tasks, "logging_dir": str(logging_dir), "depends": depends}
    if cfg.executor == "local":
        from datatrove.executor import LocalPipelineExecutor

        return LocalPipelineExecutor(**common, workers=workers, skip_completed=False)
    if cfg.executor == "slurm":
        from datatrove.executor import SlurmPipelineExecutor

        options = {"time": "24:00:00", "job_name": f"lmforge-curate-{logging_dir.name}"} | cfg.executor_options
        if "partition" not in options:
            raise ConfigError("curate.executor_options.partition: the Slurm partition to submit to")
        return SlurmPipelineExecutor(**common, **options)
    from datatrove.executor import RayPipelineExecutor

    return RayPipelineExecutor(**common, workers=workers, skip_completed=False, **cfg.executor_options)


@contextlib.contextmanager
def quiet_stderr(path: Path):
    """datatrove logs every task of every worker process to stderr; send that (file descriptor 2,
    which the workers inherit) to a file next to its per-task logs, and keep the terminal for
    lmforge's summary."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "w") as console:
        os.dup2(console.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


class CurateResult(TypedDict):
    """What `curate` did (the manifest's `stages.curate`): read = kept + sum(dropped)."""

    read: int
    kept: int
    dropped: dict[str, int]  # reason -> documents
    languages_kept: dict[str, int]
    pii_redacted: dict[str, int]  # kind (email, phone, ip) -> redactions
    data: str  # the kept documents, <data>/<lang>/


class CurateSubmitted(TypedDict):
    """`executor = "slurm"`: the jobs are queued; `--report-only` accounts for them later."""

    submitted: str
    logs: str
    next: str


def run_curate_stage(
    cfg: CurateConfig, run_dir: str | Path, report_only: bool = False
) -> CurateResult | CurateSubmitted:
    """Curate `cfg.inputs` into `<out>/data/<language>/`; returns the accounting."""
    started = time.time()
    run_dir = Path(run_dir)
    out = Path(cfg.out) if cfg.out else run_dir / "curate"
    tasks = cfg.tasks or cfg.workers
    dedup = dedup_phases(cfg, out, tasks)
    phases = [out / "logs" / "filter"] + [out / "logs" / name for name, _, _ in dedup]
    if not report_only:
        if not cfg.inputs:
            raise ConfigError("curate.inputs: give at least one input file, folder or hf:DATASET")
        if cfg.preset == "code" and cfg.minhash.enabled and cfg.minhash.multistage:
            raise ConfigError(
                'curate.minhash.multistage: datatrove\'s MinHash stages compare words, not code tokens; with preset = "code" use the in-memory path'
            )
        if cfg.preset == "text":
            check_thresholds(cfg)
        if cfg.minhash.multistage and cfg.minhash.verify_threshold is not None:
            raise ConfigError(
                "curate.minhash.verify_threshold: exact-Jaccard verification exists only in the "
                "in-memory path (multistage = false)"
            )
        for part in ("data", "dropped", "filtered", "logs", "minhash", "stats"):  # a rerun starts clean
            shutil.rmtree(out / part, ignore_errors=True)
        (out / "ignored_files.txt").unlink(missing_ok=True)
        (out / "logs").mkdir(parents=True, exist_ok=True)
        quality_model = None
        if cfg.quality_classifier:
            qc = cfg.quality_classifier
            quality_model = (
                Path(qc.model)
                if qc.model
                else train_quality_classifier(qc.positive, qc.negative, out / "quality_classifier.npz")
            )
            if not quality_model.exists():
                raise ConfigError(f"curate.quality_classifier.model: {quality_model}: no such file")
        last = make_executor(cfg, filter_pipeline(cfg, out, quality_model), phases[0], tasks, cfg.workers)
        for (name, pipeline, n), logs in zip(dedup, phases[1:]):
            last = make_executor(cfg, pipeline, logs, n, min(n, cfg.workers), depends=last)
        with quiet_stderr(out / "logs" / "console.log"), children_die_with_us():
            last.run()  # runs (or submits) every phase before it first
        if cfg.executor == "slurm":
            return {
                "submitted": "slurm",
                "logs": str(out / "logs"),
                "next": "when the jobs finish: lmforge curate RECIPE --report-only",
            }
    accounting = account(phases, out / "stats")
    atomic_write_text(out / "accounting.json", json.dumps(accounting, indent=2))
    if not accounting["balanced"]:
        raise RuntimeError(
            f"curate: accounting does not balance: read {accounting['read']} != kept "
            f"{accounting['kept']} + dropped {sum(accounting['dropped'].values())}"
        )
    summary = {k: accounting[k] for k in ("read", "kept", "dropped", "languages_kept", "pii_redacted")}
    summary["data"] = str(out / "data")
    write_curate_report(run_dir, out, accounting)
    broken = truncated_inputs(out / "dropped" / "bad_input")
    if broken:
        more = f" (and {len(broken) - 1} more files)" if len(broken) > 1 else ""
        raise DataError(
            f"{broken[0]}{more}: the input breaks off there; every record before the break is "
            f"accounted for ({accounting['read']:,} read) in {out / 'accounting.json'}"
        )
    record_stage(
        run_dir, "curate", cfg.model_dump(), [i for i in cfg.inputs if not i.startswith("hf:")], None, started, summary
    )
    return summary
