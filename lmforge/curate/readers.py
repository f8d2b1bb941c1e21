"""Readers that account for every input record, built on datatrove's reader classes.

datatrove's readers log and skip a malformed JSONL line, skip a record without text, and stop a
file at the first undecodable byte; none of that reaches a count a user would see. These readers
turn each such record into a *bad record* instead: an empty Document whose metadata names the
problem and its place ("data.jsonl:17"). `RejectBadInput`, the first step after the readers, drops
bad records under their reason ("malformed", "undecodable", "empty", "truncated"), so they appear
in the run's accounting and in the dropped side files like any filtered document. A compressed
file cut short (or corrupt) keeps the records read before the break and adds one "truncated"
record at the line where it broke; the stage then fails naming the file (`truncated_inputs`).

Formats: JSONL (plain or compressed, one document per line, `text` field), Parquet, a folder of
.txt files (one document per file), WARC (HTML responses, text extracted with trafilatura) and
Hugging Face datasets (a Hub name streamed, or a folder written by `save_to_disk`).
"""

import gzip
import json
import lzma
import zlib
from contextlib import nullcontext
from pathlib import Path

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.readers import HuggingFaceDatasetReader, ParquetReader
from datatrove.pipeline.readers.base import BaseDiskReader

from lmforge.curate.drop import drop


def bad_record(reason: str, where: str, detail: str) -> Document:
    return Document(text="", id=where, metadata={"bad_input": reason, "source": where, "detail": detail})


def _document_or_bad(reader, parent_method, data: dict, source: str, index: int | str) -> Document:
    """The parent reader's document, or a bad record where it would have skipped silently."""
    text = data.get(reader.text_key)
    where = f"{source}:{index + 1 if isinstance(index, int) else index}"  # 1-based lines; datasets give ids
    if text is not None and not isinstance(text, str):
        return bad_record("malformed", where, f"{reader.text_key!r} is {type(text).__name__}, not a string")
    doc = parent_method(data, source, index)
    if doc is None or not doc.text.strip():
        return bad_record("empty", where, f"no text in {reader.text_key!r}")
    doc.metadata["source"] = where
    return doc


class JsonlReader(BaseDiskReader):
    """One JSON object per line; reads bytes and decodes each line itself so that one bad byte or
    one bad line costs one record, not the rest of the file."""

    name = "🐿 JSONL (accounted)"

    def read_file(self, filepath: str) -> DocumentsPipeline:
        with self.data_folder.open(filepath, "rb", compression="infer") as f:
            for index, raw in _lines_until_break(f, filepath):
                if raw is None:
                    return
                if isinstance(raw, Document):
                    yield raw
                    continue
                if not raw.strip():
                    continue  # a blank line (e.g. a trailing newline) is not a record
                where = f"{filepath}:{index + 1}"
                try:
                    data = json.loads(raw.decode("utf-8"))
                except UnicodeDecodeError as e:
                    yield bad_record("undecodable", where, str(e))
                    continue
                except json.JSONDecodeError as e:
                    yield bad_record("malformed", where, f"invalid JSON: {e}")
                    continue
                if not isinstance(data, dict):
                    yield bad_record("malformed", where, f"a JSON {type(data).__name__}, not an object")
                    continue
                yield _document_or_bad(self, super().get_document_from_dict, data, filepath, index)


BROKEN_STREAM = (EOFError, gzip.BadGzipFile, zlib.error, lzma.LZMAError)
CODECS = {".gz": "gzip", ".xz": "xz", ".bz2": "bzip2", ".zst": "zstd"}


def _lines_until_break(f, filepath: str):
    """(index, line) pairs; where a compressed stream breaks, a "truncated" bad record takes the
    place of the line it was reading, followed by (index, None): the file ends there."""
    lines, index = iter(f), 0
    while True:
        try:
            raw = next(lines)
        except StopIteration:
            return
        except BROKEN_STREAM as e:
            kind = "truncated" if isinstance(e, EOFError) else "corrupt"
            codec = CODECS.get(Path(filepath).suffix, "compressed")
            yield index, bad_record("truncated", f"{filepath}:{index + 1}", f"{kind} {codec}: {e}")
            yield index, None
            return
        yield index, raw
        index += 1


