"""Shared fixtures: a tiny tokenizer + packed dataset built from the shipped sample corpus."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "examples" / "corpus"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def corpus_subset(tmp: Path, lang: str, split: str, n: int) -> Path:
    lines = (CORPUS / lang / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()[:n]
    out = tmp / f"{lang}-{split}.jsonl"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


TINY_RECIPE = """
[run]
name = "tiny"
seed = 7
stages = ["pretrain"]

[model]
hidden_size = 32
num_layers = 2
num_heads = 4
num_kv_heads = 2

[train]
seq_len = 32
micro_batch_size = 4
max_steps = 12
lr = 3e-3
warmup_steps = 2
checkpoint_every = 4
log_every = 1
eval_every = 6
eval_batches = 2
threads = 1
precision = "fp32"
"""


# The longest test files (minutes each) start first, so that no worker is left with one at the end.
FIRST = ("test_demo", "test_readme", "test_scale_out", "test_adapt", "test_families", "test_memory_plan")


def pytest_collection_modifyitems(config, items):
    """`make test` hands tests to two xdist workers in this order (`--dist load`): the long ones
    first. A worker that needs a module fixture builds its own; the session's `demo` is built
    once for all (it locks)."""
    items.sort(key=lambda item: FIRST.index(item.path.stem) if item.path.stem in FIRST else len(FIRST))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A run directory holding a trained tokenizer and tokenized train/val splits (built once)."""
    from lmforge.data import run_tokenize_stage
    from lmforge.recipe import TokenizeConfig, TokenizerConfig
    from lmforge.tokenizer import run_tokenizer_stage

    tmp = tmp_path_factory.mktemp("tiny")
    en, de = corpus_subset(tmp, "en", "train", 150), corpus_subset(tmp, "de", "train", 150)
    en_val, de_val = corpus_subset(tmp, "en", "heldout", 20), corpus_subset(tmp, "de", "heldout", 20)
    run = tmp / "base"
    run_tokenizer_stage(
        TokenizerConfig(
            inputs=[str(en), str(de)], vocab_size=512, fertility_texts={"en": str(en_val), "de": str(de_val)}
        ),
        run,
    )
    run_tokenize_stage(TokenizeConfig(train=[str(en), str(de)], val=[str(en_val), str(de_val)]), run)
    return run


def tiny_recipe(folder: Path, tiny_data: Path) -> Path:
    """The tiny recipe file in `folder`, reading the shared tokens."""
    recipe = folder / "tiny.toml"
    recipe.write_text(
        TINY_RECIPE + f'data = "{tiny_data / "tokens" / "train"}"\nval_data = "{tiny_data / "tokens" / "val"}"\n'
    )
    return recipe


