"""KTO, ORPO and SimPO: each loss, its rewards and every parameter's gradient equal TRL's trainers on
the same model and batch (TRL's own tokenization, converted to lmforge's packed rows), as
tests/test_dpo.py checks DPO and IPO; the formulas on constructed numbers; unpaired data; a run."""

import copy
import math

import pytest
import torch

from lmforge.chat.encoding import IGNORE
from lmforge.dpo.data import encode_unpaired, read_pairs
from lmforge.dpo.loss import kl_reference_point, kto_loss, log1mexp, odds_ratio_loss, simpo_loss
from lmforge.dpo.packing import pack_pairs, pair_logps
from lmforge.errors import ConfigError, DataError
from lmforge.recipe import DpoConfig, PreferenceDataset
from tests.conftest import ROOT, pretrain_tiny, write_jsonl

PAIRS = ROOT / "examples" / "preferences"


@pytest.fixture
def tiny(tiny_run):
    from lmforge.models import load_model_and_tokenizer

    return load_model_and_tokenizer(pretrain_tiny(tiny_run, "model.max_position_embeddings=256"))


def test_the_formulas_on_constructed_numbers():
    c, r = torch.tensor([-0.5, -2.0]), torch.tensor([-1.5, -0.1])
    assert torch.allclose(log1mexp(torch.tensor([-1e-6, -0.5, -30.0])), torch.log(1 - torch.exp(torch.tensor([-1e-6, -0.5, -30.0]))), rtol=1e-3)  # fmt: skip
    losses, rc, _ = odds_ratio_loss(c, r, 0.1)
    for i in range(2):
        odds = lambda lp: math.exp(lp) / (1 - math.exp(lp))  # noqa: E731
        log_or = math.log(odds(float(c[i])) / odds(float(r[i])))
        assert float(losses[i]) == pytest.approx(0.1 * math.log1p(math.exp(-log_or)), rel=1e-5)
    assert torch.allclose(rc, 0.1 * c)
    losses, _, _ = simpo_loss(c, r, beta=2.0, gamma=0.5)
    assert torch.allclose(losses, torch.nn.functional.softplus(-(2.0 * (c - r) - 0.5)))
    logps, ref = torch.tensor([-3.0, -5.0, -4.0]), torch.tensor([-3.5, -4.0, -4.0])
    desirable = torch.tensor([True, False, True])
    z = kl_reference_point(torch.tensor([-6.0, -7.0]), torch.tensor([-6.5, -7.1]))
    assert float(z) == pytest.approx(0.3)
    losses, rewards = kto_loss(logps, ref, desirable, z, 0.1, desirable_weight=1.0, undesirable_weight=2.0)
    sig = torch.sigmoid
    want = [1 - sig(torch.tensor(0.1 * (0.5 - 0.3))), 1 - sig(torch.tensor(0.1 * (0.0 - 0.3)))]  # desirable first
    want.append(2.0 * (1 - sig(torch.tensor(0.1 * (0.3 - (-1.0))))))
    assert torch.allclose(losses, torch.stack(want)) and torch.allclose(rewards, 0.1 * (logps - ref))
    assert float(kl_reference_point(torch.tensor([-6.0]), torch.tensor([-5.0]))) == 0.0  # never below 0


def rows_of(ids, mask, labels):
    """TRL's padded rows as lmforge's (ids, labels) pairs, padding dropped."""
    out = []
    for i in range(len(ids)):
        keep = mask[i] == 1
        out.append((ids[i][keep].tolist(), labels[i][keep].tolist()))
    return out


def perturbed(model, seed: int = 0):
    """A reference that differs from the policy, so that log-ratios and the KL estimate are not 0."""
    other = copy.deepcopy(model)
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return other


def grads_equal(model, trl_grads) -> None:
    for name, p in model.named_parameters():
        if name in trl_grads:
            assert torch.allclose(p.grad, trl_grads[name], atol=1e-5, rtol=1e-4), name


def trl_grads_of(model, loss) -> dict:
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    return grads


PAIR_ROWS = [
    {"prompt": f"Describe harbour number {i}.", "chosen": f" It is quiet and small, number {i}.", "rejected": " No."}
    for i in range(8)
]


