"""`lmforge plan --memory` (lmforge/plan/memory.py): the peak-memory breakdown of a training step
and the largest micro-batch per device, checked against a 135M model's measured peaks."""

import json
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from lmforge.plan.memory import GIB, Setting, Shape, breakdown, device_bytes, largest_micro_batch, shape_from_config
from lmforge.recipe import SftConfig
from tests.conftest import ROOT, lmforge
from tests.tiny_models import tiny_llama

SMOLLM2 = Shape(layers=30, hidden=576, intermediate=1536, heads=9, kv_heads=3, vocab=49152)


@pytest.mark.parametrize("tie", [True, False])
def test_parameter_counts_match_the_built_models(tie):
    """Weights and the LoRA trainable count, as transformers and peft build them."""
    from lmforge.train.tuning import attach_method

    model = tiny_llama(tie=tie, num_key_value_heads=2)
    shape = shape_from_config(model.config.to_dict())
    assert shape.params == sum(p.numel() for p in model.parameters())
    for targets in ("attention", "mlp", "all-linear"):
        lora = attach_method(
            tiny_llama(tie=tie, num_key_value_heads=2), SftConfig(lora_rank=4, lora_targets=targets), "sft"
        )
        trainable = sum(p.numel() for p in lora.parameters() if p.requires_grad)
        planned = breakdown(shape, Setting(method="lora", lora_rank=4, lora_targets=targets))["trainable_params"]
        assert planned == trainable, targets


def test_smollm2_135m_has_its_published_size():
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
        num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True,
    )  # fmt: skip
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    assert shape_from_config(config.to_dict()).params == sum(p.numel() for p in model.parameters()) == SMOLLM2.params


def test_the_settings_move_the_parts_they_should():
    full = breakdown(SMOLLM2, Setting(seq=2048, precision="fp32"))
    assert full["weights"] == full["gradients"] == 4 * SMOLLM2.params and full["optimizer"] == 8 * SMOLLM2.params
    ckpt = breakdown(SMOLLM2, Setting(seq=2048, precision="fp32", activation_checkpointing=True))
    assert ckpt["activations"] < full["activations"] / 5 and ckpt["logits"] == full["logits"]
    double = breakdown(SMOLLM2, Setting(seq=4096, precision="fp32"))
    assert double["activations"] == pytest.approx(2 * full["activations"])
    sharded = breakdown(SMOLLM2, Setting(seq=2048, precision="fp32", world=4))
    assert sharded["optimizer"] == full["optimizer"] / 4 and sharded["peak"] < full["peak"]
    lora = breakdown(SMOLLM2, Setting(seq=2048, precision="fp32", method="lora"))
    assert lora["optimizer"] < full["optimizer"] / 20
    qlora = breakdown(SMOLLM2, Setting(seq=2048, precision="bf16", method="lora", qlora=True))
    assert qlora["weights"] < lora["weights"] / 3
    eight_bit = breakdown(SMOLLM2, Setting(seq=2048, optimizer="adamw-8bit"))
    assert eight_bit["optimizer"] == full["optimizer"] / 4


def test_the_largest_micro_batch_is_the_last_that_fits():
    s = Setting(seq=2048, precision="bf16")
    for device in ("H100-80GB", "A100-40GB", "RTX-4090-24GB", "cpu:24GiB"):
        n = largest_micro_batch(SMOLLM2, s, device)
        assert n >= 1
        assert breakdown(SMOLLM2, replace(s, micro_batch=n))["peak"] <= device_bytes(device)
        assert breakdown(SMOLLM2, replace(s, micro_batch=n + 1))["peak"] > device_bytes(device)
    assert largest_micro_batch(SMOLLM2, s, "H100-80GB") > largest_micro_batch(SMOLLM2, s, "RTX-4090-24GB")
    assert device_bytes("cpu:24GiB") == 23 * GIB
    big = Shape(layers=80, hidden=8192, intermediate=28672, heads=64, kv_heads=8, vocab=128256)
    assert largest_micro_batch(big, s, "RTX-4090-24GB") == 0


def test_cli_prints_the_breakdown_from_flags_and_from_a_recipe(tmp_path):
    out = lmforge(
        "plan", "--memory", "--params", "135e6", "--layers", "30", "--hidden", "576", "--vocab", "49152",
        "--seq", "1024", "--micro-batch", "2", "--precision", "fp32", "--lora-rank", "8", "--device", "cpu:24GiB",
    ).stdout  # fmt: skip
    for part in ("weights", "gradients", "optimizer", "activations", "logits", "peak"):
        assert part in out
    assert "lora rank 8" in out and "largest micro-batch on cpu:24GiB:" in out
    folder = tmp_path / "base"
    tiny_llama().save_pretrained(folder)
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'[sft]\nmodel = "{folder}"\nmax_len = 32\nbatch_size = 4\nmethod = "full"\n')
    out = lmforge("plan", "--memory", str(recipe), "--stage", "sft", "--device", "H100-80GB").stdout
    assert "seq 32 x micro-batch 4" in out and "full" in out and "largest micro-batch on H100-80GB:" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device", "TPU-v9", "--params", "1e8", "--layers", "4", "--hidden", "256"], "unknown device 'TPU-v9'"),
        (["--params", "1e8"], "give a recipe, or --params, --layers and --hidden"),
    ],
)
def test_cli_errors_are_one_line(args, message):
    r = lmforge("plan", "--memory", *args, check=False)
    assert r.returncode != 0 and message in r.stderr + r.stdout
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_planned_peaks_are_within_a_quarter_of_measured_ones():
    """A 135M model trained through lmforge's loop at three settings (full; full with activation
    checkpointing; LoRA), each in a fresh process: resident-set growth against the plan."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "memory.py"), "--quick", "--json", "--steps", "2"],
        capture_output=True, text=True, check=True, timeout=1200,
    )  # fmt: skip
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(rows) == 3
    for r in rows:
        assert r["measured"] > 1.5 * GIB  # a real 135M training step was measured
        assert abs(r["error"]) <= 0.25, r
