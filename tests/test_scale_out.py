"""Every training stage under torchrun (2 CPU processes, gloo): adapt, sft and dpo give the same loss
curve as one process with gradient accumulation 2, FSDP2 gives the same as DDP, the gathered result
is a plain HF folder / peft adapter, and a 2-process run killed with SIGKILL resumes to the same
weights. (pretrain's own: tests/test_pretrain.py.)"""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from tests.conftest import CORPUS, ROOT, lmforge
from tests.test_adapt import RECIPE as ADAPT_RECIPE

INSTR = ROOT / "examples" / "instructions"
PAIRS = ROOT / "examples" / "preferences"
ONE_THREAD = ["--set", "train.threads=1"]  # two processes on two cores


@pytest.fixture(scope="module")
def base(tiny_data, tmp_path_factory) -> Path:
    """A tiny pretrained model (8 steps) to tune."""
    from lmforge.recipe import load_recipe
    from lmforge.train import pretrain
    from tests.conftest import tiny_recipe

    tmp = tmp_path_factory.mktemp("scale_out")
    r = load_recipe(tiny_recipe(tmp, tiny_data), ["train.max_steps=8", "model.max_position_embeddings=256"])
    pretrain(r.model, r.train, tmp / "run", r.run.seed)
    return tmp / "run" / "checkpoints" / "step-000008"


