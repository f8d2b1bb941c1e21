"""Packing with document masks (lmforge/train/documents.py): several documents in one row, none
attending to another, each with positions from 0 — so each one trains as if it were alone."""

import pytest
import torch

from lmforge.chat.encoding import IGNORE, collate
from lmforge.recipe import SftConfig, SftDataset, TrainConfig, load_recipe
from lmforge.rundir import read_metrics
from lmforge.rundir.manifest import read_manifest
from lmforge.train.documents import collate_packed, pack_rows, positions_after_eos, use_attention
from tests.conftest import ROOT, pretrain_tiny
from tests.tiny_models import tiny_llama

EOS = 1


def examples(lengths: list[int], seed: int = 0) -> list[tuple[list[int], list[int]]]:
    """Random conversations: ids in 2..96, labels on the second half (the "answer")."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in lengths:
        ids = torch.randint(2, 97, (n,), generator=g).tolist()
        out.append((ids, [IGNORE] * (n // 2) + ids[n // 2 :]))
    return out


def test_positions_restart_after_each_eos():
    x = torch.tensor([[5, 6, EOS, 7, 8, 9, EOS, EOS, 4], [EOS, 3, 3, 3, 3, 3, 3, 3, 3]])
    assert positions_after_eos(x, EOS).tolist() == [[0, 1, 2, 0, 1, 2, 3, 0, 0], [0, 0, 1, 2, 3, 4, 5, 6, 7]]


def test_rows_hold_every_item_once_and_fill_better_than_in_order():
    import random

    rng = random.Random(0)
    lengths = [min(int(rng.paretovariate(1.2) * 20), 256) for _ in range(500)]
    rows = pack_rows(lengths, 256, seed=3)
    assert sorted(i for r in rows for i in r) == list(range(500))
    assert all(sum(lengths[i] for i in r) <= 256 for r in rows)
    assert rows == pack_rows(lengths, 256, seed=3) and rows != pack_rows(lengths, 256, seed=4)
    in_order, space = 1, 256  # greedy in the given order: a new row whenever the next item does not fit
    for n in lengths:
        in_order, space = (in_order + 1, 256 - n) if n > space else (in_order, space - n)
    assert len(rows) < in_order
    assert len(rows) <= -(-sum(lengths) // 256) + 1  # within one row of the least possible
    with pytest.raises(ValueError, match="longer than the row length"):
        pack_rows([10, 300], 256, seed=0)


def token_losses(model, batch: dict) -> torch.Tensor:
    """Loss of every label token, at the position of the label (0 where there is none)."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    logits = model(**inputs, use_cache=False).logits[:, :-1].float()
    labels = batch["labels"][:, 1:]
    losses = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE, reduction="none")
    return torch.nn.functional.pad(losses, (1, 0))


@pytest.mark.parametrize("attention", ["sdpa", "sdpa_varlen", "eager"])
def test_each_conversation_in_a_packed_row_has_its_loss_alone(attention):
    """With a block-diagonal mask (sdpa, eager) or causal attention per document (sdpa_varlen)."""
    model = tiny_llama(max_position_embeddings=64, num_key_value_heads=2).float()
    model.set_attn_implementation(attention)
    convs = examples([11, 7, 20, 5])
    packed = collate_packed([convs[:3], convs[3:]], 48, pad_id=0)
    assert packed["position_ids"][0, :12].tolist() == [*range(11), 0]
    assert "attention_mask" not in packed  # transformers reads the documents from the positions
    reference = tiny_llama(max_position_embeddings=64, num_key_value_heads=2).float()  # the same weights, SDPA
    with torch.no_grad():
        together = token_losses(model, packed)
        for row, members in ((0, convs[:3]), (1, convs[3:])):
            at = 0
            for ids, labels in members:
                alone = token_losses(reference, collate([(ids, labels)], pad_id=0))[0]
                torch.testing.assert_close(together[row, at : at + len(ids)], alone, rtol=1e-5, atol=1e-6)
                at += len(ids)
            assert together[row, at:].abs().sum() == 0  # the padding tail has no labels


@pytest.mark.parametrize("family", ["gemma2", "gemma3", "mistral"])
def test_soft_capping_and_sliding_windows_hold_in_packed_rows(family):
    """Gemma 2's soft-capped scores, and windows (8 positions) shorter than the documents: each
    document in a packed row through sdpa_varlen has the loss it has alone through eager attention."""
    from tests.tiny_models import tiny_family

    # a cap near the scores' own size, so that ignoring it would show
    over = {"mistral": {"sliding_window": 8}, "gemma2": {"attn_logit_softcapping": 0.05}}.get(family, {})
    model, reference = (tiny_family(family, 97, 0, EOS, **over).float() for _ in range(2))
    reference.set_attn_implementation("eager")
    kernel, _ = use_attention(model, "sdpa_varlen", torch.device("cpu"), packed=True)
    assert kernel == ("varlen_documents" if family == "gemma2" else "sdpa_varlen")  # Gemma 2 opts out of SDPA
    convs = examples([21, 6, 17])
    packed = collate_packed([convs], 48, pad_id=0)
    with torch.no_grad():
        together = token_losses(model, packed)
        at = 0
        for ids, labels in convs:
            alone = token_losses(reference, collate([(ids, labels)], pad_id=0))[0]
            torch.testing.assert_close(together[0, at : at + len(ids)], alone, rtol=1e-4, atol=1e-5)
            at += len(ids)


