"""Documents in (JSONL, Parquet, text) and packed token shards out, for the trainer to stream."""

from lmforge.data.packed import PackedTokens, ShardWriter, read_meta
from lmforge.data.readers import iter_documents, iter_records, resolve_inputs
from lmforge.data.tokenize import run_tokenize_stage, tokenize_files

__all__ = [
    "PackedTokens",
    "ShardWriter",
    "iter_documents",
    "iter_records",
    "read_meta",
    "resolve_inputs",
    "run_tokenize_stage",
    "tokenize_files",
]
