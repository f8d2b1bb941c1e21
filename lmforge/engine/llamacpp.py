"""llama.cpp inside this process (the `xllamacpp` wheel's prebuilt CPU build), reachable by nobody else.

xllamacpp runs llama.cpp's own server code in a thread of this process; `handle_completions` calls
its completion handler without HTTP. It always starts llama.cpp's HTTP server too, whose routes
(completions included) would bypass lmforge's API key and guardrails: it therefore listens on no
TCP port at all, only on a Unix socket inside a private directory (mode 0700, removed on close),
behind a random key that only this object holds; `http` is a client for those routes (tokenize,
apply-template, completion). llama.cpp installs its own SIGINT/SIGTERM handlers while starting;
they are put back to Python's, so that shutting down stays lmforge's decision. Its per-request
logs are off unless LMFORGE_LOG=debug. The serve backend and the GGUF export check both use it.
"""

import os
import secrets
import shutil
import signal
import tempfile
import threading
from pathlib import Path

import httpx

from lmforge.errors import ConfigError


class LlamaServer:
    def __init__(self, gguf: str | Path, slots: int = 1, context_per_slot: int = 2048, threads: int | None = None):
        path = Path(gguf)
        if path.suffix != ".gguf" or not path.is_file():
            raise ConfigError(f"{gguf}: llama.cpp reads a .gguf file (`lmforge export gguf` makes one)")
        try:
            import xllamacpp
        except ImportError:
            raise ConfigError("llama.cpp needs the xllamacpp wheel: pip install xllamacpp") from None
        self.private_dir = tempfile.mkdtemp(prefix="lmforge-llamacpp-")  # 0700: only this user
        self.socket = os.path.join(self.private_dir, "llama.sock")
        secret = secrets.token_urlsafe(32)
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_parallel = slots
        params.n_ctx = context_per_slot * slots
        params.hostnames = [self.socket]  # a Unix socket: no TCP port
        params.api_keys = [secret]
        params.verbosity = 3 if os.environ.get("LMFORGE_LOG", "").lower() == "debug" else 0
        if threads:
            params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.server = xllamacpp.Server(params)  # llama.cpp lives as long as this object holds it
        except Exception:
            shutil.rmtree(self.private_dir, ignore_errors=True)
            raise
        finally:
            if threading.current_thread() is threading.main_thread():
                for sig, handler in handlers.items():
                    signal.signal(sig, handler)
        self.http = httpx.Client(
            transport=httpx.HTTPTransport(uds=self.socket),
            base_url="http://llama.cpp",
            headers={"Authorization": f"Bearer {secret}"},
            timeout=httpx.Timeout(600, connect=10),
        )

    def handle_completions(self, body: dict, on_chunk) -> None:
        """llama.cpp's completion handler on `body`; `on_chunk(chunk)` returning True ends it."""
        self.server.handle_completions(body, on_chunk)

    def close(self, stop_llama: bool = True) -> None:
        """Drop the HTTP client and the private folder; with `stop_llama`, llama.cpp too (only once no
        request is inside it: its destructor frees memory that a running request would still read)."""
        self.http.close()
        if stop_llama:
            self.server = None  # llama.cpp's destructor stops its loop and joins its threads
        shutil.rmtree(self.private_dir, ignore_errors=True)
