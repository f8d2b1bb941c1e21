"""The embedded demo, end to end: `make demo` as the README says it (the session's `demo` fixture,
which the README test reads too), then its run directory and what the user saw."""

import json
import re

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.conftest import ROOT, assert_stage_results_typed, lmforge


@pytest.mark.slow
def test_demo_recipe_end_to_end(demo):
    run_dir, output = demo
    assert f"report:        {(run_dir / 'report.md').resolve()}" in output
    manifest = json.loads((run_dir / "manifest.json").read_text())
    # the README's commands (test_readme, maybe on the other xdist worker) add judge and dpo after these
    stages = list(manifest["stages"])
    assert set(stages[10:]) <= {"judge", "dpo"}
    assert stages[:10] == [
        "curate",
        "tokenizer",
        "tokenize",
        "pretrain",
        "adapt",
        "eval",
        "generate",
        "sft",
        "release",
        "export",
    ]
    assert_stage_results_typed(manifest)
    curate = manifest["stages"]["curate"]
    assert curate["read"] == curate["kept"] + sum(curate["dropped"].values()) == 845  # every shipped record
    assert {"malformed", "empty", "undecodable", "language", "exact_duplicate", "near_duplicate"} <= set(
        curate["dropped"]
    )
    assert set(curate["languages_kept"]) == {"en", "de"} and curate["pii_redacted"]["email"] >= 3
    tokenized = (ROOT / manifest["inputs"]["tokenize"][0]["path"]).resolve()
    assert tokenized.is_relative_to(run_dir / "curate" / "data" / "en")
    sft = manifest["stages"]["sft"]
    assert set(sft["heldout_loss_after"]) == {"en", "de"} and len(sft["samples"]) == 2
    assert all(sft["heldout_loss_after"][l] < sft["heldout_loss_before"][l] for l in ("en", "de"))
    assert "assistant:" in output  # the demo ends with the bilingual exchange
    noise = [l for l in output.splitlines() if re.search(r"Warning\b|warnings\.warn|print_timing|^slot ", l)]
    assert not noise, noise  # quiet by default: no library warnings, no llama.cpp request logs
    adapt = manifest["stages"]["adapt"]
    assert adapt["after"]["bits_per_byte"]["de"] < adapt["before"]["bits_per_byte"]["de"]
    assert adapt["base"]["added_tokens"] == 256 and adapt["base"]["context_after"] == 256
    assert manifest["stages"]["eval"]["model"].endswith("adapted")  # eval picks up the adapted model
    ev = manifest["stages"]["eval"]
    assert set(ev["bits_per_byte"]) == {"en", "de"} and all(0 < b < 8 for b in ev["bits_per_byte"].values())
    assert {t.rsplit("_", 1)[1] for t in ev["tasks"]} == {"en", "de"} and len(ev["tasks"]) == 6
    assert all(0 <= m["acc"] <= 1 for m in ev["tasks"].values())
    assert 0.0 <= ev["memorization"]["memorized"] <= 1.0
    assert "| benchmark | metric | en | de |" in (run_dir / "report.md").read_text()
    for key in ("config", "code_commit", "inputs", "seeds", "versions", "hardware"):
        assert manifest[key], key
    assert all(s["wall_s"] > 0 for s in manifest["stages"].values())
    headings = [line for line in (run_dir / "report.md").read_text().splitlines() if line.startswith("## ")]
    assert headings == [
        "## Curate",
        "## Tokenizer",
        "## Tokenize",
        "## Pretrain",
        "## Adapt",
        "## Eval",
        "## Generate",
        "## SFT",
        "## Release",
        "## Export",
    ]
    # the demo ends with a release and GGUF files checked in llama.cpp; the report says the class
    report = (run_dir / "report.md").read_text()
    assert "Model Openness Framework: **Class II (Open Tooling)**" in report
    assert "Missing for Class I (Open Science):" in report and "Research paper: not in the release" in report
    release = run_dir / "release"
    for kind in ("f16", "q8_0"):
        assert f"`demo-{kind}.gguf` | {kind} |" in report and (release / f"demo-{kind}.gguf").is_file()
    f16 = manifest["stages"]["export"]["files"][0]["llama_cpp"]
    assert f16["greedy_identical"] == f16["prompts"] == 3
    assert (
        "MOF: Class II (Open Tooling)" in output and "verified" in lmforge("release", "--verify", str(release)).stdout
    )
    AutoModelForCausalLM.from_pretrained(release)
    assert (
        "chat_template" in AutoTokenizer.from_pretrained(release).init_kwargs
        or AutoTokenizer.from_pretrained(release).chat_template
    )
    ckpt = run_dir / "checkpoints" / "step-000300"
    AutoModelForCausalLM.from_pretrained(ckpt)
    AutoTokenizer.from_pretrained(ckpt)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train_loss = [r["loss"] for r in rows if "loss" in r]
    assert train_loss[-1] < train_loss[0] - 1.0  # it learns
    # the saved resolved recipe replays: rerunning resumes the finished run instead of retraining
    again = lmforge("run", str(run_dir / "recipe.yaml"), "--run-dir", str(run_dir), "--set", "run.stages=['pretrain']")
    assert "resuming from step-000300" in again.stdout