@pytest.mark.parametrize("loss_type", ["orpo", "simpo", "simpo+nll"])
def test_orpo_and_simpo_equal_trl(tiny, tmp_path, loss_type):
    from datasets import Dataset

    model, tok = tiny
    common = {"output_dir": str(tmp_path), "per_device_train_batch_size": 4, "report_to": [], "use_cpu": True}
    if loss_type == "orpo":
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

        trainer = ORPOTrainer(
            model=model, args=ORPOConfig(beta=0.1, **common), train_dataset=Dataset.from_list(PAIR_ROWS), processing_class=tok
        )  # fmt: skip
        cfg = DpoConfig(loss="orpo", beta=0.1)
    else:
        from trl.experimental.cpo import CPOConfig, CPOTrainer

        alpha = 0.5 if loss_type == "simpo+nll" else 0.0  # CPO-SimPO's NLL term, or SimPO as published
        args = CPOConfig(loss_type="simpo", beta=2.0, simpo_gamma=0.5, cpo_alpha=alpha, **common)
        trainer = CPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(PAIR_ROWS), processing_class=tok)
        cfg = DpoConfig(loss="simpo", beta=2.0, simpo_gamma=0.5, sft_weight=alpha)
    batch = next(iter(trainer.get_train_dataloader()))
    model.train()
    trl_loss, metrics = trainer.get_batch_loss_metrics(trainer.model, batch)
    trl_grads = trl_grads_of(model, trl_loss)

    chosen = rows_of(batch["chosen_input_ids"], batch["chosen_attention_mask"], batch["chosen_labels"])
    rejected = rows_of(batch["rejected_input_ids"], batch["rejected_attention_mask"], batch["rejected_labels"])
    pairs = [{"chosen": c, "rejected": r} for c, r in zip(chosen, rejected)]
    n = len(pairs)
    packed = pack_pairs(pairs, list(range(n)), 0, model.device, chosen_prompts=cfg.loss == "orpo")
    logps, counts = pair_logps(model, packed)
    from lmforge.dpo.train import _reference_free

    ours, stats = _reference_free(logps.float(), counts, n, cfg)
    ours.backward()
    assert float(ours.detach()) == pytest.approx(float(trl_loss), rel=1e-5)
    avg = logps[: 2 * n].detach() / counts[: 2 * n]
    assert float(cfg.beta * avg[:n].mean()) == pytest.approx(float(metrics["rewards/chosen"]), rel=1e-5)
    assert float(cfg.beta * avg[n:].mean()) == pytest.approx(float(metrics["rewards/rejected"]), rel=1e-5)
    if loss_type != "simpo":
        assert float(stats["nll"]) == pytest.approx(float(metrics["nll_loss"]), rel=1e-5)
    grads_equal(model, trl_grads)


def test_kto_equals_trl(tiny, tmp_path):
    from datasets import Dataset
    from trl import KTOConfig, KTOTrainer

    model, tok = tiny
    reference = perturbed(model)
    rows = [
        {"prompt": f"Describe harbour number {i}.", "completion": f" It is quiet, number {i}." if i % 3 else " No.", "label": bool(i % 3)}
        for i in range(8)
    ]  # fmt: skip
    args = KTOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        beta=0.1,
        desirable_weight=1.0,
        undesirable_weight=1.5,
        report_to=[],
        use_cpu=True,
        train_sampling_strategy="sequential",
    )
    trainer = KTOTrainer(
        model=model, ref_model=reference, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok
    )
    batch = next(iter(trainer.get_train_dataloader()))
    model.train()
    trl_loss = trainer.compute_loss(trainer.model, batch)
    trl_grads = trl_grads_of(model, trl_loss)
    metrics = trainer._metrics["train"]

    def labelled(prefix: str):
        ids, mask = batch[f"{prefix}input_ids"], batch[f"{prefix}attention_mask"]
        return rows_of(ids, mask, torch.where(batch[f"{prefix}completion_mask"] == 1, ids, IGNORE))

    items = [
        {"chosen": a, "rejected": k, "desirable": bool(label)}
        for a, k, label in zip(labelled(""), labelled("KL_"), batch["label"])
    ]
    n = len(items)
    packed = pack_pairs(items, list(range(n)), 0, model.device)
    with torch.no_grad():
        ref, _ = pair_logps(reference, packed)
    from lmforge.dpo.train import _kto

    logps, _ = pair_logps(model, packed)
    ref_table = {"chosen": ref[:n], "rejected": ref[n:]}
    cfg = DpoConfig(loss="kto", beta=0.1, desirable_weight=1.0, undesirable_weight=1.5)

    class Here:
        device = model.device

    ours, stats = _kto(logps.float(), list(range(n)), items, ref_table, cfg, Here)
    ours.backward()
    assert float(ours) == pytest.approx(float(trl_loss), rel=1e-5)
    # z is a difference of two sums of ~100 log-probs each: float32 rounding of the sums (~1e-5
    # relative) shows as ~1e-3 in it
    assert float(stats["kl"]) == pytest.approx(metrics["kl"][-1], abs=2e-3) and float(stats["kl"]) > 0.1
    desirable = torch.tensor([i["desirable"] for i in items])
    rewards = 0.1 * (logps[:n].detach() - ref[:n])
    # β x the same kind of difference: within 2e-4 (rewards here are ~0.03-0.3)
    assert float(rewards[desirable].mean()) == pytest.approx(metrics["rewards/chosen"][-1], abs=2e-4)
    assert float(rewards[~desirable].mean()) == pytest.approx(metrics["rewards/rejected"][-1], abs=2e-4)
    grads_equal(model, trl_grads)


