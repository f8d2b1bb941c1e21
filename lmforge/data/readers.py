"""Read documents from JSONL (plain or .gz), Parquet and plain-text files.

A document is `(text, origin)` where origin is `file:line` (JSONL), `file:row` (Parquet) or the
file name (text), so that every later error can point at the input it came from. Malformed
input raises DataError naming file and line: in a training corpus a bad line is a bug in the
upstream export, and silently skipping it would hide it.
"""

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

from lmforge.errors import DataError

SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".parquet", ".txt", ".md")


def _kind(path: Path) -> str:
    name = path.name.lower()
    for s in SUFFIXES:
        if name.endswith(s):
            return s
    return ""


def resolve_inputs(inputs: list[str | Path]) -> list[Path]:
    """Expand folders to their data files (sorted, so order is reproducible); error on missing paths."""
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and _kind(f))
            if not found:
                raise DataError(f"{p}: folder has no .jsonl, .jsonl.gz, .parquet or .txt files")
            files.extend(found)
        elif p.is_file():
            if not _kind(p):
                raise DataError(f"{p}: unsupported file type (expected .jsonl, .jsonl.gz, .parquet or .txt)")
            files.append(p)
        else:
            raise DataError(f"{p}: no such file or folder")
    if not files:
        raise DataError("no input files given")
    return files


def _jsonl_records(path: Path) -> Iterator[tuple[dict, str]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}:{lineno}: malformed JSON ({e.msg})") from None
                if not isinstance(row, dict):
                    raise DataError(f"{path}:{lineno}: expected a JSON object")
                yield row, f"{path}:{lineno}"
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read ({e})") from None


def _iter_jsonl(path: Path, text_field: str) -> Iterator[tuple[str, str]]:
    for row, where in _jsonl_records(path):
        if text_field not in row:
            raise DataError(f"{where}: missing field '{text_field}'")
        text = row[text_field]
        if not isinstance(text, str):
            raise DataError(f"{where}: field '{text_field}' is not a string")
        yield text, where


def iter_records(inputs: list[str | Path]) -> Iterator[tuple[dict, str]]:
    """Yield `(record, origin)` for every row of JSONL/Parquet inputs (structured data such as
    instruction sets, where no single text field exists)."""
    for path in resolve_inputs(inputs):
        kind = _kind(path)
        if kind in (".jsonl", ".jsonl.gz", ".json"):
            yield from _jsonl_records(path)
        elif kind == ".parquet":
            import pyarrow.parquet as pq

            for row, record in enumerate(pq.read_table(path).to_pylist(), 1):
                yield record, f"{path}:{row}"
        else:
            raise DataError(f"{path}: records need JSONL or Parquet, not plain text")


def _iter_parquet(path: Path, text_field: str) -> Iterator[tuple[str, str]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several unrelated types for a bad file
        raise DataError(f"{path}: not a readable Parquet file ({e})") from None
    if text_field not in pf.schema_arrow.names:
        raise DataError(f"{path}: missing column '{text_field}'")
    row = 0
    for batch in pf.iter_batches(columns=[text_field], batch_size=4096):
        for text in batch.column(0).to_pylist():
            row += 1
            if not isinstance(text, str):
                raise DataError(f"{path}:{row}: column '{text_field}' is not a string")
            yield text, f"{path}:{row}"


def _iter_text(path: Path) -> Iterator[tuple[str, str]]:
    try:
        yield path.read_text(encoding="utf-8"), str(path)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not valid UTF-8 ({e.reason} at byte {e.start})") from None


def iter_documents(inputs: list[str | Path], text_field: str = "text") -> Iterator[tuple[str, str]]:
    """Yield `(text, origin)` for every document in the inputs, in a fixed order."""
    for path in resolve_inputs(inputs):
        kind = _kind(path)
        if kind in (".jsonl", ".jsonl.gz", ".json"):
            yield from _iter_jsonl(path, text_field)
        elif kind == ".parquet":
            yield from _iter_parquet(path, text_field)
        else:
            yield from _iter_text(path)
