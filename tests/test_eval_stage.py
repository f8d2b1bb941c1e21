"""The eval stage end to end through the CLI: side-by-side tasks, comparison, sweep, bad input."""

import json

import pytest

from tests.conftest import CORPUS, ROOT, lmforge, pretrain_tiny, write_jsonl

TASKS = ROOT / "examples" / "tasks"


@pytest.fixture
def trained(tiny_run):
    return pretrain_tiny(tiny_run, "model.max_position_embeddings=64")


@pytest.mark.slow
def test_eval_stage_reports_languages_side_by_side_with_comparison_and_sweep(trained):
    out = lmforge(
        "eval",
        str(trained),
        "-t",
        str(TASKS / "hellaswag_sample_en.toml"),
        "-t",
        str(TASKS / "hellaswag_sample_de.toml"),
        "-t",
        str(TASKS / "qa_sample_de.toml"),
        "--limit",
        "10",
        "--bpb",
        f"en={CORPUS / 'en' / 'heldout.jsonl'}",
        "--bpb",
        f"de={CORPUS / 'de' / 'heldout.jsonl'}",
        "--baseline",
        str(trained / "checkpoints" / "step-000000"),
        "--target-language",
        "de",
        "--source-language",
        "en",
        "--sweep",
        "--set",
        "eval.max_docs=4",
    ).stdout
    assert "hellaswag_sample_de: acc" in out and "(gain, p=" in out and "(forgetting, p=" in out
    assert "qa_sample_de: exact_match" in out and "aggregate de: " in out and "aggregate en: " in out
    report = (trained / "report.md").read_text()
    assert "| benchmark | metric | en | de |" in report and "| hellaswag_sample | acc_norm |" in report
    assert "### Compared with" in report and "### Checkpoint sweep" in report
    assert "### One number per language" in report and "| qa_sample | exact_match |" in report
    sweep_rows = [l for l in report.splitlines() if l.startswith("| step-")]
    assert [r.split(" | ")[0] for r in sweep_rows] == [f"| step-{s:06d}" for s in (0, 1, 2, 4, 8)]
    for plot in ("eval_tasks", "eval_bits_per_byte", "eval_sweep_bpb", "eval_sweep_tasks", "eval_sweep_aggregate"):
        assert (trained / "plots" / f"{plot}.png").stat().st_size > 1000
    results = json.loads((trained / "eval" / "results.json").read_text())
    task = results["tasks"][1]
    assert task["items"] == 10 and len(task["per_item"]["acc"]) == 10
    assert task["metrics"]["acc"]["value"] == sum(task["per_item"]["acc"]) / 10
    # bits per byte of the trained model against its own initialisation: a significant gain in German
    bpb_de = next(r for r in results["comparison"] if r["metric"] == "bpb" and r["language"] == "de")
    assert bpb_de["delta"] > 0 and bpb_de["p_value"] < 0.05
    core = {r["language"]: r for r in results["comparison"] if r["metric"] == "core"}
    assert set(core) == {"en", "de"} and all(-1 <= r["delta"] <= 1 for r in core.values())
    qa = next(t for t in results["tasks"] if t["task"] == "qa_sample_de")
    assert qa["items"] == 10 and len(qa["replies"]) == 10 and qa["chance"] == 0.0
    assert set(results["aggregate"]["de"]["tasks"]) == {"hellaswag_sample_de", "qa_sample_de"}
    manifest = json.loads((trained / "manifest.json").read_text())
    assert "eval" in manifest["stages"] and set(manifest["stages"]["eval"]["aggregate"]) == {"en", "de"}


def test_bad_task_file_and_non_causal_model_fail_in_one_line(trained, tmp_path):
    items = write_jsonl(
        tmp_path / "bad.jsonl",
        [{"q": "a", "choices": ["x", "y"], "answer": 0}, {"q": "b", "choices": ["x", "y"], "answer": 5}],
    )
    spec = tmp_path / "bad.toml"
    spec.write_text(f'name = "bad"\nlanguage = "en"\ndata = "{items.name}"\nprompt = "{{{{q}}}}"\n')
    bad = lmforge("eval", str(trained), "-t", str(spec), check=False)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0
    assert "bad.jsonl:2: answer index 5 out of range for 2 choices" in bad.stderr

    from transformers import T5Config, T5ForConditionalGeneration

    T5ForConditionalGeneration(
        T5Config(vocab_size=64, d_model=16, d_ff=32, num_layers=1, num_heads=2, d_kv=8)
    ).save_pretrained(tmp_path / "t5")
    bad = lmforge("eval", str(tmp_path / "t5"), "-t", str(TASKS / "arc_sample_en.toml"), check=False)
    assert bad.returncode == 2 and "not a causal language model" in bad.stderr
