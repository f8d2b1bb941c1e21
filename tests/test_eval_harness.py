"""Parity with lm-evaluation-harness on the shipped tasks, through its local-JSONL task route."""

import pytest
import yaml

from lmforge.eval.harness import export_task, run_harness
from lmforge.eval.multiple_choice import evaluate_task
from lmforge.models import load_model_and_tokenizer
from lmforge.recipe import load_recipe
from lmforge.tasks import load_task
from lmforge.train import pretrain
from tests.conftest import ROOT, lmforge

pytest.importorskip("lm_eval")  # in the [test] extra, so CI always runs this file
TASKS = ROOT / "examples" / "tasks"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_data):
    from tests.conftest import tiny_recipe

    tmp = tmp_path_factory.mktemp("harness")
    recipe = tiny_recipe(tmp, tiny_data)
    # a 64-position model: room for every 0-shot item, while 2-shot prompts still need truncation
    r = load_recipe(recipe, ["train.max_steps=8", "model.max_position_embeddings=64"])
    pretrain(r.model, r.train, tmp / "run", r.run.seed)
    return tmp / "run"


def test_exported_yaml_uses_the_local_files(tmp_path):
    task = load_task(TASKS / "piqa_sample_de.toml")
    cfg = yaml.safe_load(export_task(task, tmp_path).read_text())
    assert cfg["dataset_path"] == "json" and cfg["output_type"] == "multiple_choice"
    assert cfg["dataset_kwargs"]["data_files"]["test"] == str((TASKS / "piqa_sample_de.jsonl").resolve())
    assert cfg["doc_to_text"] == task.spec.prompt and "num_fewshot" not in cfg  # 0-shot: leave it overridable


@pytest.mark.slow
@pytest.mark.parametrize("shots", [0, 2])
def test_acc_and_acc_norm_equal_lm_eval_item_by_item(trained, tmp_path, shots):
    """2-shot prompts outgrow the tiny model's 64-token context: the harness's left truncation too."""
    model, tok = load_model_and_tokenizer(trained)
    tasks = [load_task(TASKS / f"{n}.toml") for n in ("arc_sample_en", "hellaswag_sample_de", "piqa_sample_de")]
    ours = [evaluate_task(model, tok, t, num_fewshot=shots) for t in tasks]
    theirs = run_harness(model, tok, [], tasks, tmp_path, num_fewshot=shots)
    for a, b in zip(ours, theirs):
        assert b["source"] == "lm-eval" and b["items"] == a["items"] == 30 and b["num_fewshot"] == shots
        assert b["chance"] == pytest.approx(a["chance"])  # so harness results enter the aggregate too
        for metric in ("acc", "acc_norm", "acc_bytes"):
            assert a["per_item"][metric] == b["per_item"][metric], (a["task"], metric)
            assert a["metrics"][metric]["value"] == b["metrics"][metric]["value"]


@pytest.mark.slow
def test_cli_harness_route_and_unknown_task(trained):
    out = lmforge(
        "eval", str(trained), "--harness", "lm-eval", "-t", str(TASKS / "arc_sample_de.toml"), "--limit", "6"
    ).stdout
    assert "arc_sample_de: acc" in out
    assert "lm-evaluation-harness" in (trained / "report.md").read_text()
    bad = lmforge("eval", str(trained), "--harness", "lm-eval", "--tasks", "no_such_task_xyz", check=False)
    assert bad.returncode == 2 and "lm-eval does not know task(s) no_such_task_xyz" in bad.stderr
