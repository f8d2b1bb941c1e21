"""Property-based fuzzing of `lmforge serve`'s chat and completion bodies, live on 127.0.0.1.

Bodies come from the request schemas the server itself declares at /openapi.json (hypothesis-
jsonschema), from those with one field swapped for arbitrary JSON, and from arbitrary JSON and
bytes. 300 cases: no 5xx, every error is OpenAI's error object, and every success matches the
response schema the server declares (each SSE event too)."""

import json
from collections import Counter

import httpx
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from lmforge.models import load_tokenizer
from tests.conftest import LiveServer, pretrain_tiny


@pytest.fixture(scope="module")
def server(tiny_data, tmp_path_factory):
    from tests.conftest import tiny_recipe

    tmp = tmp_path_factory.mktemp("fuzz")
    model = pretrain_tiny((tmp / "run", tiny_recipe(tmp, tiny_data)), "train.seq_len=128")  # replies end fast
    s = LiveServer(str(model), "--name", "tiny", "--max-batch", "8")
    vocab = len(load_tokenizer(model))  # the ids the server accepts in a prompt
    s.schema = within_vocabulary(httpx.get(s.url + "/openapi.json").json(), vocab)
    yield s
    s.stop()


def within_vocabulary(schema: dict, vocab: int) -> dict:
    """The declared schema with token ids capped at the served model's vocabulary, which the schema
    cannot know (the server checks it per request: tests/test_serve_hostile.py), so that declared
    bodies mostly succeed and both sides are exercised."""

    def cap(node):
        if isinstance(node, dict):
            if node.get("type") == "integer" and node.get("minimum") == 0 and "maximum" not in node:
                node["maximum"] = vocab - 1
            for v in node.values():
                cap(v)
        elif isinstance(node, list):
            for v in node:
                cap(v)

    cap(schema["components"]["schemas"]["CompletionRequest"]["properties"]["prompt"])
    return schema


def resolvable(schema: dict, name: str) -> dict:
    """A component as a standalone schema whose `#/components/...` references resolve."""
    return {"$ref": f"#/components/schemas/{name}", "components": schema["components"]}


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def bodies(schema: dict, request_model: str) -> st.SearchStrategy:
    declared = from_schema(resolvable(schema, request_model))

    def swap_one(body: dict, key: str, value) -> dict:
        return {**body, (key if body else "messages"): value}

    fields = st.sampled_from(sorted(schema["components"]["schemas"][request_model]["properties"]))
    return st.one_of(
        declared.map(lambda b: json.dumps(b).encode()),
        st.builds(swap_one, declared, fields, JSON).map(lambda b: json.dumps(b).encode()),
        JSON.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=64),
    )


def check(server, route: str, body: bytes, ok_model: str, chunk_model: str, seen: Counter) -> None:
    r = httpx.post(server.url + route, content=body, headers={"content-type": "application/json"}, timeout=120)
    seen[r.status_code] += 1
    assert r.status_code < 500, (body[:300], r.text[:300])
    schemas = server.schema
    if r.status_code >= 400:
        jsonschema.validate(r.json(), resolvable(schemas, "ErrorResponse"))
    elif r.headers["content-type"].startswith("text/event-stream"):
        events = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]", r.text[-300:]
        for event in events[:-1]:
            jsonschema.validate(json.loads(event), resolvable(schemas, chunk_model))
    else:
        jsonschema.validate(r.json(), resolvable(schemas, ok_model))


FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@pytest.mark.parametrize(
    "route, request_model, ok_model, chunk_model",
    [
        ("/v1/chat/completions", "ChatRequest", "ChatCompletion", "ChatCompletionChunk"),
        ("/v1/completions", "CompletionRequest", "Completion", "Completion"),
    ],
)
def test_fuzzed_bodies_never_get_a_5xx(server, route, request_model, ok_model, chunk_model):
    seen = Counter()

    @FUZZ
    @given(bodies(server.schema, request_model))
    def run(body):
        check(server, route, body, ok_model, chunk_model, seen)

    run()
    print(f"\n{route}: {dict(sorted(seen.items()))}")
    assert seen[200] >= 20 and sum(n for s, n in seen.items() if 400 <= s < 500) >= 20  # both sides exercised
