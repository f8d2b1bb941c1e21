"""Tool calls: each family's convention read back from what its own chat template writes, and
`lmforge serve` answering `tools` as the official openai client uses them (call, tool result,
answer; streamed and not), a required or named call forced by constrained decoding so that even
a random-weight model returns a valid one."""

import copy
import json
from pathlib import Path

import httpx
import jsonschema
import pytest

from lmforge.chat.template import CHATML_TEMPLATE, render_chat
from lmforge.chat.tools import CallStream, parse_calls, template_messages, tool_format
from lmforge.models import load_tokenizer, packaged_gguf, resolve_model_dir
from tests.conftest import LiveServer
from tests.tiny_models import tiny_llama

openai = pytest.importorskip("openai")
trl = pytest.importorskip("trl")
TRL_TEMPLATES = Path(trl.__file__).parent / "chat_templates"

# A template in Mistral's convention (written for this test: no Mistral template ships in a package here)
MISTRAL = (
    "{% set ns = namespace(last=-1) %}"
    "{% for m in messages %}{% if m['role'] == 'user' %}{% set ns.last = loop.index0 %}{% endif %}{% endfor %}"
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'user' %}"
    "{% if tools and loop.index0 == ns.last %}[AVAILABLE_TOOLS]{{ tools | tojson }}[/AVAILABLE_TOOLS]{% endif %}"
    "[INST]{{ m['content'] }}[/INST]"
    "{% elif m['role'] == 'assistant' and m.tool_calls %}"
    "[TOOL_CALLS][{% for c in m.tool_calls %}"
    '{"name": "{{ c.function.name }}", "arguments": {{ c.function.arguments | tojson }}}'
    "{% if not loop.last %}, {% endif %}{% endfor %}]{{ eos_token }}"
    "{% elif m['role'] == 'assistant' %}{{ m['content'] }}{{ eos_token }}"
    "{% elif m['role'] == 'tool' %}[TOOL_RESULTS]{{ m['content'] }}[/TOOL_RESULTS]"
    "{% endif %}{% endfor %}"
)
TEMPLATES = {
    "chatml": (CHATML_TEMPLATE, "hermes"),
    "qwen2_5": ((TRL_TEMPLATES / "qwen2_5.jinja").read_text(), "hermes"),
    "llama3_1": ((TRL_TEMPLATES / "llama3_1.jinja").read_text(), "llama3"),
    "mistral": (MISTRAL, "mistral"),
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather now in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 12},
                "unit": {"enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "The local time in a time zone",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string", "maxLength": 20}},
            "required": ["zone"],
            "additionalProperties": False,  # bounded: a random model would add properties forever
        },
    },
}
TOOLS = [WEATHER, TIME]
ASK = [{"role": "user", "content": "Wie ist das Wetter in Köln?"}]


@pytest.fixture(scope="module")
def smol_tokenizer():
    return load_tokenizer(resolve_model_dir(packaged_gguf()))


def with_template(tok, template: str):
    tok = copy.deepcopy(tok)
    tok.chat_template = template
    return tok


@pytest.mark.parametrize("family", list(TEMPLATES))
def test_the_calls_a_template_writes_parse_back(family, smol_tokenizer):
    """An assistant turn with calls, rendered by the family's own template: the text it adds after
    the generation prompt (what the model learns to write) parses back into the same calls, whole
    or fed piece by piece as a stream is."""
    template, fmt = TEMPLATES[family]
    tok = with_template(smol_tokenizer, template)
    assert tool_format(template) == fmt
    calls = [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Köln", "unit": "celsius"}'},
        }
    ]
    convo = template_messages(ASK + [{"role": "assistant", "content": None, "tool_calls": calls}])
    prompt = render_chat(tok, convo[:1], add_generation_prompt=True, tools=TOOLS)
    whole = render_chat(tok, convo, tools=TOOLS)
    assert whole.startswith(prompt)
    reply = whole[len(prompt) :]
    for end in ("<|im_end|>", "<|eot_id|>", tok.eos_token or "</s>"):
        reply = reply.split(end)[0]
    text, found = parse_calls(reply, fmt)
    assert text == "" and [(c.name, c.arguments) for c in found] == [
        ("get_weather", {"city": "Köln", "unit": "celsius"})
    ]
    stream = CallStream(fmt)
    streamed = "".join(stream.feed(reply[k : k + 3]) for k in range(0, len(reply), 3))
    rest, again = stream.end()
    assert streamed + rest == "" and [c.arguments for c in again] == [c.arguments for c in found]


