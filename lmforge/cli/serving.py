"""Verbs that put a model in front of people and tools: `chat`, `serve`, `guardrails check`."""

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from lmforge.cli.common import ModelArg, console
from lmforge.errors import LmforgeError
from lmforge.recipe.schema import SAMPLING_DEFAULTS

guardrails_app = typer.Typer(help="Topical guardrails.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command()(chat)
    app.command()(serve)
    app.add_typer(guardrails_app, name="guardrails")
    guardrails_app.command("check")(guardrails_check)


def chat(
    model: ModelArg,
    prompt: Annotated[Optional[str], typer.Option("--prompt", "-p", help="Answer this once and exit.")] = None,
    system: Annotated[Optional[str], typer.Option(help="System prompt.")] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", "--max-tokens")] = SAMPLING_DEFAULTS[
        "max_new_tokens"
    ],
    temperature: Annotated[float, typer.Option(help="0 = greedy.")] = SAMPLING_DEFAULTS["temperature"],
    top_k: Annotated[int, typer.Option()] = SAMPLING_DEFAULTS["top_k"],
    top_p: Annotated[float, typer.Option()] = SAMPLING_DEFAULTS["top_p"],
    seed: Annotated[int, typer.Option()] = 0,
    guardrails: Annotated[
        Optional[Path], typer.Option(help="Topical rails file: refused messages never reach the model.")
    ] = None,
):
    """Talk to a model: streaming replies, history, /reset, /exit. Non-interactive with --prompt or piped stdin."""
    from lmforge.chat.session import make_engine
    from lmforge.chat.terminal import answer_once, interactive
    from lmforge.engine import SamplingParams
    from lmforge.models import load_model_and_tokenizer

    sampling = SamplingParams(max_new_tokens, temperature, top_k, top_p, seed)  # checked before the model loads
    rails = None
    if guardrails:
        from lmforge.guardrails import load_rails

        rails = load_rails(guardrails)
    engine = make_engine(*load_model_and_tokenizer(model))
    if prompt is None and not sys.stdin.isatty():
        prompt = sys.stdin.read().strip()
    if prompt is not None:
        answer_once(engine, prompt, system, sampling, rails)
    else:
        interactive(engine, system, sampling, rails)


def serve(
    model: ModelArg,
    host: Annotated[
        str, typer.Option(help="Address to bind; 0.0.0.0 exposes the server to the network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    backend: Annotated[
        str, typer.Option(help="torch (lmforge's decode engine), llama.cpp (GGUF files) or vllm (GPUs).")
    ] = "torch",
    api_key: Annotated[
        Optional[str], typer.Option(help="Require 'Authorization: Bearer KEY' on /v1/* (default: $LMFORGE_API_KEY).")
    ] = None,
    guardrails: Annotated[Optional[Path], typer.Option(help="Topical rails file (.toml/.yaml).")] = None,
    max_batch: Annotated[int, typer.Option(help="Requests decoded together.")] = 8,
    max_waiting: Annotated[int, typer.Option(help="Queued requests beyond the batch; more get 429.")] = 64,
    prefix_cache_mb: Annotated[
        int,
        typer.Option(help="torch backend: memory for recent prompts' K/V, reused by prompts that begin alike; 0: off."),
    ] = 1024,
    dtype: Annotated[
        str, typer.Option(help="torch backend weights: auto (bf16 where the chip has bf16 math), fp32 or bf16.")
    ] = "auto",
    threads: Annotated[Optional[int], typer.Option(help="CPU threads.")] = None,
    name: Annotated[Optional[str], typer.Option(help="Model name clients use (default: the folder/file name).")] = None,
    grace_period: Annotated[
        float, typer.Option(help="Seconds a SIGTERM/SIGINT waits for connections to close after ending every request.")
    ] = 5.0,
    metrics_public: Annotated[bool, typer.Option(help="Serve GET /metrics (Prometheus) without the API key.")] = False,
    tensor_parallel_size: Annotated[int, typer.Option(help="vllm backend: GPUs one model is split over.")] = 1,
    gpu_memory_utilization: Annotated[
        float, typer.Option(help="vllm backend: share of each GPU's memory vLLM may take.")
    ] = 0.9,
):
    """Serve a model over the OpenAI API (chat and completions, streamed or not) with a web chat page at /."""
    from lmforge.serve.run import serve as run_server

    if dtype not in ("auto", "fp32", "bf16"):
        raise LmforgeError(f"--dtype {dtype!r}: choose auto, fp32 or bf16")
    if prefix_cache_mb < 0:
        raise LmforgeError(f"--prefix-cache-mb {prefix_cache_mb}: must be 0 (off) or more")
    if grace_period < 0:
        raise LmforgeError(f"--grace-period {grace_period}: must be 0 or more seconds")
    run_server(
        model,
        host,
        port,
        backend,
        api_key,
        str(guardrails) if guardrails else None,
        max_batch,
        max_waiting,
        dtype,
        threads,
        name,
        grace_period,
        metrics_public,
        tensor_parallel_size,
        gpu_memory_utilization,
        prefix_cache_mb,
    )


def guardrails_check(
    rails: Annotated[Path, typer.Argument(help="Rails file (.toml/.yaml).")],
    labelled: Annotated[Path, typer.Option("--labelled", help='JSONL of {"text", "topic": NAME or null}.')],
):
    """Precision and recall per topic on labelled prompts, and the threshold that would balance them."""
    from lmforge.guardrails import check, load_rails, read_labelled

    r = load_rails(rails)
    texts, labels = read_labelled(labelled)
    res = check(r, texts, labels)
    console.print(f"{len(texts)} prompts, embedder {r.embedder_name}, mode {r.mode}")
    console.print("topic                 action  n   threshold  precision  recall   balanced at  (P / R)")
    for row in res["topics"]:
        console.print(
            f"{row['topic']:<21} {row['action']:<7} {row['support']:<3} {row['threshold']:>9.3f}  "
            f"{row['precision']:>9.1%}  {row['recall']:>6.1%}   {row['balanced_threshold']:>10.3f}  "
            f"({row['balanced_precision']:.1%} / {row['balanced_recall']:.1%})"
        )
    console.print(
        f"refuse/pass accuracy {res['accuracy']:.1%}; macro precision {res['macro_precision']:.1%}, "
        f"macro recall {res['macro_recall']:.1%}"
    )
