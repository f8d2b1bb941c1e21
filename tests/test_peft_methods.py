"""LoRA's variants through peft, for sft and dpo alike (one tuning block): target presets, DoRA,
rsLoRA and LoRA+; each trains, and the merged model computes what the adapted one does."""

import math
import random

import pytest
import torch

from lmforge.errors import ConfigError
from lmforge.recipe import SftConfig
from lmforge.sft.train import train_sft
from lmforge.train.optim import make_optimizer
from lmforge.train.tuning import attach_method, lora_targets
from tests.tiny_models import tiny_llama


def examples(n: int = 16) -> list[tuple[list[int], list[int]]]:
    """Conversations of random tokens whose second half is the answer."""
    rng = random.Random(0)
    out = []
    for _ in range(n):
        ids = [rng.randrange(1, 90) for _ in range(rng.randrange(8, 24))]
        half = len(ids) // 2
        out.append((ids, [-100] * half + ids[half:]))
    return out


def test_target_presets_name_the_linear_layers_of_attention_mlp_or_all():
    model = tiny_llama()
    assert lora_targets(model, "attention", "sft") == ["k_proj", "o_proj", "q_proj", "v_proj"]
    assert lora_targets(model, "mlp", "sft") == ["down_proj", "gate_proj", "up_proj"]
    assert lora_targets(model, "all-linear", "sft") == sorted(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )  # never the output layer
    assert lora_targets(model, ["q_proj", "nope"], "sft") == ["q_proj"]
    with pytest.raises(ConfigError, match=r"dpo.lora_targets: none of \['qkv'\]"):
        lora_targets(model, ["qkv"], "dpo")


@pytest.mark.parametrize(
    "settings",
    [{"dora": True}, {"rslora": True}, {"loraplus_lr_ratio": 16.0}, {"lora_targets": "mlp"}],
    ids=["dora", "rslora", "lora+", "mlp-preset"],
)
def test_each_variant_trains_and_merges_exactly(settings):
    cfg = SftConfig(method="lora", lora_rank=4, lora_alpha=8, batch_size=4, epochs=4, lr=2e-2, log_every=1, **settings)
    model = attach_method(tiny_llama(), cfg, "sft", seed=0)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    if cfg.dora:
        assert any("lora_magnitude_vector" in n for n in names)
    if cfg.lora_targets == "mlp":
        assert names and all(any(m in n for m in ("gate_proj", "up_proj", "down_proj")) for n in names)
    q = model.base_model.model.model.layers[0].mlp.up_proj
    expected = cfg.lora_alpha / (math.sqrt(cfg.lora_rank) if cfg.rslora else cfg.lora_rank)
    assert q.scaling["default"] == pytest.approx(expected)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    rows = []
    trained, model = train_sft(model, examples(), cfg, 0, 0, lambda **row: rows.append(row))
    assert trained["steps"] == len(rows) == 16
    assert sum(r["loss"] for r in rows[-4:]) < sum(r["loss"] for r in rows[:4])  # it learns
    assert all(not torch.equal(before[n], p) for n, p in model.named_parameters() if "lora_B" in n)
    ids = torch.tensor([examples()[0][0]])
    with torch.no_grad():
        adapted = model(input_ids=ids).logits
        merged = model.merge_and_unload()(input_ids=ids).logits
    assert torch.allclose(adapted, merged, atol=1e-4)


def test_lora_plus_gives_b_matrices_their_own_rate():
    cfg = SftConfig(method="lora", lora_rank=4, loraplus_lr_ratio=16.0)
    model = attach_method(tiny_llama(), cfg, "sft", seed=0)
    opt = make_optimizer(model, 1e-3, 0.0, b_lr_scale=16.0)
    b = {id(p) for n, p in model.named_parameters() if "lora_B" in n}
    scaled = [g for g in opt.param_groups if g.get("lr_scale") == 16.0]
    assert len(scaled) == 1 and {id(p) for p in scaled[0]["params"]} == b
    assert sum(len(g["params"]) for g in opt.param_groups) == sum(p.requires_grad for p in model.parameters())
