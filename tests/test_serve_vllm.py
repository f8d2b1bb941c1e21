"""`--backend vllm`: vLLM decodes, lmforge stays the front. On a GPU machine with vLLM, the whole path
live; everywhere, the front's client half (serve/upstream.py) against a live OpenAI-compatible
upstream (lmforge serve itself, which speaks the same completions dialect: token-id prompts,
`echo`, `logprobs`, `return_tokens_as_token_ids`, `response_format`), and the one line a machine
without vLLM gets."""

import importlib.util
import json
import subprocess
import sys
import threading
import time

import httpx
import jsonschema
import pytest

from lmforge.models import load_tokenizer, packaged_gguf, resolve_model_dir
from tests.conftest import ROOT, LiveServer, free_port

openai = pytest.importorskip("openai")
HAS_VLLM = importlib.util.find_spec("vllm") is not None
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 10}, "rank": {"type": "integer", "minimum": 1}},
    "required": ["city", "rank"],
    "additionalProperties": False,
}
CHAT = [{"role": "user", "content": "Name a city in Germany."}]
TEXT = "The capital of France is Paris, and the capital of Germany is"


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed here: the backend starts instead")
def test_without_vllm_one_line_says_how_to_install_it():
    out = subprocess.run(
        [sys.executable, "-m", "lmforge", "serve", str(resolve_model_dir(packaged_gguf())), "--backend", "vllm"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = (out.stdout + out.stderr).strip().splitlines()
    assert out.returncode != 0 and len(lines) == 1 and "pip install vllm" in lines[0], lines


@pytest.fixture(scope="module")
def upstream():
    s = LiveServer(str(resolve_model_dir(packaged_gguf())), "--name", "smol", "--max-batch", "4")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def front(upstream):
    """lmforge's app over an UpstreamBackend pointed at the live upstream, on its own port."""
    import uvicorn

    from lmforge.serve.app import create_app
    from lmforge.serve.upstream import UpstreamBackend

    tok = load_tokenizer(resolve_model_dir(packaged_gguf()))
    http = httpx.Client(base_url=upstream.url, timeout=300)
    backend = UpstreamBackend(http, "smol", tok, context=2048, max_batch=4)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(backend, "front"), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield url
    server.should_exit = True
    thread.join(timeout=10)
    backend.close()


def test_the_front_answers_as_its_upstream_does(upstream, front):
    """Greedy chat (whole and streamed), echoed and generated log-probs, a JSON schema: the same
    through lmforge's front over the upstream as from the upstream itself."""
    direct = openai.OpenAI(base_url=upstream.url + "/v1", api_key="x", max_retries=0)
    fronted = openai.OpenAI(base_url=front + "/v1", api_key="x", max_retries=0)

    def chat(client, model, **kw):
        return client.chat.completions.create(model=model, messages=CHAT, max_tokens=12, temperature=0, **kw)

    want = chat(direct, "smol").choices[0].message.content
    assert chat(fronted, "front").choices[0].message.content == want
    streamed = chat(fronted, "front", stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == want
    a, b = (
        chat(c, m, logprobs=True, top_logprobs=3).choices[0].logprobs.content
        for c, m in ((direct, "smol"), (fronted, "front"))
    )
    assert [(t.token, t.logprob, [x.token for x in t.top_logprobs]) for t in a] == [
        (t.token, t.logprob, [x.token for x in t.top_logprobs]) for t in b
    ]
    scored = [
        c.completions.create(model=m, prompt=TEXT, max_tokens=0, echo=True, logprobs=2)
        for c, m in ((direct, "smol"), (fronted, "front"))
    ]
    assert scored[0].choices[0].logprobs.model_dump() == scored[1].choices[0].logprobs.model_dump()
    assert scored[1].choices[0].text == TEXT and scored[1].choices[0].logprobs.token_logprobs[0] is None
    more = [
        c.completions.create(model=m, prompt=TEXT, max_tokens=4, echo=True, logprobs=1, temperature=0)
        for c, m in ((direct, "smol"), (fronted, "front"))
    ]
    assert more[0].choices[0].text == more[1].choices[0].text
    assert more[0].choices[0].logprobs.token_logprobs == more[1].choices[0].logprobs.token_logprobs
    fmt = {"type": "json_schema", "json_schema": {"name": "city", "schema": SCHEMA}}
    for seed in range(3):
        r = fronted.chat.completions.create(
            model="front", messages=CHAT, max_tokens=60, temperature=1.0, seed=seed, response_format=fmt
        )
        jsonschema.validate(json.loads(r.choices[0].message.content), SCHEMA)


@pytest.mark.skipif(not HAS_VLLM, reason="vLLM is not installed (it needs a CUDA GPU machine)")
def test_vllm_backend_on_a_gpu(tmp_path):
    """The whole path: `lmforge serve --backend vllm` on SmolLM2's folder behind lmforge's front:
    a chat, an echoed prompt's log-probs (lm-eval's request), a schema enforced, metrics counted."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    folder = str(resolve_model_dir(packaged_gguf()))
    s = LiveServer(folder, "--backend", "vllm", "--name", "smol", "--gpu-memory-utilization", "0.3", timeout=900)
    try:
        client = openai.OpenAI(base_url=s.url + "/v1", api_key="x", max_retries=0)
        r = client.chat.completions.create(model="smol", messages=CHAT, max_tokens=12, temperature=0)
        assert r.choices[0].message.content and r.usage.prompt_tokens > 0
        scored = client.completions.create(model="smol", prompt=TEXT, max_tokens=0, echo=True, logprobs=1)
        lp = scored.choices[0].logprobs
        assert lp.token_logprobs[0] is None and all(x <= 0 for x in lp.token_logprobs[1:])
        fmt = {"type": "json_schema", "json_schema": {"name": "city", "schema": SCHEMA}}
        r = client.chat.completions.create(model="smol", messages=CHAT, max_tokens=60, response_format=fmt)
        jsonschema.validate(json.loads(r.choices[0].message.content), SCHEMA)
        assert "lmforge_requests_total" in httpx.get(s.url + "/metrics").text
    finally:
        s.stop()
