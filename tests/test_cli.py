"""The CLI as a user meets it: help, one-line errors with a non-zero exit, plan, generate."""

import pytest

from lmforge.errors import ConfigError
from lmforge.plan import plan_for_compute, plan_for_params
from tests.conftest import lmforge, write_jsonl

VERBS = [
    "curate",
    "tokenizer train",
    "tokenize",
    "pretrain",
    "adapt",
    "eval",
    "generate",
    "sft",
    "dpo",
    "plan",
    "judge",
    "chat",
    "serve",
    "guardrails check",
    "translate",
    "self-instruct",
    "release",
    "export gguf",
    "run",
    "launch slurm",
]


def test_help_lists_every_verb_and_each_verb_has_help():
    from typer.testing import CliRunner

    from lmforge.cli import app

    listed = CliRunner().invoke(app, ["--help"])
    assert listed.exit_code == 0
    for verb in VERBS:
        assert verb.split()[0] in listed.output, verb
        own = CliRunner().invoke(app, [*verb.split(), "--help"])
        assert own.exit_code == 0 and "Usage" in own.output and "--help" in own.output, (verb, own.output[-300:])


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "missing.toml"], "missing.toml: recipe file not found"),
        (["pretrain", "--set", "train.lrr=1"], "unknown key 'train.lrr'"),
        (["plan", "--flops", "1e20", "--gpu", "Z80"], "unknown GPU 'Z80'"),
        (["generate", "no/such/model"], "no/such/model: no such model folder, run, GGUF file or Hub id"),
    ],
)
def test_user_errors_are_one_line_without_traceback(args, message):
    proc = lmforge(*args, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {proc.stderr.strip()[7:]}"]
    assert message in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["judge", "--questions", "question.jsonl"],
            "--questions 'question.jsonl': expected LANG=FILE, e.g. --questions de=file.jsonl",
        ),
        (["judge", "--baseline-answers", "=a.jsonl"], "--baseline-answers '=a.jsonl': expected LANG=FILE"),
        (["eval", "some/model", "--bpb", "heldout.jsonl"], "--bpb 'heldout.jsonl': expected LANG=FILE"),
        (
            ["translate", "--input", 'we\\ird "name".jsonl', "--endpoint", "http://127.0.0.1:9/v1"],
            'translate.inputs: we\\ird "name".jsonl: no such file',
        ),  # the value as typed: no quoting, no escapes
    ],
)
def test_flag_values_arrive_as_typed_and_bad_ones_fail_in_one_line(args, message, tmp_path):
    proc = lmforge(*args, "--run-dir", str(tmp_path / "run"), check=False, cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_a_lora_target_that_is_not_in_the_model_names_the_stage_key(tiny_run):
    from lmforge.models import load_model_and_tokenizer
    from lmforge.recipe import DpoConfig, SftConfig
    from lmforge.train.tuning import attach_method
    from tests.conftest import pretrain_tiny

    model, _ = load_model_and_tokenizer(pretrain_tiny(tiny_run))
    for cfg, key in (
        (SftConfig(lora_targets=["qkv"]), "sft.lora_targets"),
        (DpoConfig(lora_targets=["qkv"]), "dpo.lora_targets"),
    ):
        with pytest.raises(
            ConfigError,
            match=rf"{key}: none of \['qkv'\] is a linear layer of this model; its linear "
            r"layers are \[.*'q_proj'",
        ):
            attach_method(model, cfg, key.split(".")[0])


def test_malformed_jsonl_reports_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n\n{"text": "also fine"}\n{oops}\n')
    proc = lmforge("tokenizer", "train", "--input", str(bad), "--run-dir", str(tmp_path / "r"), check=False)
    assert proc.returncode == 2 and f"{bad}:4: malformed JSON" in proc.stderr and "Traceback" not in proc.stderr


def test_chinchilla_plan_reproduces_the_paper():
    # Chinchilla itself: 70B parameters on 1.4T tokens, about 5.9e23 FLOPs.
    p = plan_for_compute(6 * 70e9 * 1.4e12)
    assert p.params == pytest.approx(70e9, rel=1e-9) and p.tokens == pytest.approx(1.4e12, rel=1e-9)
    assert 1.9 < p.predicted_loss < 2.0  # the fitted law's loss at that point
    q = plan_for_params(125e6, gpu="H100-SXM", num_gpus=1, mfu=0.5)
    assert q.tokens == 2.5e9 and q.hours == pytest.approx(6 * 125e6 * 2.5e9 / (989e12 * 0.5) / 3600)
    with pytest.raises(ConfigError):
        plan_for_params(1e6, mfu=1.5)


def test_plan_cli_for_a_recipe(tmp_path):
    from tests.conftest import ROOT

    out = lmforge("plan", str(ROOT / "recipes" / "demo.toml"), "--gpu", "A100").stdout
    assert "tokens" in out and "on 1x A100" in out


def test_tokenize_and_generate_from_the_cli(tiny_data, tiny_run):
    run_dir, recipe = tiny_run
    lmforge("pretrain", str(recipe), "--run-dir", str(run_dir), "--set", "train.max_steps=3")
    greedy = [
        lmforge("generate", str(run_dir), "-p", "Am Morgen", "--temperature", "0", "--max-new-tokens", "8").stdout
        for _ in range(2)
    ]
    assert greedy[0] == greedy[1] and greedy[0].startswith("Am Morgen")
    seeded = [
        lmforge("generate", str(run_dir), "-p", "The", "--seed", str(s), "--max-new-tokens", "12").stdout
        for s in (1, 1, 2)
    ]
    assert seeded[0] == seeded[1]


def test_tokenize_cli_with_own_inputs(tiny_data, tmp_path):
    docs = write_jsonl(tmp_path / "d.jsonl", [{"text": "Der Hafen ist still."}, {"text": "The harbour is quiet."}])
    out = lmforge(
        "tokenize", "--input", str(docs), "--tokenizer", str(tiny_data / "tokenizer"), "--run-dir", str(tmp_path / "r")
    ).stdout
    assert "train: 2 documents" in out


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--max-new-tokens", "0", "max_tokens must be at least 1 (got 0)"),
        ("--temperature", "-0.5", "temperature must be 0 (greedy) or more (got -0.5)"),
        ("--top-p", "0", "top_p must be in (0, 1] (got 0.0)"),
        ("--top-p", "1.5", "top_p must be in (0, 1] (got 1.5)"),
    ],
)
def test_bad_sampling_options_fail_in_one_line_before_loading(option, value, message, tmp_path):
    proc = lmforge("chat", str(tmp_path / "no-model-needed"), "--prompt", "hi", option, value, check=False, timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: {message}"


def test_an_exception_inside_generation_ends_the_stream_with_an_error(tiny_run):
    import time

    from lmforge.chat.session import GenerationError, make_engine, reply
    from lmforge.engine import SamplingParams
    from lmforge.models import load_model_and_tokenizer
    from tests.conftest import pretrain_tiny

    model, tok = load_model_and_tokenizer(pretrain_tiny(tiny_run))
    calls = {"n": 0}
    embed = model.model.embed_tokens  # once per prefill and per decode step, on every step path
    forward = embed.forward

    def failing_forward(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # after two streamed tokens
            raise RuntimeError("device lost")
        return forward(*args, **kwargs)

    embed.forward = failing_forward
    seen, started = [], time.time()
    with pytest.raises(GenerationError, match="generation failed: RuntimeError: device lost"):
        reply(
            make_engine(model, tok),
            [{"role": "user", "content": "Hallo"}],
            SamplingParams(max_tokens=20, temperature=0),
            seen.append,
        )
    assert time.time() - started < 1.0 and calls["n"] == 3


@pytest.mark.parametrize("loud", [False, True])
def test_quiet_by_default_and_verbose_brings_library_warnings_back(loud, tmp_path):
    """A library's FutureWarning (transformers' deprecations) is hidden by default and shown with
    --verbose, in lmforge's own process and in the children it starts (torchrun workers, pools)."""
    import os
    import subprocess
    import sys

    script = (
        "import sys, subprocess, warnings\n"
        "from lmforge import logs\n"
        f"logs.configure(loud={loud})\n"
        "warnings.warn('parent noise', FutureWarning)\n"
        "subprocess.run([sys.executable, '-c', \"import warnings; warnings.warn('child noise', FutureWarning)\"])\n"
    )
    environ = {k: v for k, v in os.environ.items() if k not in ("LMFORGE_LOG", "PYTHONWARNINGS")}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environ, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert ("parent noise" in proc.stderr) is loud and ("child noise" in proc.stderr) is loud, proc.stderr


def test_verbose_flag_is_accepted_before_any_verb(tmp_path):
    proc = lmforge("--verbose", "plan", "--params", "1e8", check=False)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
