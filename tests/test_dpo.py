"""DPO pieces: the losses against their formulas, the answer-only mask, the reference cache (equal to
on-the-fly, fingerprinted), LoRA's reference = the adapter disabled, bad input, and a run."""

import math

import pytest
import torch

from lmforge.chat.encoding import IGNORE
from lmforge.dpo.data import encode_pairs, read_pairs, to_pair
from lmforge.dpo.loss import preference_loss
from lmforge.dpo.train import all_logps, data_fingerprint, reference_logps
from lmforge.errors import DataError
from lmforge.recipe import DpoConfig, PreferenceDataset
from tests.conftest import ROOT, lmforge, pretrain_tiny, write_jsonl

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
    def said(text):
        return {"role": "assistant", "content": text}

    assert to_pair({"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."}, "plain") == (
        [{"role": "user", "content": "Hi"}],
        said("Hello!"),
        said("Go away."),
    )
    conv = {
        "chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
        "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "No."}],
        "prompt": "Hi",
    }
    assert to_pair(conv, "conversational") == ([{"role": "user", "content": "Hi"}], said("Hello!"), said("No."))
    hh = {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi\n\nAssistant: No."}
    assert to_pair(hh, "hh") == ([{"role": "user", "content": "Hi"}], said("Hello!"), said("No."))
    path = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"prompt": "a", "chosen": "same", "rejected": "same"},
            {"prompt": "b", "chosen": "", "rejected": "x"},
            {"prompt": "c", "chosen": "yes", "rejected": "no"},
        ],
    )
    pairs, skipped, where = read_pairs(PreferenceDataset(path=str(path)))
    assert (
        len(pairs) == 1
        and skipped == {"identical answers": 1, "empty answer": 1}
        and where[0].endswith(":1: identical answers")
    )
    bad = write_jsonl(
        tmp_path / "bad.jsonl", [{"prompt": "a", "chosen": "x", "rejected": "y"}, {"prompt": "b", "chosen": "x"}]
    )
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
        pair = {
            "prompt": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello."},
                {"role": "user", "content": prompt},
            ],
            "chosen": {"role": "assistant", "content": answer},
            "rejected": {"role": "assistant", "content": "No idea."},
            "language": "en",
            "where": "x:1",
        }
        (encoded,), _, _ = encode_pairs(tok, [pair], 256, "skip")
        ids, labels = encoded["chosen"]
        rows.append([t for t in labels if t != IGNORE])
        assert "Hello" not in tok.decode([t for t in labels if t != IGNORE])  # earlier assistant turns stay masked
        assert tok.decode(rows[-1]).startswith(answer)
    assert rows[0] == rows[1]  # a longer prompt shifts the answer, never changes what is scored


def test_a_packed_pair_scores_like_two_separate_rows(tiny):
    """Prefix sharing changes nothing: each answer's summed log-prob and token count equal a plain
    forward over its own full sequence, with answers that share their first words, one answer that
    is the other's beginning, a multi-turn prompt, and pairs of different lengths in one batch."""
    from lmforge.dpo.packing import pack_pairs, packed_length, pair_logps

    model, tok = tiny
    turns = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    raw = [
        ("Name a harbour.", "The harbour of Kiel.", "The harbour is wet."),
        ("Count to two.", "One, two.", "One, two, three, four, five."),
        ("Say no.", "No.", "Yes, certainly, here is a much longer answer than needed."),
    ]
    pairs = [
        {
            "prompt": turns + [{"role": "user", "content": q}],
            "chosen": {"role": "assistant", "content": c},
            "rejected": {"role": "assistant", "content": r},
            "language": "en",
            "where": f"x:{i}",
        }
        for i, (q, c, r) in enumerate(raw)
    ]
    encoded, _, _ = encode_pairs(tok, pairs, 256, "skip")
    model.eval()
    with torch.no_grad():
        got, counts = pair_logps(model, pack_pairs(encoded, [0, 1, 2], tok.pad_token_id or 0, model.device))
        for i, p in enumerate(encoded):
            for j, side in enumerate(("chosen", "rejected")):
                ids, labels = p[side]
                logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0, :-1].float(), -1)
                scored = [(k, t) for k, t in enumerate(labels[1:]) if t != IGNORE]
                want = sum(float(logp[k, t]) for k, t in scored)
                assert float(got[j * 3 + i]) == pytest.approx(want, abs=1e-4) and int(counts[j * 3 + i]) == len(scored)
    assert packed_length(encoded[0]) < len(encoded[0]["chosen"][0]) + len(encoded[0]["rejected"][0]) - 10


