"""Distilling step-by-step against a scripted teacher: its rationales and labels are read with the
task's own extraction, disagreements counted and dropped (or kept), the two-task set built with
prefixes and λ, both methods trained at each size and scored on the held-out items; and the
per-example loss weights that carry λ."""

import json
import re

import pytest
import torch
from fastapi import FastAPI, Request

from lmforge.chat.encoding import collate
from lmforge.distill import run_distill_stage
from lmforge.errors import ConfigError
from lmforge.recipe import DistillConfig, EndpointConfig, SftConfig
from lmforge.sft.train import answer_loss
from tests.conftest import ROOT, free_port, lmforge, pretrain_tiny, write_jsonl
from tests.fault_endpoint import Running, chat_reply
from tests.tiny_models import tiny_llama

TASK = ROOT / "examples" / "tasks" / "arith_sample_en.toml"
TRAIN = ROOT / "examples" / "tasks" / "arith_sample_en_train.jsonl"


def scripted_teacher(rows: list[dict]) -> FastAPI:
    """Solves each problem with its worked solution; every 4th answer is off by one, every 7th has
    no number at all."""
    solutions = {r["question"]: (i, r) for i, r in enumerate(rows)}
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        prompt = body["messages"][-1]["content"]
        question = re.findall(r"Question: (.*)\nAnswer:", prompt)[-1]
        i, row = solutions[question]
        text = row["solution"] + "\n\nQuestion: something else"  # goes on: cut at the task's stop
        if i % 7 == 6:
            text = "I am not sure how to solve this."
        elif i % 4 == 3:
            text = f"A guess: the answer is {row['answer'] + 1}."
        return chat_reply(body, text)

    return app


@pytest.fixture
def teacher(tmp_path):
    rows = [json.loads(line) for line in TRAIN.read_text().splitlines()[:28]]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    server = Running(scripted_teacher(rows), free_port())
    yield server.url, path
    server.stop()


def test_weights_scale_each_conversations_mean_loss():
    model = tiny_llama()
    rows = [([1, 5, 9, 20, 33], [-100, -100, 9, 20, 33]), ([4, 8, 15, 16, 23, 42], [-100, -100, -100, 16, 23, 42])]
    inputs = collate(rows, 0)
    with torch.no_grad():
        both = answer_loss(model, (inputs, 11, 2, torch.tensor([1.0, 1.0]))).loss
        first = answer_loss(model, (inputs, 11, 2, torch.tensor([2.0, 0.0]))).loss
        alone = answer_loss(model, (collate(rows[:1], 0), 5, 1, torch.tensor([1.0]))).loss
        plain = answer_loss(model, (collate(rows[:1], 0), 5, 1, None)).loss
    assert torch.allclose(first, alone) and torch.allclose(alone, plain)  # weight 2 over 2 rows = its own mean
    second = 2 * both - alone
    assert torch.allclose(answer_loss(model, (collate(rows[1:], 0), 6, 1, None)).loss, second, atol=1e-6)


def test_distill_against_a_scripted_teacher(tiny_run, teacher):
    url, train = teacher
    run_dir = pretrain_tiny(tiny_run, "model.max_position_embeddings=256")
    cfg = DistillConfig(
        task=str(TASK),
        train_data=str(train),
        endpoint=EndpointConfig(base_url=url, model="teacher", api_key_env=None),
        sizes=[0.5, 1.0],
        rationale_weight=0.5,
        limit=8,
        label_tokens=8,
        sft=SftConfig(method="full", epochs=1, lr=1e-3, batch_size=8),
    )
    s = run_distill_stage(cfg, run_dir, 0)
    # 28 inputs: 4 without a number (i % 7 == 6), 6 more off by one (i % 4 == 3, not already counted)
    assert s["inputs"] == 28 and s["teacher"] == {
        "answered": 28,
        "no answer in the reply": 4,
        "agreed": 18,
        "disagreed": 6,
    }
    assert s["kept"] == 18
    records = [json.loads(line) for line in open(run_dir / "distill" / "teacher.jsonl")]
    assert len(records) == 28 and all("something else" not in r.get("rationale", "") for r in records)
    assert {r["dropped"] for r in records} == {None, "no answer in the reply", "label disagrees with the gold one"}
    sets = {
        n: [json.loads(x) for x in open(run_dir / "distill" / f"{n}.jsonl")] for n in ("label_only", "step_by_step")
    }
    assert len(sets["label_only"]) == 18 and len(sets["step_by_step"]) == 36
    first = sets["step_by_step"][0]["messages"]
    assert first[0]["content"].startswith("[label] Question: ") and first[1]["content"] == str(
        records_gold(records, first)
    )
    assert sets["step_by_step"][18]["messages"][0]["content"].startswith("[rationale] Question: ")
    assert [(r["method"], r["share"], r["inputs"]) for r in s["results"]] == [
        ("label", 0.5, 9), ("step_by_step", 0.5, 9), ("label", 1.0, 18), ("step_by_step", 1.0, 18)
    ]  # fmt: skip
    assert all(0 <= r["accuracy"] <= 1 and r["steps"] >= 1 for r in s["results"])
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(run_dir / "distill" / "model")
    report = (run_dir / "report.md").read_text()
    assert "## Distilling step-by-step" in report and "| 18 (100%) |" in report
    assert (run_dir / "plots" / "distill.png").is_file()
    # a rerun asks the teacher nothing again (its answers are cached)
    again = run_distill_stage(cfg.model_copy(update={"sizes": [0.5]}), run_dir, 0)
    assert again["endpoint"]["answered_from_cache"] == 28 and again["endpoint"]["requests"] == 0


