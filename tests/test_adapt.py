"""Language adaptation: RoPE scaling, tokenizer extension, base loading, and the LeoLM direction."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaForCausalLM

from lmforge.adapt import apply_rope_scaling, extend_tokenizer, init_new_embeddings
from lmforge.tokenizer import fertility, train_bpe
from tests.conftest import CORPUS, lmforge
from tests.tiny_models import tiny_llama

EN, DE = CORPUS / "en", CORPUS / "de"


def rescaled(model, factor: float, kind: str = "linear") -> LlamaForCausalLM:
    config = model.config.__class__.from_dict(model.config.to_dict())
    apply_rope_scaling(config, kind, factor)
    other = LlamaForCausalLM(config).eval()
    other.load_state_dict(model.state_dict())
    return other


def test_linear_rope_scaling_survives_save_load_and_interpolates_positions(tmp_path):
    base = tiny_llama()
    scaled = rescaled(base, 2.0)
    scaled.save_pretrained(tmp_path / "scaled")
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "scaled").eval()
    assert loaded.config.rope_parameters["rope_type"] == "linear" and loaded.config.rope_parameters["factor"] == 2.0
    assert loaded.config.max_position_embeddings == 64
    x = torch.zeros(1, 1, 32)
    p = torch.arange(32)[None]
    cos_s, sin_s = loaded.model.rotary_emb(x, position_ids=2 * p)  # position 2p scaled == p unscaled
    cos_b, sin_b = base.model.rotary_emb(x, position_ids=p)
    assert torch.allclose(cos_s, cos_b, atol=1e-6) and torch.allclose(sin_s, sin_b, atol=1e-6)
    ids = torch.randint(0, 97, (1, 48))  # beyond the original 32 positions
    with torch.no_grad():
        assert not torch.allclose(loaded(ids).logits, base(ids).logits, atol=1e-4)
        assert torch.allclose(rescaled(base, 1.0)(ids).logits, base(ids).logits, atol=1e-6)  # identity scaling


@pytest.mark.parametrize("kind", ["dynamic", "yarn", "llama3"])
def test_other_rope_scalings_are_saved_as_transformers_reads_them(kind, tmp_path):
    """dynamic NTK leaves sequences within the trained 32 positions exactly as they were and changes
    longer ones; YaRN and Llama 3's change every sequence (they rescale low frequencies everywhere)."""
    from lmforge.errors import ConfigError

    base = tiny_llama()
    rescaled(base, 4.0, kind).save_pretrained(tmp_path / kind)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / kind).eval()
    params = loaded.config.rope_parameters
    assert params["rope_type"] == kind and params["factor"] == 4.0
    assert loaded.config.max_position_embeddings == (32 if kind == "dynamic" else 128)
    if kind != "dynamic":
        assert params["original_max_position_embeddings"] == 32
    short, long = torch.randint(0, 97, (1, 24)), torch.randint(0, 97, (1, 96))
    with torch.no_grad():
        assert torch.allclose(loaded(short).logits, base(short).logits, atol=1e-6) == (kind == "dynamic")
        assert not torch.allclose(loaded(long).logits, base(long).logits, atol=1e-4)
    with pytest.raises(ConfigError, match="'ntk' is not one of linear, dynamic, yarn, llama3"):
        apply_rope_scaling(base.config, "ntk", 2.0)


@pytest.fixture(scope="module")
def en_tokenizer():
    return train_bpe([EN / "train.jsonl"], 400)


def assert_extended_by_120(old, new, added: list[str], sample: str, de_ratio: float) -> None:
    """120 tokens added after every old id, which keeps its number; held-out German and English and
    `sample` round-trip exactly; German takes fewer than `de_ratio` x its tokens per word before,
    English keeps (almost) its segmentation."""
    assert len(added) == 120 and len(new) == len(old) + 120
    assert all(new.convert_tokens_to_ids(t) == i for t, i in old.get_vocab().items())
    texts = [
        json.loads(line)["text"]
        for path in (DE / "heldout.jsonl", EN / "heldout.jsonl")
        for line in path.read_text(encoding="utf-8").splitlines()[:30]
    ]
    for text in texts + [sample]:
        assert new.decode(new.encode(text, add_special_tokens=False)) == text
    de_before, de_after = (fertility(t, [DE / "heldout.jsonl"])["tokens_per_word"] for t in (old, new))
    en_before, en_after = (fertility(t, [EN / "heldout.jsonl"])["tokens_per_word"] for t in (old, new))
    assert de_after < de_ratio * de_before, (de_before, de_after)
    assert en_after <= en_before * 1.01


def test_tokenizer_extension_round_trips_keeps_old_ids_and_lowers_german_fertility(en_tokenizer):
    new, added = extend_tokenizer(en_tokenizer, [DE / "train.jsonl"], 120)
    assert_extended_by_120(en_tokenizer, new, added, "Grüße aus Köln! Ärger, Öl, Übermut — 42 €", de_ratio=0.85)


