"""`--backend vllm`: vLLM's OpenAI server decodes (GPUs, tensor parallel, paged attention), lmforge
stays the front (serve/upstream.py).

vLLM runs as a child process on the model's HF folder with its own settings
(`--tensor-parallel-size`, `--gpu-memory-utilization`, `--max-num-seqs` = max_batch). It listens on
no TCP port: only on a Unix socket in a private folder (mode 0700, removed at exit), behind a
random key that only this process holds, so nothing reaches the model around lmforge's key,
guardrails and metrics. Without vLLM installed, one line says how to get it.
"""

import importlib.util
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from lmforge.errors import ConfigError, LmforgeError

INSTALL = "--backend vllm needs vLLM (a Linux machine with a CUDA GPU): pip install vllm"


def start_vllm(
    folder: str,
    tensor_parallel_size: int = 1,
    gpu_memory_utilization: float = 0.9,
    max_batch: int = 8,
    max_waiting: int = 64,
    timeout_s: float = 1800,
):
    """An UpstreamBackend over a vLLM server started for `folder`; it stops vLLM when closed."""
    if importlib.util.find_spec("vllm") is None:
        raise ConfigError(INSTALL)
    from lmforge.models import load_tokenizer, resolve_model_dir
    from lmforge.serve.upstream import UpstreamBackend

    model_dir = str(resolve_model_dir(folder))
    private = Path(tempfile.mkdtemp(prefix="lmforge-vllm-"))
    os.chmod(private, 0o700)
    sock, key = private / "vllm.sock", secrets.token_urlsafe(32)
    cmd = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        model_dir,
        "--served-model-name",
        "lmforge",
        "--uds",
        str(sock),
        "--api-key",
        key,
        "--tensor-parallel-size",
        str(tensor_parallel_size),
        "--gpu-memory-utilization",
        str(gpu_memory_utilization),
        "--max-num-seqs",
        str(max_batch),
        "--disable-uvicorn-access-log",
    ]
    log = private / "vllm.log"  # vLLM's own log, read back when it fails to start
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)

    def tail() -> str:
        return " | ".join(log.read_text(errors="replace").splitlines()[-15:])

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(private, ignore_errors=True)

    http = httpx.Client(
        transport=httpx.HTTPTransport(uds=str(sock)),
        base_url="http://vllm",
        headers={"Authorization": f"Bearer {key}"},
        timeout=httpx.Timeout(600, connect=10),
    )
    end = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            message = f"vLLM exited while starting: {tail()}"
            stop()
            raise LmforgeError(message)
        try:
            if sock.exists() and http.get("/health").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > end:
            message = f"vLLM did not start within {timeout_s:.0f} s: {tail()}"
            stop()
            raise LmforgeError(message)
        time.sleep(1)
    context = http.get("/v1/models").json()["data"][0].get("max_model_len") or 2048
    return UpstreamBackend(
        http, "lmforge", load_tokenizer(model_dir), context, max_batch=max_batch, max_waiting=max_waiting, on_close=stop
    )
