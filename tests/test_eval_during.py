"""Evaluations during training: `train.eval_tasks` and `train.eval_bpb` every `train.eval_every`
steps inside pretrain and SFT, in metrics.jsonl and plotted in the report."""

import json

from tests.conftest import CORPUS, ROOT, lmforge, pretrain_tiny

TASKS = ROOT / "examples" / "tasks"
EVALS = [
    f'train.eval_tasks=["{TASKS / "hellaswag_sample_en.toml"}", "{TASKS / "qa_sample_de.toml"}"]',
    f'train.eval_bpb={{de = "{CORPUS / "de" / "heldout.jsonl"}", en = "{CORPUS / "en" / "heldout.jsonl"}"}}',
    "train.eval_limit=4",
    "train.eval_every=4",
]


def eval_rows(run_dir, stage: str) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r.get("stage") == stage and any(k.startswith("eval_") for k in r)]


def test_pretrain_scores_tasks_and_held_out_text_while_it_trains(tiny_run):
    run = pretrain_tiny(tiny_run, "model.max_position_embeddings=64", *EVALS)
    rows = eval_rows(run, "pretrain")
    assert [r["step"] for r in rows] == [4, 8]
    for r in rows:
        assert r["tokens"] > 0 and 0 < r["eval_bpb_de"] < 20 and 0 < r["eval_bpb_en"] < 20
        assert 0 <= r["eval_hellaswag_sample_en_acc_norm"] <= 1 and 0 <= r["eval_qa_sample_de_exact_match"] <= 1
        assert {"eval_core_en", "eval_core_de"} <= set(r)
    assert rows[1]["eval_bpb_de"] < rows[0]["eval_bpb_de"]  # it learns German text as it trains
    report = (run / "report.md").read_text()
    assert "### Evaluation during training" in report and "| bpb_de |" in report
    assert (run / "plots" / "pretrain_during_bpb.png").stat().st_size > 1000


def test_sft_evaluates_during_training_too(tiny_run, tmp_path):
    base = pretrain_tiny(tiny_run, "model.max_position_embeddings=128")
    instr = ROOT / "examples" / "instructions" / "chat_de_heldout.jsonl"
    run = tmp_path / "sft_run"
    lmforge(
        "sft",
        "--run-dir",
        str(run),
        "--set",
        f"sft.model={base}",
        "--set",
        f'sft.datasets=[{{path = "{instr}"}}]',
        "--set",
        "sft.epochs=1",
        "--set",
        "sft.max_len=128",
        "--set",
        "sft.batch_size=8",
        *[x for e in EVALS[1:] for x in ("--set", e)],
        "--set",
        "train.eval_every=3",
    )
    rows = eval_rows(run, "sft")
    assert rows and all("eval_bpb_de" in r for r in rows) and rows[-1]["step"] == max(r["step"] for r in rows)
    assert "### Evaluation during training" in (run / "report.md").read_text()
