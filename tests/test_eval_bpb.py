"""Bits per byte: the arithmetic, full coverage of long documents, and ordering across models."""

import math

import pytest
import torch
import torch.nn.functional as F

from lmforge.eval import bits_per_byte
from lmforge.models import load_model_and_tokenizer
from tests.conftest import CORPUS, lmforge, pretrain_tiny, write_jsonl


@pytest.fixture
def trained(tiny_run):
    return pretrain_tiny(tiny_run)


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
    out = lmforge(
        "eval",
        str(trained),
        "--bpb",
        f"en={CORPUS / 'en' / 'heldout.jsonl'}",
        "--bpb",
        f"de={CORPUS / 'de' / 'heldout.jsonl'}",
        "--set",
        "eval.max_docs=5",
    ).stdout
    assert "en:" in out and "de:" in out and "bits/byte" in out
    report = (trained / "report.md").read_text()
    assert "## Eval" in report and (trained / "plots" / "eval_bits_per_byte.png").exists()
    bad = lmforge("eval", str(trained), "--bpb", "de", check=False)
    assert bad.returncode == 2 and "expected LANG=FILE" in bad.stderr


def permuted_copy(model, tok, seed: int = 0):
    """The same model behind a different tokenizer: every non-special token gets a new id and
    the embedding rows (tied with the output layer) move with it."""
    import json

    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    spec = json.loads(tok.backend_tokenizer.to_str())
    specials = {t["id"] for t in spec["added_tokens"]}
    movable = sorted(set(range(len(tok))) - specials)
    g = torch.Generator().manual_seed(seed)
    perm = list(range(len(tok)))
    for old, new in zip(movable, [movable[i] for i in torch.randperm(len(movable), generator=g).tolist()]):
        perm[old] = new
    spec["model"]["vocab"] = {piece: perm[i] for piece, i in spec["model"]["vocab"].items()}
    other = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(spec)), eos_token=tok.eos_token, pad_token=tok.pad_token
    )
    clone = type(model)(model.config).eval()
    clone.load_state_dict(model.state_dict())
    with torch.no_grad():
        clone.get_input_embeddings().weight[torch.tensor(perm)] = model.get_input_embeddings().weight
    assert model.config.tie_word_embeddings
    return clone, other


def test_bpb_is_unchanged_when_the_same_model_reads_the_same_bytes_through_another_tokenizer(trained):
    model, tok = load_model_and_tokenizer(trained)
    clone, other = permuted_copy(model, tok)
    held_out = CORPUS / "de" / "heldout.jsonl"
    text = "Am Morgen backt der Bäcker frisches Brot."
    assert tok(text).input_ids != other(text).input_ids  # really a different tokenizer
    a = bits_per_byte(model, tok, [held_out], max_docs=10)
    b = bits_per_byte(clone, other, [held_out], max_docs=10)
    assert b["bits_per_byte"] == pytest.approx(a["bits_per_byte"], rel=1e-5)
    assert b["doc_bits"] == pytest.approx(a["doc_bits"], rel=1e-5)


def test_uniform_model_bpb_follows_each_tokenizers_segmentation(tiny_data):
    """A model that gives every token probability 1/V pays log2(V) bits per token, so its bits per
    byte differ across tokenizers exactly as V and their tokens per byte say: every token and
    every byte is counted once, whatever the segmentation."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from lmforge.tokenizer.train_bpe import train_bpe

    held_out = CORPUS / "en" / "heldout.jsonl"
    scores = {}
    for name, tok in (
        ("bpe-512", AutoTokenizer.from_pretrained(tiny_data / "tokenizer")),
        ("bpe-300", train_bpe([CORPUS / "en" / "train.jsonl"], 300)),
    ):
        model = LlamaForCausalLM(
            LlamaConfig(
                vocab_size=len(tok),
                hidden_size=16,
                intermediate_size=32,
                num_hidden_layers=1,
                num_attention_heads=2,
                max_position_embeddings=64,
            )
        ).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.zero_()  # zero logits: the uniform distribution
        got = bits_per_byte(model, tok, [held_out], max_docs=5)
        assert got["bits_per_byte"] == pytest.approx(got["tokens"] * math.log2(len(tok)) / got["bytes"], rel=1e-6)
        scores[name] = got
    assert scores["bpe-300"]["bytes"] == scores["bpe-512"]["bytes"]
    assert scores["bpe-300"]["tokens"] > scores["bpe-512"]["tokens"]
    assert scores["bpe-300"]["bits_per_byte"] != pytest.approx(scores["bpe-512"]["bits_per_byte"], rel=1e-3)