def torchrun(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "lmforge"]
    proc = subprocess.run([*cmd, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert not check or proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def losses(run_dir: Path, stage: str, metrics: Path | None = None) -> dict[int, float]:
    rows = [json.loads(line) for line in (metrics or run_dir / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["stage"] == stage and "loss" in r]
    assert len({r["step"] for r in rows}) == len(rows)  # rank 0 alone logs, each step once
    return {r["step"]: r["loss"] for r in rows}


def same_curve(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b) and len(a) >= 4, (a, b)
    for step in a:
        assert b[step] == pytest.approx(a[step], rel=1e-4, abs=1e-5), step


def close_weights(a: Path, b: Path, atol: float) -> None:
    x, y = load_file(a), load_file(b)
    assert x.keys() == y.keys()
    worst = max((x[k] - y[k]).abs().max().item() for k in x)
    assert worst <= atol, worst


def tuning_recipe(folder: Path, stage: str, base: Path, method: str, epochs: float = 1) -> Path:
    data = (
        f'[[sft.datasets]]\npath = "{INSTR / "chat_de_heldout.jsonl"}"\n'
        if stage == "sft"
        else f'[[dpo.datasets]]\npath = "{PAIRS / "pairs.jsonl"}"\n'
    )
    epochs = epochs if stage == "sft" else epochs / 5  # 8 steps of 8 examples (x epochs)
    recipe = folder / f"{stage}-{method}.toml"
    recipe.write_text(
        f'[train]\nprecision = "fp32"\n[{stage}]\nmodel = "{base}"\nmethod = "{method}"\nlr = 2e-3\n'
        f'batch_size = 4\nepochs = {epochs}\nlog_every = 1\nprecision = "fp32"\nlora_rank = 4\n'
        f"checkpoint_every = 2\n{data}"
    )
    return recipe


def output(run: Path, stage: str) -> Path:
    return run / ("chat" if stage == "sft" else "dpo/model") / "model.safetensors"


@pytest.mark.slow
@pytest.mark.parametrize(("stage", "method"), [("sft", "full"), ("sft", "lora"), ("dpo", "full"), ("dpo", "lora")])
def test_two_processes_match_one_with_accumulation_and_fsdp2_matches_ddp(base, tmp_path, stage, method):
    recipe = tuning_recipe(tmp_path, stage, base, method)
    lmforge(stage, str(recipe), "--set", f"{stage}.grad_accum=2", "--run-dir", str(tmp_path / "one"))
    # train.nproc_per_node: lmforge relaunches itself under torchrun
    lmforge(stage, str(recipe), *ONE_THREAD, "--set", "train.nproc_per_node=2", "--run-dir", str(tmp_path / "ddp"))
    # with LoRA, the FSDP2 run also recomputes activations (the same curve either way)
    recompute = ["--set", f"train.activation_checkpointing={str(method == 'lora').lower()}"]
    torchrun(
        stage, str(recipe), *ONE_THREAD, *recompute, "--set", "train.fsdp=true", "--run-dir", str(tmp_path / "fsdp")
    )

    one, ddp, fsdp = (losses(tmp_path / n, stage) for n in ("one", "ddp", "fsdp"))
    same_curve(one, ddp)
    same_curve(ddp, fsdp)
    close_weights(output(tmp_path / "one", stage), output(tmp_path / "ddp", stage), atol=1e-4)
    close_weights(output(tmp_path / "ddp", stage), output(tmp_path / "fsdp", stage), atol=1e-4)
    for name in ("ddp", "fsdp"):
        s = json.loads((tmp_path / name / "manifest.json").read_text())["stages"][stage]
        assert s["world_size"] == 2 and s["steps"] == len(one)
        AutoModelForCausalLM.from_pretrained(output(tmp_path / name, stage).parent)  # a plain HF folder
        if method == "lora":
            from peft import PeftModel

            adapter = tmp_path / name / ("sft/adapter" if stage == "sft" else "dpo/adapter")
            tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter)
            merged = tuned.merge_and_unload().state_dict()
            saved = load_file(output(tmp_path / name, stage))
            assert all(torch.allclose(merged[k], saved[k], atol=1e-6) for k in saved)  # adapter = the merged model


@pytest.mark.slow
def test_llama_adapter_v2_on_two_processes_matches_one_with_accumulation(base, tmp_path):
    from lmforge.models import adapter_v2

    recipe = tuning_recipe(tmp_path, "sft", base, "adapter_v2")
    lmforge("sft", str(recipe), "--set", "sft.grad_accum=2", "--run-dir", str(tmp_path / "one"))
    lmforge("sft", str(recipe), *ONE_THREAD, "--set", "train.nproc_per_node=2", "--run-dir", str(tmp_path / "ddp"))
    same_curve(losses(tmp_path / "one", "sft"), losses(tmp_path / "ddp", "sft"))
    for file in (adapter_v2.FILE, "adapter_model.safetensors"):  # the units, and peft's gated prompts
        close_weights(*(tmp_path / n / "sft" / "adapter" / file for n in ("one", "ddp")), atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["kto", "orpo"])
def test_kto_and_orpo_on_two_processes_match_one_with_accumulation(base, tmp_path, loss):
    recipe = tuning_recipe(tmp_path, "dpo", base, "full")
    loss_set = ["--set", f"dpo.loss={loss}"]
    lmforge("dpo", str(recipe), *loss_set, "--set", "dpo.grad_accum=2", "--run-dir", str(tmp_path / "one"))
    lmforge(
        "dpo",
        str(recipe),
        *ONE_THREAD,
        *loss_set,
        "--set",
        "train.nproc_per_node=2",
        "--run-dir",
        str(tmp_path / "ddp"),
    )
    same_curve(losses(tmp_path / "one", "dpo"), losses(tmp_path / "ddp", "dpo"))
    close_weights(output(tmp_path / "one", "dpo"), output(tmp_path / "ddp", "dpo"), atol=1e-4)


def kill_when(proc: subprocess.Popen, ready, timeout: float = 300) -> None:
    """SIGKILL the launcher and every process under it (torchrun starts its workers in sessions of
    their own, so a killed launcher alone would leave them running) once `ready()` holds."""
    import psutil

    end = time.time() + timeout
    while not ready():
        assert proc.poll() is None and time.time() < end, proc.communicate()
        time.sleep(0.05)
    launcher = psutil.Process(proc.pid)
    everyone = [launcher, *launcher.children(recursive=True)]
    for p in everyone:
        p.send_signal(signal.SIGKILL)
    psutil.wait_procs(everyone, timeout=30)
    proc.wait()


def popen(nproc: int, *args: str) -> subprocess.Popen:
    """`lmforge ARGS` in one process, or under torchrun in `nproc`."""
    cmd = [sys.executable, "-m", "lmforge"]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *cmd[1:]]
    return subprocess.Popen([*cmd, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(nproc: int, *args: str) -> subprocess.CompletedProcess:
    return torchrun(*args) if nproc > 1 else lmforge(*args)


@pytest.mark.slow
@pytest.mark.parametrize(("stage", "method", "fsdp"), [("sft", "lora", False), ("dpo", "full", True)])
def test_a_killed_two_process_run_resumes_to_the_same_weights(base, tmp_path, stage, method, fsdp):
    recipe = tuning_recipe(tmp_path, stage, base, method, epochs=3)  # 24 steps: killed well before the end
    args = [stage, str(recipe), *ONE_THREAD, "--set", f"train.fsdp={str(fsdp).lower()}"]
    if stage == "sft":
        args += ["--set", "sft.lora_dropout=0.1"]  # each rank's own dropout masks must resume too
    torchrun(*args, "--run-dir", str(tmp_path / "a"))
    state = tmp_path / "b" / stage / "resume" / "state.json"
    proc = popen(2, *args, "--run-dir", str(tmp_path / "b"))
    kill_when(proc, lambda: state.is_file() and json.loads(state.read_text())["step"] >= 4)
    assert not output(tmp_path / "b", stage).exists()
    torchrun(*args, "--run-dir", str(tmp_path / "b"))
    s = json.loads((tmp_path / "b" / "manifest.json").read_text())["stages"][stage]
    assert s["resumed_from"] >= 4 and s["steps"] > s["resumed_from"]
    close_weights(output(tmp_path / "a", stage), output(tmp_path / "b", stage), atol=0.0)  # bit-identical


def adapt_recipe(folder: Path) -> Path:
    recipe = folder / "leo.toml"
    text = ADAPT_RECIPE.format(en=CORPUS / "en", de=CORPUS / "de", de_weight=0.75, en_weight=0.25)
    for old, new in (
        ("max_steps = 120", "max_steps = 30"),
        ("tokens = 50000", "tokens = 12288"),
        ('target_language = "de"', 'target_language = "de"\nmax_docs = 20'),
        ("threads = 2", 'threads = 2\nprecision = "fp32"'),  # curves compared to 1e-4: not bf16 on a bf16 CPU
    ):
        text = text.replace(old, new)
    recipe.write_text(text)
    return recipe


@pytest.fixture(scope="module")
def adapt_base(tmp_path_factory) -> tuple[Path, Path]:
    """The LeoLM-direction recipe (smaller budgets) and a run directory pretrained on English."""
    tmp = tmp_path_factory.mktemp("adapt_scale_out")
    recipe = adapt_recipe(tmp)
    run = tmp / "base"
    lmforge("run", str(recipe), "--set", "run.stages=['tokenizer','tokenize','pretrain']", "--run-dir", str(run))
    return recipe, run


def adapt_copy(adapt_base, tmp_path: Path, name: str) -> Path:
    import shutil

    shutil.copytree(adapt_base[1], tmp_path / name)
    return tmp_path / name


@pytest.mark.slow
def test_adapt_on_two_processes_matches_one_with_accumulation_and_fsdp2_matches_ddp(adapt_base, tmp_path):
    recipe = str(adapt_base[0])
    one, ddp, fsdp = (adapt_copy(adapt_base, tmp_path, n) for n in ("one", "ddp", "fsdp"))
    every = ["--set", "train.log_every=1", "--set", "train.micro_batch_size=4"]
    lmforge("adapt", recipe, *every, "--set", "train.grad_accum=2", "--run-dir", str(one))
    lmforge("adapt", recipe, *every, *ONE_THREAD, "--set", "train.nproc_per_node=2", "--run-dir", str(ddp))
    torchrun("adapt", recipe, *every, *ONE_THREAD, "--set", "train.fsdp=true", "--run-dir", str(fsdp))
    for phase in ("german", "long"):
        curves = [losses(r, "pretrain", r / "adapt" / phase / "metrics.jsonl") for r in (one, ddp, fsdp)]
        same_curve(curves[0], curves[1])
        same_curve(curves[1], curves[2])
    close_weights(one / "adapted" / "model.safetensors", ddp / "adapted" / "model.safetensors", atol=1e-4)
    close_weights(ddp / "adapted" / "model.safetensors", fsdp / "adapted" / "model.safetensors", atol=1e-4)
    for r in (ddp, fsdp):
        s = json.loads((r / "manifest.json").read_text())["stages"]["adapt"]
        assert s["world_size"] == 2 and [p["steps"] for p in s["phases"]] == [24, 4]
        assert s["after"]["bits_per_byte"]["de"] < s["before"]["bits_per_byte"]["de"]  # measured once, by rank 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("nproc", "when"), [(1, "between phases"), (2, "inside a phase"), (2, "between phases")]
)  # one process inside a phase: tests/test_adapt.py
def test_a_killed_adapt_resumes_to_the_same_weights(adapt_base, tmp_path, nproc, when):
    recipe = str(adapt_base[0])
    a, b = adapt_copy(adapt_base, tmp_path, "a"), adapt_copy(adapt_base, tmp_path, "b")
    args = ["adapt", recipe, *(ONE_THREAD if nproc > 1 else []), "--set", "train.checkpoint_every=8"]
    args += ["--set", "train.micro_batch_size=4"]  # the first phase: 48 steps on one process, 24 on two
    finish(nproc, *args, "--run-dir", str(a))
    german = b / "adapt" / "german" / "checkpoints" / "latest"
    long = b / "adapt" / "long"
    if when == "inside a phase":
        ready = lambda: german.is_file() and german.read_text().strip() >= "step-000008"  # noqa: E731
    else:  # the first phase is finished, the second has not checkpointed yet
        ready = lambda: long.is_dir()  # noqa: E731
    kill_when(popen(nproc, *args, "--run-dir", str(b)), ready)
    last = 48 // nproc
    if when == "inside a phase":  # the kill landed where it was meant to
        assert german.read_text().strip() < f"step-{last:06d}"
    else:
        assert german.read_text().strip() == f"step-{last:06d}" and not (long / "checkpoints" / "latest").exists()
    assert not (b / "adapted").exists()
    out = finish(nproc, *args, "--run-dir", str(b)).stdout
    assert "resuming from step-0000" in out
    close_weights(a / "adapted" / "model.safetensors", b / "adapted" / "model.safetensors", atol=0.0)


@pytest.mark.parametrize("stage", ["adapt", "sft", "dpo"])
def test_fsdp_with_one_process_is_one_line_naming_the_key(base, tmp_path, stage):
    recipe = tuning_recipe(tmp_path, "sft" if stage == "adapt" else stage, base, "lora")
    proc = lmforge(stage, str(recipe), "--set", "train.fsdp=true", "--run-dir", str(tmp_path / "r"), check=False)
    assert proc.returncode == 2 and "train.fsdp needs several processes" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "r" / stage).exists()


def test_a_steps_micro_batches_have_similar_lengths():
    """Length-grouped batches come in runs of one step's micro-batches (accumulation x processes),
    so the processes of a step wait little for each other; every example is in one batch."""
    import random

    from lmforge.chat.encoding import length_groups

    lengths = [random.Random(i).randint(5, 500) for i in range(640)]
    for together in (1, 2, 4):
        groups = length_groups(lengths, 8, 0, 0, together)
        assert sorted(i for g in groups for i in g) == list(range(640))
        steps = [groups[i : i + together] for i in range(0, len(groups), together)]
        spread = sum(
            max(max(lengths[i] for i in g) for g in s) - min(max(lengths[i] for i in g) for g in s) for s in steps
        )
        if together == 1:
            assert spread == 0
        else:  # a step's longest rows differ by a small part of the range (random steps: about half)
            assert spread / len(steps) < 0.15 * 495
    assert length_groups(lengths, 8, 0, 0, 1) == length_groups(lengths, 8, 0, 0)  # one process: as before


def test_eval_on_two_processes_gathers_what_one_process_scores(base, tmp_path):
    """`torchrun ... -m lmforge eval`: items of a multiple-choice task, a generative task (sampled,
    so the seeds must follow the items) and the held-out windows are split over two processes;
    rank 0 writes results equal to one process's."""
    tasks = ROOT / "examples" / "tasks"
    sampled = tmp_path / "qa_sampled_en.toml"  # the shipped QA sample, answered twice at temperature 0.8
    text = (tasks / "qa_sample_en.toml").read_text().replace('"qa_sample_en', f'"{tasks}/qa_sample_en')
    sampled.write_text(text + "temperature = 0.8\nsamples = 2\n")
    args = [
        "eval",
        str(base),
        "-t",
        str(tasks / "hellaswag_sample_de.toml"),
        "-t",
        str(sampled),
        "--bpb",
        f"de={CORPUS / 'de' / 'heldout.jsonl'}",
        "--limit",
        "11",
        "--set",
        "eval.max_docs=7",
    ]
    lmforge(*args, "--run-dir", str(tmp_path / "one"))
    torchrun(*args, "--run-dir", str(tmp_path / "two"))
    one, two = (json.loads((tmp_path / r / "eval" / "results.json").read_text()) for r in ("one", "two"))
    for a, b in zip(one["tasks"], two["tasks"]):
        assert a["task"] == b["task"] and a["items"] == b["items"] == 11
        assert a["per_item"] == b["per_item"]
        assert a.get("replies") == b.get("replies")
        if "loglikelihoods" in a:
            for x, y in zip(a["loglikelihoods"], b["loglikelihoods"]):
                assert y == pytest.approx(x, abs=1e-4)
    x, y = one["bits_per_byte"]["de"], two["bits_per_byte"]["de"]
    assert x["docs"] == y["docs"] == 7 and x["tokens"] == y["tokens"]
    assert y["bits_per_byte"] == pytest.approx(x["bits_per_byte"], rel=1e-5)
    assert one["aggregate"]["de"]["value"] == two["aggregate"]["de"]["value"]