def test_without_document_positions_the_row_is_one_sequence():
    """The control: the same row with plain positions lets later conversations see earlier ones."""
    model = tiny_llama(max_position_embeddings=64).float()
    convs = examples([11, 7])
    packed = collate_packed([convs], 24, pad_id=0)
    plain = {**packed, "position_ids": torch.arange(24)[None]}
    with torch.no_grad():
        a, b = token_losses(model, packed), token_losses(model, plain)
    torch.testing.assert_close(a[0, :11], b[0, :11])
    assert not torch.allclose(a[0, 11:18], b[0, 11:18])


@pytest.mark.parametrize("attention", ["sdpa", "sdpa_varlen"])
def test_no_gradient_flows_from_one_document_into_another(attention):
    model = tiny_llama(max_position_embeddings=64).float()
    model.set_attn_implementation(attention)
    ids = torch.tensor([[5, 9, 12, 40, EOS, 7, 33, 21, 8, 60, EOS, 3]])
    positions = positions_after_eos(ids, EOS)
    embeds = model.get_input_embeddings()(ids).detach().requires_grad_(True)
    logits = model(inputs_embeds=embeds, position_ids=positions, use_cache=False).logits
    # document B: tokens 5..10; its loss is on predicting tokens 6..10 from 5..9
    loss_b = torch.nn.functional.cross_entropy(logits[0, 5:10], ids[0, 6:11])
    loss_b.backward()
    assert torch.count_nonzero(embeds.grad[0, :5]) == 0  # document A (and its EOS): exactly zero
    assert torch.count_nonzero(embeds.grad[0, 5:10]) > 0
    # the control: without document positions, B's loss reaches into A
    embeds.grad = None
    model.set_attn_implementation("sdpa")
    model(inputs_embeds=embeds, use_cache=False).logits[0, 5:10].sum().backward()
    assert torch.count_nonzero(embeds.grad[0, :5]) > 0


def test_packed_training_picks_the_varlen_kernel_and_gives_the_model_back():
    from lmforge.errors import ConfigError

    model, cpu = tiny_llama(), torch.device("cpu")
    assert use_attention(model, "auto", cpu, packed=True) == ("sdpa_varlen", "sdpa")
    assert model.config._attn_implementation == "sdpa_varlen"
    model.set_attn_implementation("sdpa")
    assert use_attention(model, "auto", cpu, packed=False) == ("sdpa", "sdpa")
    with pytest.raises(ConfigError, match="packed rows only"):
        use_attention(model, "sdpa_varlen", cpu, packed=False)


def test_pretraining_with_document_masks(tiny_run, tmp_path):
    """The windows' documents are masked in training and validation, and the report says so; the
    first step's loss differs from the unmasked run's (the same windows, other attention; windows
    of 256 tokens over documents of ~300 hold document boundaries)."""
    from lmforge.train import pretrain

    run_dir, recipe_path = tiny_run
    first = {}
    for name, on in (("plain", "false"), ("masked", "true")):
        over = ["train.max_steps=3", "train.log_every=1", "train.seq_len=256", "model.max_position_embeddings=256"]
        r = load_recipe(recipe_path, [*over, f"train.document_mask={on}"])
        result = pretrain(r.model, r.train, tmp_path / name, r.run.seed)
        first[name] = next(x["loss"] for x in read_metrics(tmp_path / name, "pretrain") if "loss" in x)
        assert result["padding_share"] == 0 and result["peak_memory_gib"] > 0.01
    assert first["masked"] != pytest.approx(first["plain"], rel=1e-6)
    report = (tmp_path / "masked" / "report.md").read_text()
    assert "with document masks" in report and "real tokens/s" in report and "peak memory" in report
    assert "across document boundaries" in (tmp_path / "plain" / "report.md").read_text()


@pytest.mark.slow
def test_packed_and_padded_sft_reach_the_same_heldout_loss(tiny_run, tmp_path):
    """The shipped German sample, full fine-tuning, the same tokens per step: padded batches of 8
    conversations against 3 packed rows of 256 tokens (~150 steps each); the held-out loss after
    agrees within noise."""
    from lmforge.sft import run_sft_stage

    base = pretrain_tiny(tiny_run, "model.max_position_embeddings=256") / "checkpoints" / "step-000008"
    data = ROOT / "examples" / "instructions"
    common = dict(
        model=str(base),
        method="full",
        max_len=256,
        epochs=2,
        lr=1e-3,
        log_every=2,
        datasets=[SftDataset(path=str(data / "chat_de.jsonl"))],
        heldout=[SftDataset(path=str(data / "chat_de_heldout.jsonl"), language="de")],
    )
    out = {}
    for name, extra in (("padded", dict(batch_size=8)), ("packed", dict(batch_size=3, packing=True))):
        out[name] = run_sft_stage(SftConfig(**common, **extra), tmp_path / name, seed=0, tracking=TrainConfig())
    padded, packed = out["padded"], out["packed"]
    # the short sample pads little either way (length-grouped batches; rows' unfilled tails):
    # the gain on long-tailed lengths is bench/sft_throughput.py's to measure
    assert 0 < packed["padding_share"] < 0.1 and 0 < padded["padding_share"] < 0.1
    before = padded["heldout_loss_before"]["de"]
    assert packed["heldout_loss_before"]["de"] == pytest.approx(before, rel=1e-5)
    a, b = padded["heldout_loss_after"]["de"], packed["heldout_loss_after"]["de"]
    assert a < before - 0.3 and b < before - 0.3  # both learned
    assert b == pytest.approx(a, rel=0.05)
    report = (tmp_path / "packed" / "report.md").read_text()
    assert "packed into rows of 256 tokens with document masks" in report
    assert read_manifest(tmp_path / "packed")["config"]["sft"]["packing"] is True