def test_unpaired_answers_and_their_kl_rows(tiny, tmp_path):
    _, tok = tiny
    path = write_jsonl(
        tmp_path / "feedback.jsonl",
        [
            {"prompt": "Name a colour.", "completion": "Blue.", "label": True},
            {"prompt": [{"role": "user", "content": "Say hi."}], "completion": [{"role": "assistant", "content": "Hi!"}], "label": True},
            {"prompt": "Name a fruit.", "completion": "Chair.", "label": False},
            {"prompt": "Count to two.", "completion": "  ", "label": False},
        ],
    )  # fmt: skip
    answers, skipped, where = read_pairs(PreferenceDataset(path=str(path)), unpaired=True)
    assert [a["desirable"] for a in answers] == [True, True, False] and skipped == {"empty answer": 1}
    assert where == [f"{path}:4: empty answer"]
    # a pair is a desirable and an undesirable answer to one prompt
    both, _, _ = read_pairs(PreferenceDataset(path=str(PAIRS / "pairs_heldout.jsonl")), unpaired=True)
    pairs, _, _ = read_pairs(PreferenceDataset(path=str(PAIRS / "pairs_heldout.jsonl")))
    assert len(both) == 2 * len(pairs) and [b["desirable"] for b in both[:2]] == [True, False]
    rows, _, _ = encode_unpaired(tok, answers, 256, "skip", batch_size=2)
    # batches [0, 1], [2]: answer 0's KL row carries answer 1's completion, answer 1's answer 0's, 2 its own
    assert rows[0]["rejected"] == encode_row(tok, answers[0], answers[1])
    assert rows[1]["rejected"] == encode_row(tok, answers[1], answers[0])
    assert rows[2]["rejected"] == rows[2]["chosen"]
    with pytest.raises(DataError, match=r'feedback.jsonl:1: an unpaired answer .* only dpo.loss = "kto"'):
        read_pairs(PreferenceDataset(path=str(path)))
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "Hi", "completion": "Hello", "label": "yes"}])
    with pytest.raises(DataError, match=r"bad.jsonl:1: not a unpaired preference pair \(label must be true or false"):
        read_pairs(PreferenceDataset(path=str(bad)), unpaired=True)


def encode_row(tok, item, other):
    from lmforge.chat.encoding import encode

    return encode(tok, item["prompt"] + [other["answer"]], last_only=True)


@pytest.mark.parametrize("loss", ["kto", "orpo", "simpo"])
def test_a_run_with_each_loss_learns_the_shipped_preferences(tiny_run, loss):
    """Fixed seed, full tuning on the shipped pairs (KTO: unpaired from them), as the DPO test does:
    held-out pairs (other prompts) come to be preferred the right way by likelihood per answer
    token. Measured: KTO 0.50 -> 0.73, SimPO 0.50 -> 0.68, ORPO 0.50 -> 0.58 (its NLL term pulls
    the chosen answers up and the off-task rejected ones, fluent text too, less far down)."""
    from lmforge.dpo.stage import run_dpo_stage
    from lmforge.rundir import read_metrics

    run_dir = pretrain_tiny(tiny_run, "train.max_steps=30", "model.hidden_size=64", "model.max_position_embeddings=256")
    cfg = DpoConfig(
        model=str(run_dir / "checkpoints" / "step-000030"),
        method="full",
        loss=loss,
        beta=2.0 if loss == "simpo" else 0.1,
        lr=5e-4,
        epochs=6,
        batch_size=16,
        log_every=10,
        datasets=[PreferenceDataset(path=str(PAIRS / "pairs.jsonl"))],
        heldout=[PreferenceDataset(path=str(PAIRS / "pairs_heldout.jsonl"))],
    )
    s = run_dpo_stage(cfg, run_dir, 0)
    assert s["loss"] == loss and s["heldout_likelihood_accuracy_before"] == 0.5
    assert s["heldout_likelihood_accuracy_after"] >= {"kto": 0.65, "orpo": 0.55, "simpo": 0.65}[loss], s
    assert (s["desirable"] == s["pairs"] // 2) if loss == "kto" else s["desirable"] is None
    assert (run_dir / "dpo" / "reference_logps.json").is_file() == (loss == "kto")  # ORPO, SimPO: no reference
    rows = read_metrics(run_dir, "dpo")
    if loss == "orpo":
        assert rows[-1]["nll"] < rows[0]["nll"]
    if loss == "kto":
        # z >= 0; here it stays 0: the mismatched rows hold another prompt's answer, just what the
        # sample's undesirable answers are, so the policy makes them less likely than the reference
        assert all(r["kl"] >= 0 for r in rows)
    report = (run_dir / "report.md").read_text()
    assert {"kto": "KTO (Ethayarajh", "orpo": "ORPO (Hong", "simpo": "SimPO (Meng"}[loss] in report


def test_kto_needs_batches_of_two(tiny_run):
    from lmforge.dpo.stage import run_dpo_stage

    cfg = DpoConfig(loss="kto", batch_size=1, datasets=[PreferenceDataset(path=str(PAIRS / "pairs.jsonl"))])
    with pytest.raises(ConfigError, match="dpo.batch_size: KTO estimates its reference point from a batch"):
        run_dpo_stage(cfg, tiny_run[0], 0)
