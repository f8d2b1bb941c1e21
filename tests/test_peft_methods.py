"""LoRA's variants through peft, for sft and dpo alike (one tuning block): target presets, DoRA,
rsLoRA and LoRA+; each trains, and the merged model computes what the adapted one does. And
LLaMA-Adapter V2's units (lmforge/models/adapter_v2.py): the base at the start, saved alone,
loaded on the base, folded exactly."""

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


def test_qlora_tunes_a_4bit_base_and_saves_the_adapter_merged_in_16_bit(tiny_run, tmp_path):
    """sft and dpo with `qlora`: the base's linear layers train in 4-bit NF4 (bitsandbytes' CPU
    backend), sft's held-out loss falls, and each result is the 16-bit base with the adapter merged in."""
    from safetensors.torch import load_file

    from lmforge.models import load_causal_lm
    from lmforge.recipe import SftDataset
    from lmforge.sft import run_sft_stage
    from lmforge.train.tuning import load_quantized
    from tests.conftest import ROOT, pretrain_tiny

    wide = ("model.max_position_embeddings=128", "model.hidden_size=64", "model.intermediate_size=96")
    base = pretrain_tiny(tiny_run, *wide) / "checkpoints" / "step-000008"
    quantized = load_quantized(base, SftConfig(qlora=True), "sft", torch.device("cpu"))
    kinds = {n.split(".")[-1]: type(m).__name__ for n, m in quantized.model.layers[0].named_modules()}
    assert kinds["q_proj"] == kinds["up_proj"] == "Linear4bit"  # rows of 64: whole NF4 blocks
    assert kinds["down_proj"] == type(quantized.lm_head).__name__ == "Linear"  # 96 is not; nor the output layer
    data = SftDataset(path=str(ROOT / "examples" / "instructions" / "chat_de_heldout.jsonl"))
    cfg = SftConfig(model=str(base), qlora=True, lora_rank=8, batch_size=4, epochs=2, lr=5e-3, datasets=[data])
    s = run_sft_stage(cfg.model_copy(update={"heldout": [data]}), tmp_path / "run", seed=0)
    assert s["heldout_loss_after"]["de"] < s["heldout_loss_before"]["de"] - 0.1
    merged = load_file(tmp_path / "run" / "chat" / "model.safetensors")
    plain = dict(load_causal_lm(base).named_parameters())
    assert all(v.dtype == torch.float32 for v in merged.values())  # no 4-bit tensors left
    changed = [k for k in merged if k in plain and not torch.equal(merged[k], plain[k].detach())]
    assert any("q_proj" in k for k in changed) and not any("norm" in k or "embed" in k for k in changed)
    assert (tmp_path / "run" / "sft" / "adapter" / "adapter_config.json").is_file()

    from lmforge.dpo import run_dpo_stage
    from lmforge.recipe import DpoConfig, PreferenceDataset

    pairs = PreferenceDataset(path=str(ROOT / "examples" / "preferences" / "pairs.jsonl"))
    d = run_dpo_stage(
        DpoConfig(model=str(base), qlora=True, batch_size=4, epochs=0.1, datasets=[pairs]), tmp_path / "d"
    )
    assert d["steps"] == 8 and d["final"]["loss"] > 0
    assert all(
        v.dtype == torch.float32 for v in load_file(tmp_path / "d" / "dpo" / "model" / "model.safetensors").values()
    )


def test_qlora_settings_that_cannot_work_are_one_line(monkeypatch, tmp_path):
    import sys

    from lmforge.train.tuning import load_quantized

    with pytest.raises(ConfigError, match='dpo.qlora: QLoRA trains LoRA on a 4-bit base; set dpo.method = "lora"'):
        load_quantized(tmp_path, SftConfig(qlora=True, method="full"), "dpo", torch.device("cpu"))
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # as if it were not installed
    with pytest.raises(ConfigError, match=r"sft.qlora needs bitsandbytes: pip install 'lmforge\[qlora\]'"):
        load_quantized(tmp_path, SftConfig(qlora=True), "sft", torch.device("cpu"))
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="sft.qlora runs in one process for now"):
        load_quantized(tmp_path, SftConfig(qlora=True), "sft", torch.device("cpu"))


def v2_config(**over) -> SftConfig:
    return SftConfig(method="adapter_v2", adapter_len=4, adapter_layers=1, batch_size=4, epochs=4, lr=2e-2, **over)


