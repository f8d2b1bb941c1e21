"""`curate.preset = "code"`: the regression set in examples/code (every file kept or dropped for the
reason expected.json names, secrets redacted, the copy with other comments and layout removed as a
duplicate), The Stack's parquet layout with the licence filter, and each rule on its own."""

import gzip
import json

import pytest

from lmforge.curate import run_curate_stage
from lmforge.curate.code import code_tokens, language_of, licence_in, quality_problem, redact_secrets
from lmforge.errors import ConfigError
from lmforge.recipe import CurateConfig
from tests.conftest import ROOT

CODE = ROOT / "examples" / "code"


def fates(out) -> dict[str, str]:
    """path -> "kept" or the drop reason, from the kept shards and the dropped side files."""
    found = {}
    for path in sorted((out / "data").rglob("*.jsonl.gz")) + sorted((out / "dropped").rglob("*.jsonl.gz")):
        with gzip.open(path, "rt") as f:
            for line in f:
                doc = json.loads(line)
                found[doc["id"]] = doc["metadata"].get("filter_reason") or "kept"
    return found


def kept_docs(out) -> dict[str, dict]:
    docs = {}
    for path in (out / "data").rglob("*.jsonl.gz"):
        with gzip.open(path, "rt") as f:
            for line in f:
                doc = json.loads(line)
                docs[doc["id"]] = doc
    return docs


def test_the_regression_set_is_decided_file_by_file(tmp_path):
    expected = json.loads((CODE / "expected.json").read_text())
    cfg = CurateConfig(inputs=[str(CODE)], preset="code", workers=1, pii=False)
    s = run_curate_stage(cfg, tmp_path / "run")
    got = fates(tmp_path / "run" / "curate")
    got.pop("expected.json")  # the answer sheet itself: a small JSON config file, kept
    want = {p: "kept" for p in expected["kept"]} | expected["dropped"]
    false_drops = sorted(p for p in expected["kept"] if got.get(p) != "kept")
    false_keeps = sorted(p for p in expected["dropped"] if got.get(p) == "kept")
    assert not false_drops and not false_keeps, (false_drops, false_keeps)
    assert got == want
    assert s["read"] == len(want) + 1 == s["kept"] + sum(s["dropped"].values())  # accounted for
    docs = kept_docs(tmp_path / "run" / "curate")
    assert docs["tools/retry/retry.go"]["metadata"]["language"] == "go"
    assert (tmp_path / "run" / "curate" / "data" / "rust").is_dir()  # routed by programming language
    assert docs["scripts/deploy"]["metadata"]["language"] == "shell"  # by its shebang
    client = docs["src/textstats/client.py"]["text"]
    assert 'API_KEY = "<SECRET>"' in client and "tk_live" not in client
    key = docs["scripts/ssh_setup.sh"]["text"]
    assert "<SECRET>" in key and "b3BlbnNzaC1rZXkt" not in key
    assert s["pii_redacted"] == {"secret_api_key": 1, "secret_private_key": 1}
    report = (tmp_path / "run" / "report.md").read_text()
    assert "average line length" in report and "lock file" in report


def test_the_stack_layout_with_a_licence_allow_list(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    text = {name: (CODE / name).read_text() for name in ("src/textstats/counter.py", "web/src/cart.js", "crates/ringbuf/src/lib.rs", "src/textstats/client.py")}  # fmt: skip
    rows = [
        {"content": text["src/textstats/counter.py"], "path": "a/counter.py", "lang": "Python", "license": "MIT"},
        {"content": text["web/src/cart.js"], "path": "b/cart.js", "lang": "JavaScript", "license": "GPL-3.0"},
        {"content": text["crates/ringbuf/src/lib.rs"], "path": "c/lib.rs", "lang": "Rust", "license": None},
        {"content": "#!/usr/bin/env python3\n" + text["src/textstats/client.py"], "path": "d/tool", "lang": None, "license": "Apache-2.0"},
    ]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "stack.parquet")
    cfg = CurateConfig(
        inputs=[str(tmp_path / "stack.parquet")],
        preset="code",
        text_field="content",
        workers=1,
        code={"licenses": ["MIT", "Apache-2.0"]},
    )
    s = run_curate_stage(cfg, tmp_path / "run")
    assert s["dropped"] == {"licence not allowed": 1, "no licence found": 1} and s["kept"] == 2, s
    assert s["languages_kept"] == {"python": 2}  # the extensionless file by its shebang


def test_the_rules_one_by_one():
    assert language_of("lib/x.RS", "fn main() {}") == ("rust", None)
    assert language_of("Cargo.lock", "") == (None, "lock file")
    assert language_of("tool", "#!/usr/bin/python3\nprint(1)\n") == ("python", None)
    assert language_of("tool", "#!/bin/sh\necho hi\n") == ("shell", None)
    assert language_of("notes", "just words") == (None, "not a source file")
    assert language_of("notes", "just words", declared="Python") == ("python", None)
    assert language_of("tiny.json", "{}") == (None, "data file")  # config files of 50-5,000 characters only
    ok = "def f(x):\n    return x + 1\n" * 3
    assert quality_problem("f.py", ok, 10**6, 100, 1000, 0.25) is None
    assert quality_problem("f.py", ok, 10, 100, 1000, 0.25) == "file too large"
    assert (
        quality_problem("f.py", "# Code generated by protoc. DO NOT EDIT.\n" + ok, 10**6, 100, 1000, 0.25)
        == "auto-generated"
    )
    assert quality_problem("f.py", "x = [" + "1, " * 400 + "]\n", 10**6, 100, 1000, 0.25) == "maximum line length"
    assert quality_problem("f.py", "#" + "=-" * 30 + "\n", 10**6, 100, 1000, 0.25) == "alphanumeric fraction"
    assert licence_in("// SPDX-License-Identifier: BSD-3-Clause\nint x;") == "BSD-3-Clause"
    assert licence_in((CODE / "LICENSE").read_text()) == "MIT"
    text, counts = redact_secrets('token = "ghp_' + "a" * 36 + '"\nAWS = "AKIAABCDEFGHIJKLMNOP"\nname = "short"\n')
    assert counts == {"aws_key": 1, "github_token": 1} and text.count("<SECRET>") == 2 and '"short"' in text
    # layout and comments do not tell two copies apart; operators do
    assert code_tokens("a = b + c  # sum\n") == code_tokens("a=b+c")
    assert code_tokens("a = b + c") != code_tokens("a = b - c")


def test_code_with_multistage_minhash_is_one_line(tmp_path):
    cfg = CurateConfig(inputs=[str(CODE)], preset="code", minhash={"multistage": True})
    with pytest.raises(ConfigError, match="curate.minhash.multistage: datatrove's MinHash stages compare words"):
        run_curate_stage(cfg, tmp_path / "run")
