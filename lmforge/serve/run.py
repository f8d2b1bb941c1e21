"""Start `lmforge serve`: load the model through the shared loader, pick the backend, bind uvicorn,
and stop cleanly.

On SIGTERM or SIGINT the server stops accepting connections and ends every running and queued
request at once (streams get an error event, the others a 503), waits at most `grace_s` for the
connections to close, frees the engine or llama.cpp, and exits with status 0. uvicorn alone would
wait for every request to finish, and a non-streamed request whose client left decodes to its
`max_tokens` (minutes) while the process looks stopped.
"""

import asyncio
import logging
import os
import signal
from pathlib import Path

import uvicorn

from lmforge.errors import ConfigError


def model_alias(ref: str) -> str:
    """The name clients use in `model`: the folder, run or file name, never a path (request fields
    never name files)."""
    path = Path(ref)
    return path.stem if path.suffix == ".gguf" else (path.name or ref)


def build_backend(
    ref: str,
    backend: str,
    max_batch: int,
    max_waiting: int,
    dtype: str,
    threads: int | None,
    tensor_parallel_size: int = 1,
    gpu_memory_utilization: float = 0.9,
    prefix_cache_mb: int = 1024,
):
    if backend == "torch":
        import torch

        from lmforge.models import load_model_and_tokenizer
        from lmforge.serve.backends import TorchBackend

        if threads:
            torch.set_num_threads(threads)
        if dtype == "auto":  # bf16 weights halve the bytes read per token where the chip has bf16 math
            from lmforge.train.precision import use_bf16

            dtype = "bf16" if use_bf16("auto", torch.device("cuda" if torch.cuda.is_available() else "cpu")) else "fp32"
        kwargs = {"dtype": {"bf16": torch.bfloat16, "fp32": torch.float32}[dtype]}
        model, tokenizer = load_model_and_tokenizer(ref, **kwargs)
        return TorchBackend(model, tokenizer, max_batch, max_waiting, prefix_cache_mb)
    if backend == "llama.cpp":
        from lmforge.serve.llamacpp import LlamaCppBackend

        return LlamaCppBackend(ref, max_batch=max_batch, max_waiting=max_waiting, threads=threads)
    if backend == "vllm":
        from lmforge.serve.vllm import start_vllm

        return start_vllm(ref, tensor_parallel_size, gpu_memory_utilization, max_batch, max_waiting)
    raise ConfigError(f"--backend {backend!r}: choose torch, llama.cpp or vllm")


def serve(
    ref: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    backend: str = "torch",
    api_key: str | None = None,
    guardrails: str | None = None,
    max_batch: int = 8,
    max_waiting: int = 64,
    dtype: str = "auto",
    threads: int | None = None,
    name: str | None = None,
    grace_s: float = 5.0,
    metrics_public: bool = False,
    tensor_parallel_size: int = 1,
    gpu_memory_utilization: float = 0.9,
    prefix_cache_mb: int = 1024,
) -> None:
    from lmforge.serve.app import begin_shutdown, create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    rails = None
    if guardrails:
        from lmforge.guardrails import load_rails

        rails = load_rails(guardrails)
    engine = build_backend(
        ref,
        backend,
        max_batch,
        max_waiting,
        dtype,
        threads,
        tensor_parallel_size,
        gpu_memory_utilization,
        prefix_cache_mb,
    )
    app = create_app(
        engine,
        name or model_alias(ref),
        api_key=api_key or os.environ.get("LMFORGE_API_KEY") or None,
        guardrails=rails,
        metrics_public=metrics_public,
    )
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=grace_s)
    server = _Server(config, lambda: begin_shutdown(app))
    print(f"serving {name or model_alias(ref)} ({backend}) on http://{host}:{port}/  (OpenAI API at /v1)", flush=True)
    # uvicorn re-raises the signal it caught once it has shut down, with the handler that was there
    # before it: with this one that ends nothing, and the process exits 0 after freeing the backend
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, server.handle_exit)
    try:
        server.run()
    finally:
        engine.close()
    print("server stopped", flush=True)


class _Server(uvicorn.Server):
    """uvicorn's server, told to end the requests as soon as a signal asks it to stop."""

    def __init__(self, config: uvicorn.Config, on_exit):
        super().__init__(config)
        self.on_exit, self.loop = on_exit, None

    async def serve(self, sockets=None):
        self.loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig, frame):
        first = not self.should_exit
        super().handle_exit(sig, frame)
        if first and self.loop is not None:
            self.loop.call_soon_threadsafe(self.on_exit)  # a signal handler must not touch the engine itself
