"""DPO pieces: the losses against their formulas, the answer-only mask, the reference cache (equal to
on-the-fly, fingerprinted), LoRA's reference = the adapter disabled, bad input, and a run."""

import math

import pytest
import torch

from lmforge.dpo.data import encode_pairs, read_pairs, to_pair
from lmforge.dpo.loss import preference_loss
from lmforge.dpo.train import all_logps, data_fingerprint, reference_logps
from lmforge.errors import DataError
from lmforge.recipe import DpoConfig, PreferenceDataset
from lmforge.sft.data import IGNORE
from tests.conftest import ROOT, pretrain_tiny, write_jsonl

PAIRS = ROOT / "examples" / "preferences"


def test_losses_follow_their_formulas():
    pc, pr = torch.tensor([-10.0, -4.0]), torch.tensor([-12.0, -3.0])
    rc, rr = torch.tensor([-11.0, -5.0]), torch.tensor([-11.5, -3.5])
    beta = 0.2
    losses, reward_c, reward_r = preference_loss(pc, pr, rc, rr, beta)
    for i in range(2):
        h = (pc[i] - pr[i]) - (rc[i] - rr[i])
        assert float(losses[i]) == pytest.approx(math.log1p(math.exp(-beta * float(h))), rel=1e-6)
    assert torch.allclose(reward_c, beta * (pc - rc)) and torch.allclose(reward_r, beta * (pr - rr))
    smooth, _, _ = preference_loss(pc, pr, rc, rr, beta, label_smoothing=0.1)
    h = (pc - pr) - (rc - rr)
    want = 0.9 * torch.nn.functional.softplus(-beta * h) + 0.1 * torch.nn.functional.softplus(beta * h)
    assert torch.allclose(smooth, want)
    ipo, _, _ = preference_loss(pc, pr, rc, rr, beta, "ipo")
    assert torch.allclose(ipo, (h - 1 / (2 * beta)) ** 2)


def test_formats_and_bad_records(tmp_path):
    assert to_pair({"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."}, "plain") == \
        ([{"role": "user", "content": "Hi"}], "Hello!", "Go away.")
    conv = {"chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
            "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "No."}], "prompt": "Hi"}
    assert to_pair(conv, "conversational") == ([{"role": "user", "content": "Hi"}], "Hello!", "No.")  # UltraFeedback
    hh = {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi\n\nAssistant: No."}
    assert to_pair(hh, "hh") == ([{"role": "user", "content": "Hi"}], "Hello!", "No.")
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "a", "chosen": "same", "rejected": "same"},
                                              {"prompt": "b", "chosen": "", "rejected": "x"},
                                              {"prompt": "c", "chosen": "yes", "rejected": "no"}])
    pairs, skipped, where = read_pairs(PreferenceDataset(path=str(path)))
    assert len(pairs) == 1 and skipped == {"identical answers": 1, "empty answer": 1} and where[0].endswith(":1: identical answers")
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "a", "chosen": "x", "rejected": "y"}, {"prompt": "b", "chosen": "x"}])
    with pytest.raises(DataError, match=r"bad.jsonl:2: preference pair without 'rejected'"):
        read_pairs(PreferenceDataset(path=str(bad)))


@pytest.fixture
def tiny(tiny_run):
    from lmforge.models import load_model_and_tokenizer

    return load_model_and_tokenizer(pretrain_tiny(tiny_run, "model.max_position_embeddings=256"))


def test_only_answer_tokens_are_labelled_and_the_prompt_does_not_move_the_mask(tiny):
    _, tok = tiny
    answer = "The harbour is quiet."
    rows = []
    for prompt in ("Describe the harbour.", "Describe the old harbour in the morning, please, in one short line."):
        pair = {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                           {"role": "assistant", "content": "Hello."}, {"role": "user", "content": prompt}],
                "chosen": answer, "rejected": "No idea.", "language": "en", "where": "x:1"}
        (encoded,), _, _ = encode_pairs(tok, [pair], 256, "skip")
        ids, labels = encoded["chosen"]
        rows.append([t for t in labels if t != IGNORE])
        assert "Hello" not in tok.decode([t for t in labels if t != IGNORE])  # earlier assistant turns stay masked
        assert tok.decode(rows[-1]).startswith(answer)
    assert rows[0] == rows[1]  # a longer prompt shifts the answer, never changes what is scored


def test_reference_cache_equals_on_the_fly_and_lora_reference_is_the_adapter_disabled(tiny, tmp_path):
    from lmforge.sft.train import attach_method

    model, tok = tiny
    pairs, _, _ = read_pairs(PreferenceDataset(path=str(PAIRS / "pairs_heldout.jsonl")))
    encoded, _, _ = encode_pairs(tok, pairs[:12], 256, "skip")
    base = all_logps(model, encoded, 4, tok.pad_token_id or 0)
    lora = attach_method(model, DpoConfig(method="lora"))
    with torch.no_grad():  # make the adapter matter, so "disabled" is a real difference
        for name, p in lora.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    path, key = tmp_path / "ref.json", "model-a:" + data_fingerprint(encoded)
    ref = reference_logps(lora, encoded, 4, tok.pad_token_id or 0, path, key, adapter=True)
    assert torch.allclose(ref["chosen"], base["chosen"], atol=1e-5) and torch.equal(ref["chosen_tokens"], base["chosen_tokens"])
    assert not torch.allclose(all_logps(lora, encoded, 4, tok.pad_token_id or 0)["chosen"], base["chosen"], atol=1e-3)
    again = reference_logps(lora, encoded, 4, tok.pad_token_id or 0, path, key, adapter=True)  # from the file
    assert all(torch.equal(again[k], ref[k]) for k in ref)
    with pytest.raises(DataError, match="reference log-probs of another model, tokenizer or data"):
        reference_logps(lora, encoded, 4, tok.pad_token_id or 0, path, "model-b:" + data_fingerprint(encoded), True)


def test_a_dpo_run_writes_a_model_metrics_and_a_report(tiny_run):
    from transformers import AutoModelForCausalLM

    from lmforge.dpo import run_dpo_stage
    from lmforge.rundir import read_metrics

    run_dir = pretrain_tiny(tiny_run, "model.max_position_embeddings=256")
    cfg = DpoConfig(datasets=[PreferenceDataset(path=str(PAIRS / "pairs.jsonl"), weight=0.2)],
                    heldout=[PreferenceDataset(path=str(PAIRS / "pairs_heldout.jsonl"), weight=0.3)],
                    lr=3e-3, batch_size=8, log_every=2)
    s = run_dpo_stage(cfg, run_dir, 0)
    assert s["pairs"] == 60 and s["heldout_pairs"] == 18 and s["steps"] == 8
    assert 0 <= s["heldout_accuracy_before"] <= 1 and 0 <= s["heldout_accuracy_after"] <= 1
    assert s["heldout_kl_per_token"] > 0  # the policy moved, and by how much is reported
    rows = read_metrics(run_dir, "dpo")
    assert [r["step"] for r in rows] == [2, 4, 6, 8] and all(0 <= r["reward_accuracy"] <= 1 for r in rows)
    AutoModelForCausalLM.from_pretrained(run_dir / "dpo" / "model")
    assert (run_dir / "dpo" / "adapter" / "adapter_config.json").is_file()
    assert "## DPO" in (run_dir / "report.md").read_text()
    assert (run_dir / "dpo" / "reference_logps.json").is_file()