@pytest.mark.parametrize("layout", ["metaspace", "llama2"])
def test_sentencepiece_style_tokenizer_extension(layout):
    """A Llama-2-style tokenizer trained on English only spells umlauts in bytes; extended from
    German text it gains those characters and German pieces, keeps every old id, round-trips every
    text exactly, and German takes fewer tokens per word while English keeps its segmentation."""
    from tests.tiny_models import sentencepiece_style_tokenizer

    english = [json.loads(line)["text"] for line in (EN / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    old = sentencepiece_style_tokenizer(english, layout=layout)
    assert "ä" not in old.get_vocab() and "<0xC3>" in old.tokenize("Mädchen")
    new, added = extend_tokenizer(old, [DE / "train.jsonl"], 120)
    assert {"ä", "ü", "ß"} <= set(added) and any(t.startswith("▁") and len(t) > 3 for t in added)
    assert_extended_by_120(old, new, added, "Grüße aus Köln! Ärger, Öl, Übermut — 42 € 🙂", de_ratio=0.8)
    model = tiny_llama(len(old), tie=False)
    emb = model.get_input_embeddings().weight.detach().clone()
    init_new_embeddings(model, old, new, added)
    umlaut = new.convert_tokens_to_ids("ä")  # the mean of its two byte tokens' rows
    pieces = old.convert_tokens_to_ids(["<0xC3>", "<0xA4>"])
    assert torch.allclose(model.get_input_embeddings().weight[umlaut], emb[pieces].mean(0))


@pytest.mark.parametrize("tie", [True, False])
def test_new_embeddings_are_the_mean_of_their_old_pieces(en_tokenizer, tie):
    old = en_tokenizer
    new, added = extend_tokenizer(old, [DE / "train.jsonl"], 40)
    model = tiny_llama(len(old), tie=tie)
    emb_in = model.get_input_embeddings().weight.detach().clone()
    emb_out = model.get_output_embeddings().weight.detach().clone()
    init_new_embeddings(model, old, new, added)
    assert model.get_input_embeddings().weight.shape[0] == len(new) == model.config.vocab_size
    assert torch.equal(model.get_input_embeddings().weight[: len(old)], emb_in)
    for token in added:
        pieces = old.encode(new.convert_tokens_to_string([token]), add_special_tokens=False)
        row = new.convert_tokens_to_ids(token)
        assert torch.allclose(model.get_input_embeddings().weight[row], emb_in[pieces].mean(0), atol=1e-6)
        assert torch.allclose(model.get_output_embeddings().weight[row], emb_out[pieces].mean(0), atol=1e-6)


RECIPE = """
[run]
name = "leo"
seed = 5
stages = ["tokenizer", "tokenize", "pretrain", "adapt"]
[tokenizer]
inputs = ["{en}/train.jsonl"]
vocab_size = 512
[tokenize]
train = ["{en}/train.jsonl"]
[model]
hidden_size = 64
num_layers = 2
num_heads = 4
[train]
seq_len = 64
micro_batch_size = 8
max_steps = 120
lr = 3e-3
warmup_steps = 10
checkpoint_every = 120
log_every = 20
threads = 2
[adapt]
sources = {{ de = ["{de}/train.jsonl"], en = ["{en}/train.jsonl"] }}
new_tokens = 64
heldout = {{ en = "{en}/heldout.jsonl", de = "{de}/heldout.jsonl" }}
target_language = "de"
source_language = "en"
rope_scaling_factor = 2.0
rope_scaling = "yarn"
passkey_trials = 2
[[adapt.phases]]
name = "german"
mix = {{ de = {de_weight}, en = {en_weight} }}
tokens = 50000
[[adapt.phases]]
name = "long"
mix = {{ de = {de_weight}, en = {en_weight} }}
seq_len = 128
lr = 1e-3
tokens = 4096
"""


@pytest.mark.slow
def test_adaptation_gains_german_and_replay_limits_english_forgetting(tmp_path):
    """The LeoLM picture on the shipped data with a fixed seed: German bits per byte fall; with 25%
    English replay, English bits per byte rise less than with none; the context doubles by YaRN
    and passkey retrieval is measured at the old and the new length."""
    after = {}
    for name, de_w, en_w in (("no_replay", 1.0, 0.0), ("replay", 0.75, 0.25)):
        recipe = tmp_path / f"{name}.toml"
        recipe.write_text(RECIPE.format(en=EN, de=DE, de_weight=de_w, en_weight=en_w))
        run = tmp_path / "runs" / name
        lmforge("run", str(recipe), "--run-dir", str(run))
        s = json.loads((run / "manifest.json").read_text())["stages"]["adapt"]
        assert s["after"]["bits_per_byte"]["de"] < 0.8 * s["before"]["bits_per_byte"]["de"]
        after[name] = s
        assert (run / "adapted" / "model.safetensors").exists() and "## Adapt" in (run / "report.md").read_text()
        config = json.loads((run / "adapted" / "config.json").read_text())
        assert config["rope_parameters"]["rope_type"] == "yarn" and config["max_position_embeddings"] == 128
        assert set(s["before"]["passkey"]) == set(s["after"]["passkey"]) == {"64", "128"}
        assert "yarn RoPE scaling" in (run / "report.md").read_text()
    en = {k: v["after"]["bits_per_byte"]["en"] - v["before"]["bits_per_byte"]["en"] for k, v in after.items()}
    assert en["replay"] < en["no_replay"], en
    phases = after["replay"]["phases"]
    assert [(p["name"], p["seq_len"], p["steps"], p["lr"]) for p in phases] == [
        ("german", 64, 98, 3e-3),
        ("long", 128, 4, 1e-3),
    ]
    assert after["replay"]["phases"][0]["samples_per_source"]["en"] > 0
    assert "en" not in after["no_replay"]["phases"][0]["samples_per_source"]


def test_adapt_config_errors_are_one_line(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        '[adapt]\nsources = { de = ["x.jsonl"] }\n[[adapt.phases]]\nname = "p"\nmix = { fr = 1.0 }\ntokens = 1000\n'
    )
    bad = lmforge("adapt", str(recipe), "--run-dir", str(tmp_path / "run"), check=False)
    assert bad.returncode == 2 and "phase 'p' mixes unknown source(s) fr" in bad.stderr
    assert bad.stderr.strip().count("\n") == 0
    recipe.write_text('[adapt]\nsources = { de = ["x.jsonl"] }\n')
    bad = lmforge("adapt", str(recipe), "--run-dir", str(tmp_path / "run"), check=False)
    assert bad.returncode == 2 and "give [adapt.sources] and at least one [[adapt.phases]]" in bad.stderr


def test_passkey_prompt_has_the_requested_length_and_hides_the_key_at_the_depth(en_tokenizer):
    from lmforge.adapt.context import NEEDLE, QUESTION, passkey_prompt

    needle = en_tokenizer.encode(NEEDLE["en"].format(key=48213), add_special_tokens=False)
    question = en_tokenizer.encode(QUESTION["en"], add_special_tokens=False)
    for length, depth in ((128, 0.0), (256, 0.5), (512, 0.9)):
        ids = passkey_prompt(en_tokenizer, length, 48213, depth)
        assert len(ids) == length and ids[-len(question) :] == question
        at = next(i for i in range(length) if ids[i : i + len(needle)] == needle)
        assert abs(at / (length - len(needle) - len(question)) - depth) < 0.02


def test_embedding_lr_scale_gives_embeddings_their_own_learning_rate():
    from lmforge.train.optim import make_optimizer

    model = tiny_llama()
    opt = make_optimizer(model, lr=1e-3, weight_decay=0.1, embedding_lr_scale=0.1)
    scaled = [g for g in opt.param_groups if g.get("lr_scale") == 0.1]
    assert len(scaled) == 1 and scaled[0]["params"] == [model.get_input_embeddings().weight]
    n_params = sum(len(g["params"]) for g in opt.param_groups)
    assert n_params == len(list(model.parameters()))  # every parameter in exactly one group


@pytest.mark.slow
def test_a_killed_adapt_resumes_inside_a_phase_to_the_same_weights(tmp_path):
    """kill -9 `lmforge adapt` after a checkpoint of its first phase; the rerun continues the phase
    (and then the next) and ends with the adapted weights of a run that was never interrupted."""
    import shutil
    import signal
    import subprocess
    import sys
    import time

    from safetensors.torch import load_file

    from tests.conftest import ROOT

    recipe = tmp_path / "leo.toml"
    recipe.write_text(RECIPE.format(en=EN, de=DE, de_weight=0.75, en_weight=0.25))
    every = ["--set", "train.checkpoint_every=20"]
    lmforge(
        "run",
        str(recipe),
        *every,
        "--set",
        "run.stages=['tokenizer','tokenize','pretrain']",
        "--run-dir",
        str(tmp_path / "a"),
    )
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    lmforge("adapt", str(recipe), *every, "--run-dir", str(tmp_path / "a"))
    args = [sys.executable, "-m", "lmforge", "adapt", str(recipe), *every, "--run-dir", str(tmp_path / "b")]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    latest = tmp_path / "b" / "adapt" / "german" / "checkpoints" / "latest"
    end = time.time() + 300
    while time.time() < end and not (latest.is_file() and latest.read_text().strip() >= "step-000040"):
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "b" / "adapted").exists()
    out = lmforge("adapt", str(recipe), *every, "--run-dir", str(tmp_path / "b")).stdout
    assert "resuming from step-0000" in out
    a = load_file(tmp_path / "a" / "adapted" / "model.safetensors")
    b = load_file(tmp_path / "b" / "adapted" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bit-identical on CPU