@pytest.fixture
def tiny_run(tiny_data: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A fresh run directory pointing at the shared tokens, plus the tiny recipe file."""
    return tmp_path / "run", tiny_recipe(tmp_path, tiny_data)


def lmforge(
    *args: str, cwd: Path = ROOT, env: dict | None = None, check: bool = True, timeout: int = 600
) -> subprocess.CompletedProcess:
    """Run the CLI in a subprocess, the way a user does."""
    proc = subprocess.run(
        [sys.executable, "-m", "lmforge", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"lmforge {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def pretrain_tiny(tiny_run: tuple[Path, Path], *overrides: str) -> Path:
    """Pretrain the tiny recipe for 8 steps in the fresh run directory (checkpoints 0, 1, 2, 4, 8)."""
    from lmforge.recipe import load_recipe
    from lmforge.train import pretrain

    run_dir, recipe_path = tiny_run
    r = load_recipe(recipe_path, ["train.max_steps=8", *overrides])
    pretrain(r.model, r.train, run_dir, r.run.seed)
    return run_dir


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(url: str, **kw) -> dict[tuple[str, tuple], float]:
    """A server's `GET /metrics`, parsed by prometheus-client: {(sample name, sorted labels): value}."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    r = httpx.get(url + "/metrics", timeout=30, **kw)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain"), r.text
    families = text_string_to_metric_families(r.text)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


class LiveServer:
    """`lmforge serve ...` in a subprocess on 127.0.0.1, stopped on exit; waits until /health answers."""

    def __init__(self, *args: str, timeout: float = 300):
        import time

        import httpx

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lmforge", "serve", *args, "--port", str(self.port)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.proc.stdout.read()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        self.stop()
        raise AssertionError("server did not start")

    def stop(self) -> str:
        self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out or ""


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> tuple[Path, str]:
    """`make demo` as the README says it, once per test run, in a fresh `runs/demo` of the checkout
    (the README's commands and the demo's own test read it): the run directory and what it printed (stdout, then stderr).

    Under pytest-xdist each worker has its own session, so the first worker to ask runs the demo under a lock
    and the others read what it printed: two demos writing one `runs/demo` would break both."""
    from filelock import FileLock

    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run_id is None:
        return make_demo()
    shared = tmp_path_factory.getbasetemp().parent  # the same folder for every worker of this run
    with FileLock(shared / "demo.lock"):
        printed = shared / f"demo-{run_id}.out"
        if not printed.is_file():
            printed.write_text(make_demo()[1])
        return ROOT / "runs" / "demo", printed.read_text()


def make_demo() -> tuple[Path, str]:
    import shutil

    shutil.rmtree(ROOT / "runs" / "demo", ignore_errors=True)
    proc = subprocess.run(
        ["make", "demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"},
    )
    assert proc.returncode == 0, f"make demo failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return ROOT / "runs" / "demo", proc.stdout + proc.stderr


def stage_result_types() -> dict:
    """Each stage's declared result type (what it returns and the manifest records)."""
    from lmforge.adapt.stage import AdaptResult
    from lmforge.curate.stage import CurateResult
    from lmforge.data.tokenize import TokenizeResult
    from lmforge.decontaminate.stage import DecontaminateResult
    from lmforge.distill.stage import DistillResult
    from lmforge.dpo.stage import DpoResult
    from lmforge.eval.stage import EvalResult
    from lmforge.export.stage import ExportResult
    from lmforge.generate.sample import GenerateResult
    from lmforge.judge.stage import JudgeResult
    from lmforge.merge.stage import MergeResult
    from lmforge.release.build import ReleaseResult
    from lmforge.reverse_instruct.stage import ReverseInstructResult
    from lmforge.self_instruct.stage import SelfInstructResult
    from lmforge.sft.stage import SftResult
    from lmforge.tokenizer.train_bpe import TokenizerResult
    from lmforge.train.pretrain import PretrainResult
    from lmforge.translate.stage import TranslateResult

    return {
        "curate": CurateResult,
        "tokenizer": TokenizerResult,
        "tokenize": TokenizeResult,
        "pretrain": PretrainResult,
        "adapt": AdaptResult,
        "eval": EvalResult,
        "generate": GenerateResult,
        "sft": SftResult,
        "dpo": DpoResult,
        "judge": JudgeResult,
        "translate": TranslateResult,
        "self_instruct": SelfInstructResult,
        "release": ReleaseResult,
        "export": ExportResult,
        "merge": MergeResult,
        "reverse_instruct": ReverseInstructResult,
        "distill": DistillResult,
        "decontaminate": DecontaminateResult,
    }


def assert_stage_results_typed(manifest: dict) -> None:
    """Every stage entry of a manifest is its declared result type: the required keys, no key the
    type does not declare, every value of its declared type (besides the manifest's own timing)."""
    from pydantic import TypeAdapter

    types = stage_result_types()
    for stage, entry in manifest["stages"].items():
        declared = types[stage]
        body = {k: v for k, v in entry.items() if k not in ("started", "wall_s")}
        assert set(body) <= set(declared.__annotations__), (stage, set(body) - set(declared.__annotations__))
        assert declared.__required_keys__ <= set(body), (stage, declared.__required_keys__ - set(body))
        TypeAdapter(declared).validate_python(body)