def test_pair_groups_cover_every_pair_each_epoch_and_can_group_by_length(tiny):
    from lmforge.dpo.packing import packed_length
    from lmforge.dpo.train import pair_groups

    _, tok = tiny
    pairs, _, _ = read_pairs(PreferenceDataset(path=str(PAIRS / "pairs.jsonl")))
    encoded, _, _ = encode_pairs(tok, pairs[:96], 256, "skip")
    lengths = [packed_length(p) for p in encoded]
    spread = {}
    for by_length in (False, True):
        epoch = pair_groups(encoded, 8, 0, by_length, epoch=0)
        assert len(epoch) == 12 and pair_groups(encoded, 8, 0, by_length, epoch=1) != epoch
        assert sorted(i for b in epoch for i in b) == list(range(96))
        spread[by_length] = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in epoch)
    assert spread[True] < spread[False] / 2


def test_reference_cache_equals_on_the_fly_and_lora_reference_is_the_adapter_disabled(tiny, tmp_path):
    from lmforge.train.tuning import attach_method

    model, tok = tiny
    pairs, _, _ = read_pairs(PreferenceDataset(path=str(PAIRS / "pairs_heldout.jsonl")))
    encoded, _, _ = encode_pairs(tok, pairs[:12], 256, "skip")
    base = all_logps(model, encoded, 4, tok.pad_token_id or 0)
    lora = attach_method(model, DpoConfig(method="lora"), "dpo")
    with torch.no_grad():  # make the adapter matter, so "disabled" is a real difference
        for name, p in lora.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    path, key = tmp_path / "ref.json", "model-a:" + data_fingerprint(encoded)
    ref = reference_logps(lora, encoded, 4, tok.pad_token_id or 0, path, key, adapter=True)
    assert torch.allclose(ref["chosen"], base["chosen"], atol=1e-5) and torch.equal(
        ref["chosen_tokens"], base["chosen_tokens"]
    )
    assert not torch.allclose(all_logps(lora, encoded, 4, tok.pad_token_id or 0)["chosen"], base["chosen"], atol=1e-3)
    again = reference_logps(lora, encoded, 4, tok.pad_token_id or 0, path, key, adapter=True)  # from the file
    assert all(torch.equal(again[k], ref[k]) for k in ref)
    with pytest.raises(DataError, match="reference log-probs of another model, tokenizer or data"):
        reference_logps(lora, encoded, 4, tok.pad_token_id or 0, path, "model-b:" + data_fingerprint(encoded), True)


