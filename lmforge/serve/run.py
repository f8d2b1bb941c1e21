"""Start `lmforge serve`: load the model through the shared loader, pick the backend, bind uvicorn."""

import logging
import os
from pathlib import Path

from lmforge.errors import ConfigError


def model_alias(ref: str) -> str:
    """The name clients use in `model`: the folder, run or file name, never a path (request fields
    never name files)."""
    path = Path(ref)
    return path.stem if path.suffix == ".gguf" else (path.name or ref)


def build_backend(ref: str, backend: str, max_batch: int, max_waiting: int, dtype: str, threads: int | None):
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
        return TorchBackend(model, tokenizer, max_batch=max_batch, max_waiting=max_waiting)
    if backend == "llama.cpp":
        from lmforge.serve.llamacpp import LlamaCppBackend

        return LlamaCppBackend(ref, max_batch=max_batch, max_waiting=max_waiting, threads=threads)
    raise ConfigError(f"--backend {backend!r}: choose torch or llama.cpp")


def serve(ref: str, host: str = "127.0.0.1", port: int = 8000, backend: str = "torch", api_key: str | None = None,
          guardrails: str | None = None, max_batch: int = 8, max_waiting: int = 64, dtype: str = "auto",
          threads: int | None = None, name: str | None = None) -> None:
    import uvicorn

    from lmforge.serve.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    rails = None
    if guardrails:
        from lmforge.guardrails import load_rails

        rails = load_rails(guardrails)
    app = create_app(build_backend(ref, backend, max_batch, max_waiting, dtype, threads), name or model_alias(ref),
                     api_key=api_key or os.environ.get("LMFORGE_API_KEY") or None, guardrails=rails)
    print(f"serving {name or model_alias(ref)} ({backend}) on http://{host}:{port}/  (OpenAI API at /v1)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