def records_gold(records, conversation) -> str:
    question = conversation[0]["content"].removeprefix("[label] ")
    return next(r["gold"] for r in records if r["input"] == question)


def test_keeping_disagreements_and_bad_settings(tiny_run, teacher, tmp_path):
    url, train = teacher
    with pytest.raises(ConfigError, match="distill.task and distill.train_data"):
        run_distill_stage(DistillConfig(), tmp_path / "r", 0)
    mc = ROOT / "examples" / "tasks" / "arc_sample_en.toml"
    with pytest.raises(ConfigError, match="must be a generative task whose few-shot examples have worked solutions"):
        run_distill_stage(DistillConfig(task=str(mc), train_data=str(train)), tmp_path / "r", 0)
    run_dir = pretrain_tiny(tiny_run, "model.max_position_embeddings=256")
    cfg = DistillConfig(
        task=str(TASK),
        train_data=str(train),
        endpoint=EndpointConfig(base_url=url, model="teacher", api_key_env=None),
        disagreeing="keep",
        sizes=[1.0],
        limit=4,
        label_tokens=4,
        sft=SftConfig(method="lora", lora_rank=4, epochs=1, lr=1e-3, batch_size=8),
    )
    s = run_distill_stage(cfg, run_dir, 0)
    assert s["kept"] == 24  # the 6 disagreeing inputs stay; the 4 without an answer cannot


def distill_recipe(folder, url: str, train, model, epochs: float = 1) -> str:
    recipe = folder / "distill.toml"
    recipe.write_text(
        f'[train]\nprecision = "fp32"\n[distill]\ntask = "{TASK}"\ntrain_data = "{train}"\nmodel = "{model}"\n'
        f"sizes = [1.0]\nlimit = 4\nlabel_tokens = 4\n"
        f'endpoint = {{ base_url = "{url}", model = "teacher", api_key_env = "" }}\n'
        f'[distill.sft]\nmethod = "full"\nepochs = {epochs}\nlr = 1e-3\nbatch_size = 4\nprecision = "fp32"\n'
        "checkpoint_every = 2\nlog_every = 1\n"
    )
    return str(recipe)


@pytest.mark.slow
def test_distill_on_two_processes_matches_one_with_accumulation(tiny_run, teacher, tmp_path):
    from tests.test_scale_out import ONE_THREAD, close_weights

    url, train = teacher
    base = pretrain_tiny(tiny_run, "model.max_position_embeddings=256") / "checkpoints" / "step-000008"
    recipe = distill_recipe(tmp_path, url, train, base)
    lmforge("distill", recipe, "--set", "distill.sft.grad_accum=2", "--run-dir", str(tmp_path / "one"))
    two = lmforge("distill", recipe, *ONE_THREAD, "--set", "train.nproc_per_node=2", "--run-dir", str(tmp_path / "ddp"))
    assert two.returncode == 0
    s = {n: json.loads((tmp_path / n / "manifest.json").read_text())["stages"]["distill"] for n in ("one", "ddp")}
    assert [r["steps"] for r in s["one"]["results"]] == [r["steps"] for r in s["ddp"]["results"]]
    for a, b in zip(s["one"]["results"], s["ddp"]["results"]):
        assert b["final_loss"] == pytest.approx(a["final_loss"], rel=1e-4)
    model = "distill/model/model.safetensors"
    close_weights(tmp_path / "one" / model, tmp_path / "ddp" / model, atol=1e-4)


@pytest.mark.slow
def test_a_killed_distill_resumes_to_the_same_weights(tiny_run, teacher, tmp_path):
    from tests.test_scale_out import close_weights, kill_when, popen

    url, train = teacher
    base = pretrain_tiny(tiny_run, "model.max_position_embeddings=256") / "checkpoints" / "step-000008"
    recipe = distill_recipe(tmp_path, url, train, base, epochs=3)
    lmforge("distill", recipe, "--run-dir", str(tmp_path / "a"))
    # killed in the step-by-step training, after the label-only one finished and was recorded
    state = tmp_path / "b" / "distill" / "resume" / "step_by_step-1" / "state.json"
    proc = popen(1, "distill", recipe, "--run-dir", str(tmp_path / "b"))
    kill_when(proc, lambda: state.is_file() and json.loads(state.read_text())["step"] >= 4)
    assert (tmp_path / "b" / "distill" / "runs" / "label-1.json").is_file()
    assert not (tmp_path / "b" / "distill" / "model").exists()
    lmforge("distill", recipe, "--run-dir", str(tmp_path / "b"))
    model = "distill/model/model.safetensors"
    close_weights(tmp_path / "a" / model, tmp_path / "b" / model, atol=0.0)  # bit-identical
    runs = [json.loads((tmp_path / n / "manifest.json").read_text())["stages"]["distill"]["results"] for n in "ab"]
    assert runs[0] == runs[1]
