import gzip
import json

import numpy as np
import pytest

from lmforge.data import PackedTokens, ShardWriter, iter_documents, read_meta
from lmforge.data.packed import token_dtype
from lmforge.errors import DataError
from tests.conftest import write_jsonl


def test_jsonl_gz_parquet_and_text_are_read_in_order(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_jsonl(tmp_path / "a.jsonl", [{"text": "one"}, {"text": "two"}])
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as f:
        f.write(json.dumps({"text": "three"}) + "\n")
    pq.write_table(pa.table({"text": ["four", "five"]}), tmp_path / "c.parquet")
    (tmp_path / "d.txt").write_text("six")
    docs = list(iter_documents([tmp_path]))
    assert [t for t, _ in docs] == ["one", "two", "three", "four", "five", "six"]
    assert docs[1][1].endswith("a.jsonl:2")


def test_malformed_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\n{"text": broken\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:2: malformed JSON"):
        list(iter_documents([path]))


def test_missing_field_and_missing_file(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"text": "a"}, {"body": "b"}])
    with pytest.raises(DataError, match=r"x\.jsonl:2: missing field 'text'"):
        list(iter_documents([path]))
    with pytest.raises(DataError, match="no such file"):
        list(iter_documents([tmp_path / "none.jsonl"]))


def test_undecodable_text_is_an_error(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Straße".encode("latin-1"))
    with pytest.raises(DataError, match="not valid UTF-8"):
        list(iter_documents([path]))


def test_dtype_follows_vocab_size():
    assert token_dtype(50_000) == np.uint16 and token_dtype(65_536) == np.uint16
    assert token_dtype(65_537) == np.uint32


def test_packed_shards_keep_documents_and_boundaries(tmp_path):
    docs = [list(range(1, 1 + n)) for n in (5, 3, 9, 4, 7)]
    w = ShardWriter(tmp_path, vocab_size=100, eos_id=0, shard_tokens=12)
    for d in docs:
        w.add(d)
    meta = w.close()
    assert meta["docs"] == 5 and meta["tokens"] == sum(len(d) + 1 for d in docs)
    assert len(meta["shards"]) > 1 and read_meta(tmp_path) == meta
    # reassemble documents from shards and their start offsets
    rebuilt = []
    for s in meta["shards"]:
        toks = np.fromfile(tmp_path / f"{s['name']}.bin", dtype=np.uint16)
        starts = list(np.load(tmp_path / f"{s['name']}.docs.npy")) + [len(toks)]
        rebuilt += [toks[a:b].tolist() for a, b in zip(starts, starts[1:])]
    assert rebuilt == [d + [0] for d in docs]


def test_windows_are_shifted_pairs_within_a_shard(tmp_path):
    w = ShardWriter(tmp_path, vocab_size=1000, eos_id=999)
    w.add(list(range(100)))
    w.close()
    data = PackedTokens(tmp_path, seq_len=10)
    assert len(data) == 10  # 101 tokens -> (101 - 1) // 10 windows
    assert data.window(3).tolist() == list(range(30, 41))
    with pytest.raises(DataError, match="fewer than one window"):
        PackedTokens(tmp_path, seq_len=200)