@pytest.mark.parametrize("bias", [False, True], ids=["no-bias", "attention-bias"])
def test_adapter_v2_starts_as_the_base_trains_its_units_and_folds_exactly(bias):
    from lmforge.models import adapter_v2

    ids = torch.tensor([examples()[0][0]])
    with torch.no_grad():
        base_logits = tiny_llama(attention_bias=bias)(input_ids=ids).logits
    model = attach_method(tiny_llama(attention_bias=bias), v2_config(log_every=1), "sft", seed=0)
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, base_logits)  # scale 1, shift 0, gates 0: the base exactly
    units = adapter_v2.unit_parameters(model)
    linears = 7 * 2  # q k v o gate up down in each of 2 layers; never the output layer
    assert len(units) == 2 * linears + 2 * 2 + 1  # scale and shift per linear, two norms per layer and the last
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {id(p) for p in units.values()} | {id(p) for n, p in model.named_parameters() if "adaption" in n} == {
        id(p) for n, p in model.named_parameters() if n in trainable
    }  # units and prompts train, nothing else
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if n.endswith("base.weight")}
    rows = []
    trained, model = train_sft(model, examples(), v2_config(log_every=1), 0, 0, lambda **row: rows.append(row))
    assert sum(r["loss"] for r in rows[-4:]) < sum(r["loss"] for r in rows[:4])  # it learns
    assert trained["trainable_params"] == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert all(torch.equal(frozen[n], p) for n, p in model.named_parameters() if n in frozen)
    assert all(not torch.equal(p, torch.ones_like(p)) for k, p in units.items() if k.endswith(".scale"))
    with torch.no_grad():
        adapted = model(input_ids=ids).logits
        assert adapter_v2.fold_units(model) == linears
        assert not any(isinstance(m, adapter_v2.ScaledLinear) for m in model.modules())
        folded = model(input_ids=ids).logits
    assert torch.allclose(adapted, folded, atol=1e-5) and not torch.allclose(adapted, base_logits, atol=1e-3)


def test_adapter_v2_saves_only_its_units_and_loads_on_its_base(tmp_path):
    from peft import PeftModel
    from safetensors.torch import load_file

    from lmforge.errors import CheckpointError
    from lmforge.models import adapter_v2

    model = attach_method(tiny_llama(), v2_config(), "sft", seed=0)
    with torch.no_grad():
        for p in adapter_v2.unit_parameters(model).values():
            p.add_(0.1 * torch.randn_like(p))
        for n, p in model.named_parameters():
            if "adaption_gate" in n:
                p.fill_(0.5)
    model.save_pretrained(tmp_path)
    adapter_v2.save_units(model, tmp_path)
    saved = load_file(str(tmp_path / adapter_v2.FILE))
    assert set(saved) == set(adapter_v2.unit_parameters(model))  # its own parameters, by the base's names
    assert "model.layers.1.self_attn.q_proj.scale" in saved and "model.norm.weight" in saved
    assert not any(k.endswith("proj.weight") or "embed" in k for k in saved)

    ids = torch.tensor([examples()[1][0]])
    base = tiny_llama()
    adapter_v2.add_units(base)
    adapter_v2.load_units(base, tmp_path / adapter_v2.FILE)
    loaded = PeftModel.from_pretrained(base, tmp_path)
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=ids).logits, model(input_ids=ids).logits)

    other = tiny_llama(num_hidden_layers=3)
    adapter_v2.add_units(other)
    with pytest.raises(CheckpointError, match=r"model.layers.2.* missing from the file"):
        adapter_v2.load_units(other, tmp_path / adapter_v2.FILE)


def test_parameter_counts_of_lora_and_both_adapters_and_families_without_prompts():
    from transformers import Qwen2Config

    from lmforge.train.tuning import method_parameters

    base = tiny_llama()
    c = base.config
    counts = method_parameters(c, SftConfig(lora_rank=4, adapter_len=4, adapter_layers=1), "sft")
    kv = c.hidden_size // c.num_attention_heads * c.num_key_value_heads
    outs = [c.hidden_size, kv, kv, c.hidden_size, c.intermediate_size, c.intermediate_size, c.hidden_size]
    ins = [c.hidden_size] * 6 + [c.intermediate_size]
    prompts = 4 * c.hidden_size + 1  # one layer: adapter_len x hidden prompt and its gate
    norms = (2 * c.num_hidden_layers + 1) * c.hidden_size
    assert counts == {
        "lora": c.num_hidden_layers * sum(4 * (i + o) for i, o in zip(ins, outs)),
        "adapter": prompts,
        "adapter_v2": prompts + c.num_hidden_layers * 2 * sum(outs) + norms,
    }
    qwen = Qwen2Config(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
    assert set(method_parameters(qwen, SftConfig(), "sft")) == {"lora"}
    with pytest.raises(ConfigError, match=r"sft.method = 'adapter_v2': peft's adaption prompts exist for Llama"):
        from transformers import AutoModelForCausalLM

        attach_method(AutoModelForCausalLM.from_config(qwen), SftConfig(method="adapter_v2"), "sft")