def test_a_dpo_run_writes_a_model_metrics_and_a_report(tiny_run):
    from transformers import AutoModelForCausalLM

    from lmforge.dpo import run_dpo_stage
    from lmforge.recipe import EndpointConfig, JudgeConfig
    from lmforge.rundir import read_metrics
    from tests.conftest import free_port
    from tests.fault_endpoint import FaultEndpoint, Running

    run_dir = pretrain_tiny(tiny_run, "model.max_position_embeddings=256")
    server = Running(FaultEndpoint().app, free_port())  # a scripted judge for the after-training verdict
    cfg = DpoConfig(
        datasets=[PreferenceDataset(path=str(PAIRS / "pairs.jsonl"), weight=0.2)],
        heldout=[PreferenceDataset(path=str(PAIRS / "pairs_heldout.jsonl"), weight=0.3)],
        lr=3e-3,
        batch_size=8,
        log_every=2,
        judge=JudgeConfig(
            judge=EndpointConfig(base_url=server.url, model="scripted", api_key_env=None), max_new_tokens=6
        ),
    )
    try:
        s = run_dpo_stage(cfg, run_dir, 0)
    finally:
        server.stop()
    verdict = s["judge_vs_start"]["en"]
    assert verdict["pairs"] == 16 and verdict["baseline"] == "step-000008"  # the model DPO started from
    assert s["pairs"] == 60 and s["heldout_pairs"] == 18 and s["steps"] == 8
    assert s["heldout_reward_accuracy_before"] == 0.5 and 0 <= s["heldout_reward_accuracy_after"] <= 1
    assert 0 <= s["heldout_likelihood_accuracy_before"] <= 1
    assert s["heldout_kl_per_token"] > 0  # the policy moved, and by how much is reported
    rows = read_metrics(run_dir, "dpo")
    assert [r["step"] for r in rows] == [2, 4, 6, 8] and all(0 <= r["reward_accuracy"] <= 1 for r in rows)
    AutoModelForCausalLM.from_pretrained(run_dir / "dpo" / "model")
    assert (run_dir / "dpo" / "adapter" / "adapter_config.json").is_file()
    assert "## DPO" in (run_dir / "report.md").read_text()
    assert (run_dir / "dpo" / "reference_logps.json").is_file()
    # a rerun starts again from the same model (not from its own output) and reuses the cached reference
    again = run_dpo_stage(cfg.model_copy(update={"judge": None}), run_dir, 0)
    assert again["model"] == s["model"] and again["final"] == s["final"]


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo"])
def test_loss_rewards_and_gradients_equal_trl(tiny, tmp_path, loss_type):
    """The same model, the same batch (TRL's own tokenization): lmforge's loss, rewards and every
    parameter's gradient equal TRL's DPOTrainer computation."""
    import copy

    from datasets import Dataset
    from trl import DPOConfig as TrlDPOConfig
    from trl import DPOTrainer

    from lmforge.dpo.packing import pack_pairs, pair_logps

    model, tok = tiny
    reference = copy.deepcopy(model)
    rows = [
        {
            "prompt": f"Describe harbour number {i}.",
            "chosen": f" It is quiet and small, number {i}.",
            "rejected": " No.",
        }
        for i in range(8)
    ]
    args = TrlDPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        beta=0.1,
        loss_type=[loss_type],
        report_to=[],
        use_cpu=True,
        max_length=None,
    )
    trainer = DPOTrainer(
        model=model, ref_model=reference, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok
    )
    batch = next(iter(trainer.get_train_dataloader()))
    model.train()
    trl_loss = trainer.compute_loss(trainer.model, batch)
    trl_loss.backward()
    trl_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    metrics = trainer._metrics["train"]

    # lmforge on the same token rows (padding dropped, labels on the completion tokens only), each
    # pair packed into one row behind its shared prompt
    ids, mask, completion = batch["input_ids"], batch["attention_mask"], batch["completion_mask"]
    ours = []
    for i in range(len(ids)):
        keep = mask[i] == 1
        ours.append((ids[i][keep].tolist(), torch.where(completion[i][keep] == 1, ids[i][keep], IGNORE).tolist()))
    n = len(ids) // 2
    b = pack_pairs([{"chosen": ours[i], "rejected": ours[n + i]} for i in range(n)], list(range(n)), 0, model.device)
    logps, counts = pair_logps(model, b)
    with torch.no_grad():
        ref_logps, _ = pair_logps(reference, b)
    scale = counts.clamp(min=1) if loss_type == "ipo" else torch.ones_like(counts)
    pol, ref = logps / scale, ref_logps / scale
    losses, _, _ = preference_loss(pol[:n], pol[n:], ref[:n], ref[n:], 0.1, loss_type)
    losses.mean().backward()
    assert float(losses.mean()) == pytest.approx(float(trl_loss), rel=1e-5)
    assert float(0.1 * (logps[:n] - ref_logps[:n]).mean()) == pytest.approx(metrics["rewards/chosen"][-1], abs=1e-6)
    assert float(0.1 * (logps[n:] - ref_logps[n:]).mean()) == pytest.approx(metrics["rewards/rejected"][-1], abs=1e-6)
    assert float(logps[:n].mean()) == pytest.approx(metrics["logps/chosen"][-1], rel=1e-5)
    for name, p in model.named_parameters():
        if name in trl_grads:
            assert torch.allclose(p.grad, trl_grads[name], atol=1e-5, rtol=1e-4), name


def test_heldout_preference_accuracy_rises_on_the_shipped_sample(tiny_run):
    """Fixed seed, full DPO on the shipped pairs: held-out pairs (other prompts) are preferred the
    right way far more often than the 0.5 of the untrained reference, with the KL to it reported."""
    from lmforge.dpo import run_dpo_stage

    run_dir = pretrain_tiny(tiny_run, "train.max_steps=30", "model.hidden_size=64", "model.max_position_embeddings=256")
    cfg = DpoConfig(
        datasets=[PreferenceDataset(path=str(PAIRS / "pairs.jsonl"))],
        heldout=[PreferenceDataset(path=str(PAIRS / "pairs_heldout.jsonl"))],
        method="full",
        lr=2e-3,
        epochs=6,
        batch_size=16,
        beta=0.1,
        log_every=20,
    )
    s = run_dpo_stage(cfg, run_dir, 0)
    assert s["heldout_reward_accuracy_after"] >= 0.65, s
    assert 0 < s["heldout_kl_per_token"] < 2.0