class AccountedParquetReader(ParquetReader):
    name = "📒 Parquet (accounted)"

    def get_document_from_dict(self, data: dict, source_file: str, id_in_file: int) -> Document:
        return _document_or_bad(self, super().get_document_from_dict, data, source_file, id_in_file)


class AccountedDatasetReader(HuggingFaceDatasetReader):
    name = "🤗 HF dataset (accounted)"

    def get_document_from_dict(self, data: dict, source_file: str, id_in_file: int) -> Document:
        return _document_or_bad(self, super().get_document_from_dict, data, source_file, id_in_file)


class PhaseOutputReader(JsonlReader):
    """What an earlier phase of the run wrote. A phase that kept nothing wrote no file: that is a
    result (every document was dropped and counted), not a missing input."""

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if not self.data_folder.isdir("") or not self.data_folder.list_files(glob_pattern=self.glob_pattern):
            yield from data or []
            return
        yield from super().run(data, rank, world_size)


def truncated_inputs(bad_input_dir: Path) -> list[str]:
    """`file:line` of every input that broke off, from the bad-input side files."""
    places = []
    for path in sorted(bad_input_dir.glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                meta = json.loads(line).get("metadata", {})
                if meta.get("bad_input") == "truncated":
                    places.append(f"{meta['source']} ({meta['detail'].split(':')[0]})")
    return places


class TextFolderReader(BaseDiskReader):
    """Each .txt file is one document, its path the id."""

    name = "📄 text files"

    def read_file(self, filepath: str) -> DocumentsPipeline:
        with self.data_folder.open(filepath, "rb") as f:
            raw = f.read()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            yield bad_record("undecodable", f"{filepath}:1", str(e))
            return
        data = {"text": text, "id": filepath}
        yield _document_or_bad(self, super().get_document_from_dict, data, filepath, 0)


class WarcReader(BaseDiskReader):
    """HTML responses of a WARC file, with the main text extracted by trafilatura. Records that are
    not HTML responses (requests, metadata, images) are not documents and are only counted in the
    step's stats; an HTML page with no extractable text is a bad record ("empty")."""

    name = "🕷 WARC (warcio + trafilatura)"

    def read_file(self, filepath: str) -> DocumentsPipeline:
        import trafilatura
        from warcio.archiveiterator import ArchiveIterator

        with self.data_folder.open(filepath, "rb") as f:
            for index, record in enumerate(ArchiveIterator(f)):
                content_type = record.http_headers.get_header("Content-Type", "") if record.http_headers else ""
                if record.rec_type != "response" or "html" not in content_type:
                    self.stat_update("warc_records_not_html")
                    continue
                where = f"{filepath}:{index + 1}"
                html = record.content_stream().read()
                text = trafilatura.extract(html, include_comments=False) or ""
                url = record.rec_headers.get_header("WARC-Target-URI")
                data = {"text": text, "id": record.rec_headers.get_header("WARC-Record-ID") or where, "url": url}
                yield _document_or_bad(self, super().get_document_from_dict, data, filepath, index)


class RejectBadInput(PipelineStep):
    """Drops the readers' bad records under their reason, as a filter would."""

    name = "🚫 bad input"
    type = "🔻 - FILTER"

    def __init__(self, exclusion_writer=None):
        super().__init__()
        self.exclusion_writer = exclusion_writer

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with self.exclusion_writer or nullcontext() as writer:
            for doc in data:
                self.stat_update("total")
                reason = doc.metadata.get("bad_input")
                if reason:
                    drop(self, doc, reason, writer, rank)
                    continue
                self.stat_update("forwarded")
                yield doc


FORMATS = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".txt": "txt",
    ".warc": "warc",
    ".arc": "warc",
}


def input_format(path: Path) -> str | None:
    """The reader for a file by its suffixes (compression suffixes ignored), or None."""
    suffixes = [s for s in path.suffixes if s not in (".gz", ".zst", ".bz2", ".xz")]
    return FORMATS.get(suffixes[-1].lower()) if suffixes else None


def is_saved_dataset(path: Path) -> bool:
    """A folder written by `datasets.Dataset.save_to_disk`."""
    return path.is_dir() and (path / "dataset_info.json").exists() and (path / "state.json").exists()
