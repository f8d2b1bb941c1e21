"""Bits per byte: the arithmetic, full coverage of long documents, and ordering across models."""

import math

import pytest
import torch
import torch.nn.functional as F

from lmforge.eval import bits_per_byte
from lmforge.generate import load_model_and_tokenizer
from lmforge.recipe import load_recipe
from lmforge.train import pretrain
from tests.conftest import CORPUS, lmforge, write_jsonl


@pytest.fixture
def trained(tiny_run):
    run_dir, recipe_path = tiny_run
    r = load_recipe(recipe_path, ["train.max_steps=8"])
    pretrain(r.model, r.train, run_dir, r.run.seed)
    return run_dir


def test_bpb_is_total_nll_in_bits_over_bytes(trained, tmp_path):
    model, tok = load_model_and_tokenizer(trained)
    text = "Der alte Fischer trägt einen schweren Korb zum Hafen."
    path = write_jsonl(tmp_path / "one.jsonl", [{"text": text}])
    got = bits_per_byte(model, tok, [path])
    ids = torch.tensor([[tok.eos_token_id, *tok(text, add_special_tokens=False).input_ids]])
    with torch.no_grad():
        nll = F.cross_entropy(model(ids[:, :-1]).logits[0], ids[0, 1:], reduction="sum").item()
    assert got["tokens"] == ids.shape[1] - 1 and got["bytes"] == len(text.encode())
    assert got["bits_per_byte"] == pytest.approx(nll / math.log(2) / len(text.encode()), rel=1e-5)


def test_long_documents_are_scored_in_full(trained, tmp_path):
    model, tok = load_model_and_tokenizer(trained)
    text = " ".join(["Am Morgen backt der Bäcker frisches Brot."] * 40)  # many times the 32-token context
    n = len(tok(text, add_special_tokens=False).input_ids)
    assert n > 4 * model.config.max_position_embeddings
    got = bits_per_byte(model, tok, [write_jsonl(tmp_path / "long.jsonl", [{"text": text}])], batch_size=3)
    assert got["tokens"] == n  # every token predicted exactly once


def test_trained_model_beats_its_initialisation(trained):
    held_out = CORPUS / "de" / "heldout.jsonl"
    scores = {}
    for name in ("step-000000", "step-000008"):
        model, tok = load_model_and_tokenizer(trained / "checkpoints" / name)
        scores[name] = bits_per_byte(model, tok, [held_out], max_docs=10)["bits_per_byte"]
    assert scores["step-000008"] < scores["step-000000"]


def test_eval_cli_reports_languages_side_by_side(trained):
    out = lmforge("eval", str(trained), "--bpb", f"en={CORPUS / 'en' / 'heldout.jsonl'}",
                  "--bpb", f"de={CORPUS / 'de' / 'heldout.jsonl'}", "--set", "eval.max_docs=5").stdout
    assert "en:" in out and "de:" in out and "bits/byte" in out
    report = (trained / "report.md").read_text()
    assert "## Eval" in report and (trained / "plots" / "eval_bits_per_byte.png").exists()
    bad = lmforge("eval", str(trained), "--bpb", "de", check=False)
    assert bad.returncode == 2 and "expected LANG=FILE" in bad.stderr