def test_text_around_calls_streams_and_nothing_is_lost():
    stream = CallStream("hermes")
    reply = 'Ich sehe nach.\n<tool_call>\n{"name": "get_time", "arguments": {"zone": "CET"}}\n</tool_call>'
    out = "".join(stream.feed(reply[k : k + 2]) for k in range(0, len(reply), 2))
    rest, calls = stream.end()
    assert out == "Ich sehe nach.\n" and rest == "" and calls[0].arguments == {"zone": "CET"}
    # a block that is not a call stays text, and so does a reply that only looks like JSON
    broken = 'Hm <tool_call>{"name": oops}</tool_call>'
    assert parse_calls(broken, "hermes") == (broken, [])
    assert parse_calls('{"temperature": 12}', "llama3") == ('{"temperature": 12}', [])
    json_stream = CallStream("llama3")
    assert json_stream.feed("  ") == "" and json_stream.feed("Es ist ") == "  Es ist "
    held = CallStream("llama3")
    assert held.feed('{"temp') == "" and held.end() == ('{"temp', [])
    # several calls, Llama 3 style separated by a semicolon; Mistral's list
    two = '{"name": "get_time", "parameters": {"zone": "CET"}}; {"name": "get_time", "parameters": {"zone": "UTC"}}'
    assert [c.arguments["zone"] for c in parse_calls(two, "llama3")[1]] == ["CET", "UTC"]
    listed = '[TOOL_CALLS][{"name": "get_time", "arguments": {"zone": "CET"}}]'
    assert parse_calls(listed, "mistral")[1][0].name == "get_time"


def test_a_template_without_tools_is_named():
    from lmforge.errors import ConfigError

    plain = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    with pytest.raises(ConfigError, match="takes no tools"):
        tool_format(plain)


@pytest.fixture(scope="module", params=["chatml", "llama3_1", "mistral"])
def served(request, smol_tokenizer, tmp_path_factory):
    """A random-weight Llama with SmolLM2's tokenizer and the family's template, served."""
    folder = tmp_path_factory.mktemp(request.param)
    tok = with_template(smol_tokenizer, TEMPLATES[request.param][0])
    tiny_llama(vocab=len(tok), max_position_embeddings=1024).save_pretrained(folder)
    tok.save_pretrained(folder)
    s = LiveServer(str(folder), "--name", "tiny", "--max-batch", "4")
    s.family = request.param
    yield s
    s.stop()


def client_of(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


def test_a_required_call_round_trip_with_the_openai_client(served):
    """Call (forced: tool_choice required, 8 seeds at temperature 1), tool result, answer."""
    client = client_of(served)
    for seed in range(8):
        r = client.chat.completions.create(
            model="tiny", messages=ASK, tools=TOOLS, tool_choice="required", temperature=1.0, seed=seed, max_tokens=120
        )
        choice = r.choices[0]
        assert choice.finish_reason == "tool_calls", choice
        call = choice.message.tool_calls[0]
        assert call.id.startswith("call_") and call.type == "function"
        tool = {t["function"]["name"]: t["function"] for t in TOOLS}[call.function.name]
        jsonschema.validate(json.loads(call.function.arguments), tool["parameters"])
    convo = ASK + [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature": 12})},
    ]
    answer = client.chat.completions.create(model="tiny", messages=convo, tools=TOOLS, tool_choice="none", max_tokens=8)
    assert answer.choices[0].message.tool_calls is None and answer.choices[0].finish_reason in ("stop", "length")
    assert isinstance(answer.choices[0].message.content, str)


def test_a_named_call_streamed(served):
    client = client_of(served)
    choice = {"type": "function", "function": {"name": "get_time"}}
    for seed in range(3):
        chunks = list(
            client.chat.completions.create(
                model="tiny",
                messages=ASK,
                tools=TOOLS,
                tool_choice=choice,
                stream=True,
                seed=seed,
                temperature=1.0,
                max_tokens=120,
            )
        )
        deltas = [c.choices[0].delta for c in chunks if c.choices]
        calls = [d.tool_calls for d in deltas if d.tool_calls]
        assert len(calls) == 1 and calls[0][0].index == 0 and calls[0][0].function.name == "get_time"
        jsonschema.validate(json.loads(calls[0][0].function.arguments), TIME["function"]["parameters"])
        assert chunks[-1].choices[0].finish_reason == "tool_calls"
        assert not "".join(d.content or "" for d in deltas)  # nothing of the call leaked as text


def test_auto_lets_the_model_answer_in_text(served):
    """A random model under `auto` writes text, not a call: it comes back as content, whole."""
    r = httpx.post(
        served.url + "/v1/chat/completions",
        json={"messages": ASK, "tools": TOOLS, "max_tokens": 10, "temperature": 0},
        timeout=60,
    ).json()
    message = r["choices"][0]["message"]
    assert message["tool_calls"] is None and message["content"] and r["choices"][0]["finish_reason"] == "length"


def test_tools_on_a_template_without_them_are_a_400():
    s = LiveServer(str(resolve_model_dir(packaged_gguf())), "--name", "smol")
    try:
        r = httpx.post(s.url + "/v1/chat/completions", json={"messages": ASK, "tools": TOOLS}, timeout=30)
        assert r.status_code == 400 and r.json()["error"]["param"] == "tools", r.text
        assert "takes no tools" in r.json()["error"]["message"]
    finally:
        s.stop()
