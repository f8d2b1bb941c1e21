"""One model loader for every verb: folder, run, adapter, GGUF and Hub id resolve the same way."""

import json
import shutil

import pytest
import torch

from lmforge.errors import CheckpointError
from lmforge.models import load_model_and_tokenizer, resolve_model_dir
from tests.conftest import CORPUS, ROOT, lmforge, tiny_recipe
from tests.tiny_models import write_tiny_gguf

TASK = ROOT / "examples" / "tasks" / "hellaswag_sample_de.toml"
OFFLINE = {"HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def forms(tiny_data, tmp_path_factory) -> dict:
    """The same tiny model as a folder, a run, a GGUF file, and a LoRA adapter folder on the folder."""
    from peft import LoraConfig, get_peft_model

    from lmforge.recipe import load_recipe
    from lmforge.train import pretrain

    tmp = tmp_path_factory.mktemp("forms")
    r = load_recipe(tiny_recipe(tmp, tiny_data), ["train.max_steps=4"])
    pretrain(r.model, r.train, tmp / "run", r.run.seed)
    folder = tmp / "folder"
    shutil.copytree(resolve_model_dir(tmp / "run"), folder, ignore=shutil.ignore_patterns("resume_state.pt"))
    model, tok = load_model_and_tokenizer(folder)
    write_tiny_gguf(tmp / "tiny.gguf", model, tok)
    lora = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(tmp / "adapter")
    tok.save_pretrained(tmp / "adapter")
    return {"folder": folder, "run": tmp / "run", "gguf": tmp / "tiny.gguf", "adapter": tmp / "adapter"}


def logits(ref, ids):
    model, _ = load_model_and_tokenizer(ref)
    with torch.no_grad():
        return model(ids).logits


def test_each_form_loads_and_the_gguf_gives_the_folders_logits(forms):
    _, tok = load_model_and_tokenizer(forms["folder"])
    ids = torch.tensor([tok.encode("Am Morgen backt der Bäcker Brot.", add_special_tokens=False)])
    ref = logits(forms["folder"], ids)
    assert torch.allclose(logits(forms["gguf"], ids), ref, atol=1e-5)
    assert torch.allclose(logits(forms["run"], ids), ref)
    adapted = logits(forms["adapter"], ids)  # on its base, with non-zero LoRA weights: different logits
    assert adapted.shape == ref.shape and not torch.allclose(adapted, ref, atol=1e-4)
    assert resolve_model_dir(forms["adapter"]) == forms["adapter"]


def test_gguf_is_converted_once_and_cached_as_safetensors(forms):
    cache = [p for p in forms["gguf"].parent.iterdir() if p.name.startswith(".tiny.lmforge-")]
    assert len(cache) == 1 and (cache[0] / "model.safetensors").exists()
    stamp = (cache[0] / "model.safetensors").stat().st_mtime_ns
    assert resolve_model_dir(forms["gguf"]) == cache[0]
    assert (cache[0] / "model.safetensors").stat().st_mtime_ns == stamp


def test_reference_errors_are_one_line(forms, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        CheckpointError,
        match="HuggingFaceTB/SmolLM2-135M: not a local model and not downloadable from the Hugging Face Hub",
    ):
        resolve_model_dir("HuggingFaceTB/SmolLM2-135M")
    with pytest.raises(CheckpointError, match="GGUF file not found"):
        resolve_model_dir(tmp_path / "missing.gguf")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not a model folder"):
        resolve_model_dir(tmp_path / "empty")
    (tmp_path / "bad.gguf").write_bytes(b"not a gguf file at all")
    with pytest.raises(CheckpointError, match="bad.gguf"):
        resolve_model_dir(tmp_path / "bad.gguf")


@pytest.mark.parametrize("form", ["folder", "run", "adapter", "gguf", "hub"])
def test_generate_chat_and_eval_take_every_form(forms, form, tmp_path):
    ref = "HuggingFaceTB/SmolLM2-135M" if form == "hub" else str(forms[form])
    verbs = [
        ("generate", ref, "-p", "Am Morgen", "--temperature", "0", "--max-new-tokens", "4"),
        ("chat", ref, "--prompt", "Hallo", "--temperature", "0", "--max-new-tokens", "4"),
        ("eval", ref, "-t", str(TASK), "--limit", "4", "--baseline", ref, "--run-dir", str(tmp_path / "e")),
    ]
    for args in verbs:
        proc = lmforge(*args, env=OFFLINE, check=form != "hub")
        if form == "hub":
            assert proc.returncode == 2 and "not downloadable from the Hugging Face Hub" in proc.stderr
            assert len(proc.stderr.strip().splitlines()) == 1
    if form != "hub":
        results = json.loads((tmp_path / "e" / "eval" / "results.json").read_text())
        assert results["tasks"][0]["task"] == results["baseline"]["tasks"][0]["task"]


def test_recipe_keys_take_a_gguf(forms, tiny_data, tmp_path):
    """sft.model, adapt.base and train.init_from resolve through the same loader as the verbs."""
    from lmforge.adapt import run_adapt_stage
    from lmforge.recipe import AdaptConfig, ModelConfig, PhaseConfig, SftConfig, SftDataset, TrainConfig
    from lmforge.sft.stage import run_sft_stage
    from lmforge.train import pretrain

    gguf = str(forms["gguf"])
    s = run_sft_stage(
        SftConfig(
            model=gguf,
            method="lora",
            epochs=0.05,
            batch_size=8,
            max_new_tokens=2,
            too_long="truncate",
            sample_prompts=[],
            datasets=[SftDataset(path=str(ROOT / "examples" / "instructions" / "chat_de_heldout.jsonl"))],
        ),
        tmp_path / "sft",
        seed=0,
    )
    assert s["base"] == str(resolve_model_dir(gguf)) and (tmp_path / "sft" / "chat" / "config.json").exists()
    a = run_adapt_stage(
        AdaptConfig(
            base=gguf,
            sources={"de": [str(CORPUS / "de" / "train.jsonl")]},
            phases=[PhaseConfig(name="de", mix={"de": 1.0}, tokens=2 * 4 * 32)],
            heldout={"de": str(CORPUS / "de" / "heldout.jsonl")},
        ),
        TrainConfig(seq_len=32, micro_batch_size=4, threads=1),
        tmp_path / "adapt",
        seed=0,
    )
    assert a["phases"][0]["steps"] == 2 and a["base"]["source"] == gguf
    p = pretrain(
        ModelConfig(),
        TrainConfig(
            init_from=gguf,
            data=str(tiny_data / "tokens" / "train"),
            seq_len=32,
            micro_batch_size=4,
            max_steps=2,
            threads=1,
        ),
        tmp_path / "pre",
        seed=0,
    )
    assert p["steps"] == 2
