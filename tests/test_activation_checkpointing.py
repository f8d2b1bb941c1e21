"""`train.activation_checkpointing`: each decoder layer recomputes its activations in the backward
pass; the training is the same (pretrain, and sft with LoRA and dropout, whose masks the
recomputation must redraw identically)."""

import pytest

from lmforge.recipe import SftConfig, SftDataset, TrainConfig, load_recipe
from lmforge.rundir import read_metrics
from tests.conftest import ROOT, pretrain_tiny


def losses(run_dir, stage: str) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(run_dir, stage) if "loss" in r}


def test_pretraining_with_checkpointed_activations_follows_the_same_curve(tiny_run, tmp_path):
    from lmforge.train import pretrain

    run_dir, recipe_path = tiny_run
    for name, on in (("plain", "false"), ("checkpointed", "true")):
        r = load_recipe(recipe_path, ["train.max_steps=6", f"train.activation_checkpointing={on}"])
        pretrain(r.model, r.train, tmp_path / name, r.run.seed)
    plain, checkpointed = losses(tmp_path / "plain", "pretrain"), losses(tmp_path / "checkpointed", "pretrain")
    assert sorted(plain) == sorted(checkpointed) and plain
    for step, loss in plain.items():
        assert checkpointed[step] == pytest.approx(loss, rel=1e-6)


def test_lora_sft_with_checkpointed_activations_follows_the_same_curve(tiny_run, tmp_path):
    from lmforge.sft import run_sft_stage

    base = pretrain_tiny(tiny_run, "model.max_position_embeddings=128") / "checkpoints" / "step-000008"
    cfg = SftConfig(
        model=str(base),
        lora_dropout=0.1,
        batch_size=4,
        epochs=0.5,
        lr=2e-3,
        log_every=1,
        datasets=[SftDataset(path=str(ROOT / "examples" / "instructions" / "chat_de_heldout.jsonl"))],
    )
    for name, on in (("plain", False), ("checkpointed", True)):
        run_sft_stage(cfg, tmp_path / name, seed=0, tracking=TrainConfig(activation_checkpointing=on))
    plain, checkpointed = losses(tmp_path / "plain", "sft"), losses(tmp_path / "checkpointed", "sft")
    assert sorted(plain) == sorted(checkpointed) and len(plain) >= 4
    for step, loss in plain.items():
        assert checkpointed[step] == pytest.approx(loss, rel=1e-6)


@pytest.mark.parametrize("lora", [False, True])
def test_each_decoder_layer_runs_again_in_the_backward_pass(lora):
    """What the option does: a layer's insides run twice per step (once more to recompute), also
    under a peft wrapper; without it, once. (transformers checkpoints the layer's `forward`, so the
    hook sits on its attention, which the recompute runs to the end.)"""
    import torch

    from lmforge.train.distributed import Dist, decoder_layers, wrap_model
    from lmforge.train.tuning import attach_method
    from tests.tiny_models import tiny_llama

    d = Dist(0, 1, 0, torch.device("cpu"))
    for on, expected in ((False, 1), (True, 2)):
        model = tiny_llama()
        if lora:
            model = attach_method(model, SftConfig(method="lora", lora_rank=4), "sft")
        model = wrap_model(model, d, fsdp=False, bf16=False, checkpointing=on)
        calls = []
        decoder_layers(model)[0].self_attn.register_forward_hook(lambda *a: calls.append(1))
        model.train()
        ids = torch.randint(0, 90, (2, 16))
        model(input_ids=ids, labels=ids, use_cache=False).loss.backward()
        assert len(calls) == expected, (on, len(calls))