def test_pairs_from_a_pairwise_judge_run(tmp_path):
    from lmforge.dpo.from_judge import pairs_from_judge

    d = tmp_path / "judge" / "en"
    write_jsonl(
        d / "question.jsonl",
        [{"question_id": q, "category": "writing", "turns": [f"Q{q}", f"Q{q} again"]} for q in (1, 2, 3, 4)],
    )
    for m, prefix in (("tuned", "good"), ("base", "bad")):
        write_jsonl(
            d / "model_answer" / f"{m}.jsonl",
            [
                {
                    "question_id": q,
                    "answer_id": "x",
                    "model_id": m,
                    "tstamp": 0,
                    "choices": [{"index": 0, "turns": [f"{prefix} {q}", f"{prefix} {q} again"]}],
                }
                for q in (1, 2, 3, 4)
            ],
        )

    def row(q, g1, g2, turn=1):
        return {
            "question_id": q,
            "model_1": "tuned",
            "model_2": "base",
            "g1_winner": g1,
            "g2_winner": g2,
            "turn": turn,
        }

    write_jsonl(
        d / "model_judgment" / "j_pair.jsonl",
        [
            row(1, "model_1", "model_1"),
            row(2, "model_2", "model_2"),
            row(3, "model_1", "model_2"),
            row(4, "error", "model_1"),
            row(1, "model_1", "model_1", turn=2),
        ],
    )
    s = pairs_from_judge(tmp_path / "judge", tmp_path / "pairs.jsonl")
    assert s["pairs"] == 2 and s["dropped"] == {"tie": 1, "judgment failed": 1, "second turn": 1}
    pairs, _, _ = read_pairs(PreferenceDataset(path=s["output"]))
    said = [(p["chosen"]["content"], p["rejected"]["content"]) for p in pairs]
    assert said == [("good 1", "bad 1"), ("bad 2", "good 2")]


@pytest.mark.parametrize("method", ["lora"])  # full (FSDP2): on 2 processes in tests/test_scale_out.py
def test_a_killed_run_resumes_to_the_same_weights(tiny_run, tmp_path, method):
    """Kill `lmforge dpo` after a checkpoint; the rerun continues from it and ends with the weights
    of a run that was never interrupted."""
    import signal
    import subprocess
    import sys
    import time

    from safetensors.torch import load_file

    run_dir = pretrain_tiny(tiny_run, "model.max_position_embeddings=256")
    model = run_dir / "checkpoints" / "step-000008"
    recipe = tmp_path / "dpo.toml"
    recipe.write_text(
        f'[dpo]\nmodel = "{model}"\nmethod = "{method}"\nlr = 1e-3\nbatch_size = 4\nepochs = 0.3\n'
        f'checkpoint_every = 2\nlog_every = 1\n[[dpo.datasets]]\npath = "{PAIRS / "pairs.jsonl"}"\n'
    )
    lmforge("dpo", str(recipe), "--run-dir", str(tmp_path / "a"))
    args = [sys.executable, "-m", "lmforge", "dpo", str(recipe), "--run-dir", str(tmp_path / "b")]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    state = tmp_path / "b" / "dpo" / "resume" / "state.json"
    end = time.time() + 300
    while time.time() < end and not (state.is_file() and __import__("json").loads(state.read_text())["step"] >= 8):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "b" / "dpo" / "model").exists()
    lmforge("dpo", str(recipe), "--run-dir", str(tmp_path / "b"))
    import json

    s = json.loads((tmp_path / "b" / "manifest.json").read_text())["stages"]["dpo"]
    assert s["resumed_from"] >= 8 and s["steps"] == 23
    a, b = (
        load_file(tmp_path / "a" / "dpo" / "model" / "model.safetensors"),
        load_file(tmp_path / "b" / "dpo" / "model" / "model.safetensors"),
    )
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert not (tmp_path / "b" / "dpo" / "resume").exists()  # finished: nothing left to resume
