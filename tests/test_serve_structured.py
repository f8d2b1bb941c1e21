"""Structured output: `response_format` JSON (any object, or a JSON schema) enforced by constrained
decoding, so even a random-weight model returns JSON that parses and validates; per row in the
batched engine, on both serving backends, with the official openai client."""

import json
import threading

import httpx
import jsonschema
import pytest
import torch

from lmforge.engine import Engine, SamplingParams
from lmforge.engine.events import Done, Text
from lmforge.models import load_tokenizer, packaged_gguf, resolve_model_dir
from tests.conftest import LiveServer
from tests.tiny_models import tiny_llama

openai = pytest.importorskip("openai")
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 12},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "colour": {"enum": ["red", "green", "blue"]},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 8}, "maxItems": 3},
        "address": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 10},
                "zip": {"type": "string", "pattern": "^[0-9]{5}$"},
            },
            "required": ["city", "zip"],
            "additionalProperties": False,
        },
    },
    "required": ["name", "age", "colour", "tags", "address"],
    "additionalProperties": False,
}
FORMAT = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}}


def decode_all(engine: Engine, jobs: list[tuple[list[int], SamplingParams]]) -> list[tuple[str, str]]:
    """Every job in one engine, stepped here: (text, finish reason) each."""
    texts, finish = [""] * len(jobs), [None] * len(jobs)

    def emitter(i):
        def emit(ev):
            if isinstance(ev, Text):
                texts[i] += ev.piece
            elif isinstance(ev, Done):
                finish[i] = ev.reason

        return emit

    for i, (prompt, params) in enumerate(jobs):
        engine.submit(prompt, params, emitter(i))
    while any(f is None for f in finish):
        engine.run_once()
    return list(zip(texts, finish))


def test_a_random_model_writes_valid_json_beside_unconstrained_rows():
    """20 seeds at temperature 1.0, eight rows a batch, every other job unconstrained."""
    tok = load_tokenizer(resolve_model_dir(packaged_gguf()))
    torch.manual_seed(0)
    model = tiny_llama(vocab=len(tok), max_position_embeddings=512).float()
    engine = Engine(model, tok, max_batch=8, start=False)
    prompt = tok("A person:").input_ids
    jobs = []
    for seed in range(20):
        jobs.append((prompt, SamplingParams(max_tokens=200, temperature=1.0, seed=seed, json_schema=PERSON)))
        jobs.append((prompt, SamplingParams(max_tokens=12, temperature=1.0, seed=seed)))
    results = decode_all(engine, jobs)
    for text, reason in results[::2]:
        assert reason == "stop", text
        jsonschema.validate(json.loads(text), PERSON)
    free = [text for text, _ in results[1::2]]
    assert sum(_parses(t) for t in free) < len(free)  # the control: unconstrained rows are not JSON


def _parses(text: str) -> bool:
    try:
        json.loads(text)
        return True
    except ValueError:
        return False


@pytest.fixture(scope="module")
def smollm2_server():
    s = LiveServer(str(resolve_model_dir(packaged_gguf())), "--name", "smol", "--max-batch", "8")
    yield s
    s.stop()


@pytest.mark.slow
def test_smollm2_json_for_20_seeds_streamed_and_not(smollm2_server):
    client = openai.OpenAI(base_url=smollm2_server.url + "/v1", api_key="unused", max_retries=0)
    ask = dict(model="smol", messages=[{"role": "user", "content": "Describe a person as JSON."}], max_tokens=200)
    replies = [None] * 20

    def one(seed):
        r = client.chat.completions.create(**ask, temperature=1.0, seed=seed, response_format=FORMAT)
        replies[seed] = r.choices[0]

    threads = [threading.Thread(target=one, args=(s,)) for s in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    for choice in replies:
        assert choice.finish_reason == "stop"
        jsonschema.validate(json.loads(choice.message.content), PERSON)
    short = dict(model="smol", messages=[{"role": "user", "content": "Give me JSON about Paris."}], max_tokens=200)
    chunks = client.chat.completions.create(
        **short, temperature=0, stream=True, response_format={"type": "json_object"}
    )
    assert isinstance(json.loads("".join(c.choices[0].delta.content or "" for c in chunks if c.choices)), dict)
    text = client.completions.create(
        model="smol", prompt="Paris:", max_tokens=100, extra_body={"response_format": FORMAT}
    )
    jsonschema.validate(json.loads(text.choices[0].text), PERSON)


@pytest.mark.parametrize(
    "response_format, param",
    [
        ({"type": "json_schema"}, "response_format.json_schema"),
        ({"type": "json_schema", "json_schema": {"schema": {"type": "objectx"}}}, "response_format.json_schema.schema"),
        (
            {"type": "json_schema", "json_schema": {"schema": {"$ref": "#/nowhere"}}},
            "response_format.json_schema.schema",
        ),
        ({"type": "xml"}, "response_format.type"),
        ({"type": "json_object", "schema": {}}, "response_format.schema"),
    ],
)
def test_a_bad_response_format_is_a_400_naming_its_part(smollm2_server, response_format, param):
    body = {"messages": [{"role": "user", "content": "x"}], "response_format": response_format}
    r = httpx.post(smollm2_server.url + "/v1/chat/completions", json=body, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text


@pytest.mark.slow
def test_the_llama_cpp_backend_enforces_the_schema_with_its_own_grammar():
    pytest.importorskip("xllamacpp")
    s = LiveServer(str(packaged_gguf()), "--backend", "llama.cpp", "--name", "smol", "--max-batch", "4")
    try:
        client = openai.OpenAI(base_url=s.url + "/v1", api_key="unused", max_retries=0)
        for seed in range(5):
            r = client.chat.completions.create(
                model="smol",
                messages=[{"role": "user", "content": "Describe a person as JSON."}],
                max_tokens=200,
                temperature=1.0,
                seed=seed,
                response_format=FORMAT,
            )
            jsonschema.validate(json.loads(r.choices[0].message.content), PERSON)
    finally:
        s.stop()
