"""`lmforge serve` live on 127.0.0.1, driven by the official `openai` client and raw HTTP."""

import json
import threading
import time

import httpx
import pytest

from tests.conftest import LiveServer, pretrain_tiny, scrape

openai = pytest.importorskip("openai")


@pytest.fixture(scope="module")
def tiny_model(tiny_data, tmp_path_factory):
    """A tiny pretrained model with room for prompt and reply (128 positions)."""
    from tests.conftest import tiny_recipe

    tmp = tmp_path_factory.mktemp("serve")
    return pretrain_tiny((tmp / "run", tiny_recipe(tmp, tiny_data)), "train.seq_len=128")


@pytest.fixture(scope="module")
def server(tiny_model):
    s = LiveServer(str(tiny_model), "--name", "tiny", "--max-batch", "4", "--max-waiting", "16")
    yield s
    s.stop()


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


def test_chat_and_completions_streamed_and_not(client):
    msgs = [{"role": "user", "content": "Beschreibe das Brot."}]
    full = client.chat.completions.create(model="tiny", messages=msgs, max_tokens=12, temperature=0)
    choice = full.choices[0]
    assert choice.message.role == "assistant" and choice.finish_reason in ("stop", "length")
    assert (
        full.usage.prompt_tokens > 0
        and full.usage.total_tokens == full.usage.prompt_tokens + full.usage.completion_tokens
    )
    chunks = list(
        client.chat.completions.create(
            model="tiny",
            messages=msgs,
            max_tokens=12,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == choice.message.content  # greedy: the same reply either way
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == choice.finish_reason
    assert chunks[-1].usage.completion_tokens == full.usage.completion_tokens and not chunks[-1].choices

    text = client.completions.create(model="tiny", prompt="Am Morgen", max_tokens=10, temperature=0)
    assert text.choices[0].finish_reason in ("stop", "length") and text.usage.prompt_tokens > 0
    pieces = list(
        client.completions.create(model="tiny", prompt="Am Morgen", max_tokens=10, temperature=0, stream=True)
    )
    assert "".join(p.choices[0].text for p in pieces) == text.choices[0].text
    assert [m.id for m in client.models.list()] == ["tiny"]


def test_seed_n_and_stop_strings(client):
    ask = dict(model="tiny", prompt="The harbour", max_tokens=20, temperature=1.2)
    a, b = (client.completions.create(**ask, seed=5).choices[0].text for _ in range(2))
    assert a == b  # same seed, same output
    many = client.completions.create(**ask, seed=5, n=3)
    assert len(many.choices) == 3 and many.choices[0].text == a and len({c.text for c in many.choices}) > 1
    greedy = client.completions.create(model="tiny", prompt="The harbour", max_tokens=30, temperature=0).choices[0].text
    word = next(w for w in greedy.split() if len(w) > 2)
    cut = client.completions.create(
        model="tiny", prompt="The harbour", max_tokens=30, temperature=0, stop=[word, "zzz"]
    )
    assert cut.choices[0].finish_reason == "stop" and cut.choices[0].text == greedy[: greedy.index(word)]
    streamed = client.completions.create(
        model="tiny", prompt="The harbour", max_tokens=30, temperature=0, stop=word, stream=True
    )
    assert "".join(c.choices[0].text for c in streamed) == greedy[: greedy.index(word)]


@pytest.mark.parametrize(
    "body, status, param",
    [
        ({"messages": []}, 400, "messages"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, 400, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 5}]}, 400, "messages[0].content"),
        ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}, 400, "max_tokens"),
        ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100_000}, 400, "max_tokens"),
        ({"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}, 400, "temperature"),
        ({"messages": [{"role": "user", "content": "hi"}], "top_p": 1.5}, 400, "top_p"),
        ({"messages": [{"role": "user", "content": "hi"}], "model": "gpt-9"}, 404, "model"),
        ({"prompt": "hi"}, 400, "messages"),
    ],
)
def test_bad_requests_get_openai_errors(server, body, status, param):
    r = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=30)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["param"] == param and err["message"] and set(err) == {"message", "type", "param", "code"}


def test_malformed_json_oversized_body_and_client_errors(server, client):
    r = httpx.post(
        server.url + "/v1/chat/completions",
        content=b"{not json",
        timeout=30,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = httpx.post(server.url + "/v1/completions", content=b'{"prompt": "' + b"x" * (1 << 20) + b'"}', timeout=30)
    assert r.status_code == 413 and "error" in r.json()
    r = httpx.get(server.url + "/v1/nothing-here", timeout=30)
    assert r.status_code == 404 and "error" in r.json()
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="tiny", messages=[], max_tokens=4)
    unknown_fields = client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=3,
        user="someone",
        extra_body={"vendor_flag": 1},
    )
    assert unknown_fields.choices[0].message.role == "assistant"


def test_disconnect_mid_stream_frees_the_slot(server):
    body = {"prompt": "The harbour", "max_tokens": 100, "temperature": 0, "stream": True}
    with httpx.stream("POST", server.url + "/v1/completions", json=body, timeout=30) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                assert httpx.get(server.url + "/health").json()["running"] == 1
                break
    end = time.time() + 5
    while httpx.get(server.url + "/health").json()["running"] and time.time() < end:
        time.sleep(0.05)
    assert httpx.get(server.url + "/health").json()["running"] == 0


def test_api_key_and_loopback_default(tiny_model):
    s = LiveServer(str(tiny_model), "--api-key", "sekret")
    try:
        assert httpx.get(s.url + "/v1/models").status_code == 401
        assert (
            httpx.get(s.url + "/v1/models", headers={"Authorization": "Bearer nope"}).json()["error"]["code"]
            == "invalid_api_key"
        )
        ok = openai.OpenAI(base_url=s.url + "/v1", api_key="sekret", max_retries=0)
        assert len(ok.models.list().data) == 1
        assert httpx.get(s.url + "/health").status_code == 200  # not under /v1
        assert httpx.get(s.url + "/metrics").status_code == 401  # counts are the operator's
        assert (
            scrape(s.url, headers={"Authorization": "Bearer sekret"})[
                ("lmforge_requests_total", (("route", "/v1/models"), ("status", "401")))
            ]
            == 2
        )
    finally:
        out = s.stop()
    assert "http://127.0.0.1:" in out
    public = LiveServer(str(tiny_model), "--api-key", "sekret", "--metrics-public")
    try:
        assert ("lmforge_requests_running", ()) in scrape(public.url)
    finally:
        public.stop()


def test_prometheus_metrics_count_what_was_served(server, client):
    """Requests by route and status, tokens, latencies and the engine's gauges, as Prometheus reads them."""
    before = scrape(server.url)
    ok = ("lmforge_requests_total", (("route", "/v1/completions"), ("status", "200")))
    bad = ("lmforge_requests_total", (("route", "/v1/completions"), ("status", "400")))
    replies = [
        client.completions.create(model="tiny", prompt="Am Morgen", max_tokens=6, temperature=0) for _ in range(2)
    ]
    streamed = client.completions.create(
        model="tiny", prompt="Am Abend", max_tokens=6, stream=True, stream_options={"include_usage": True}
    )
    usage = [c.usage for c in streamed if c.usage][0]
    assert httpx.post(server.url + "/v1/completions", json={"prompt": "x", "top_p": 9}).status_code == 400
    after = scrape(server.url)

    def grew(key) -> float:
        return after.get(key, 0) - before.get(key, 0)

    assert grew(ok) == 3 and grew(bad) == 1
    generated = sum(r.usage.completion_tokens for r in replies) + usage.completion_tokens
    assert grew(("lmforge_generation_tokens_total", ())) == generated
    assert (
        grew(("lmforge_prompt_tokens_total", ())) == sum(r.usage.prompt_tokens for r in replies) + usage.prompt_tokens
    )
    assert grew(("lmforge_time_to_first_token_seconds_count", ())) == 3
    assert grew(("lmforge_inter_token_latency_seconds_count", ())) >= generated - 3 - 3  # pieces after the first
    assert after[("lmforge_requests_running", ())] == 0 and after[("lmforge_engine_max_batch", ())] == 4
    assert grew(("lmforge_engine_steps_total", ())) >= 5 and grew(("lmforge_engine_step_rows_total", ())) >= 5

    # a prompt that begins like an earlier one prefills only its new end: the same answer, counted
    story = "Am Morgen backt der Bäcker Brot, und am Abend kocht die alte Frau eine Suppe im Haus am Hafen."
    texts = [
        client.completions.create(model="tiny", prompt=story + end, max_tokens=6, temperature=0).choices[0].text
        for end in (" Der Hafen", " Der Hafen", " Die Frau")
    ]
    assert texts[0] == texts[1]
    reused = scrape(server.url)
    assert reused[("lmforge_prefix_cache_hits_total", ())] - after[("lmforge_prefix_cache_hits_total", ())] == 2
    assert (
        reused[("lmforge_prefix_cache_reused_tokens_total", ())]
        - after[("lmforge_prefix_cache_reused_tokens_total", ())]
        > 2 * 16
    )


def test_load_with_malformed_requests_interleaved(server):
    """8 clients x 25 requests, streamed and not, with 200 malformed requests between them: no good
    request fails, every bad one is a 4xx with an error object, the server keeps serving."""
    import psutil

    failures, bad_statuses = [], []
    rss_before = psutil.Process(server.proc.pid).memory_info().rss

    def good_client(k: int):
        c = openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0, timeout=120)
        for j in range(25):
            try:
                if j % 2:
                    out = c.completions.create(model="tiny", prompt=f"Request {k} {j}", max_tokens=4, temperature=0)
                    assert out.choices[0].finish_reason in ("stop", "length")
                else:
                    chunks = list(
                        c.chat.completions.create(
                            model="tiny",
                            max_tokens=4,
                            stream=True,
                            messages=[{"role": "user", "content": f"Hallo {k} {j}"}],
                        )
                    )
                    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                failures.append(repr(e))

    def bad_client():
        bodies = [b"{", b"[]", json.dumps({"messages": "no"}).encode(), json.dumps({"prompt": ""}).encode()]
        with httpx.Client(timeout=60) as h:
            for i in range(200):
                r = h.post(
                    server.url + ("/v1/completions" if i % 2 else "/v1/chat/completions"),
                    content=bodies[i % len(bodies)],
                    headers={"content-type": "application/json"},
                )
                bad_statuses.append((r.status_code, "error" in r.json()))

    threads = [threading.Thread(target=good_client, args=(k,)) for k in range(8)] + [
        threading.Thread(target=bad_client)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not failures, failures[:3]
    assert len(bad_statuses) == 200 and all(400 <= s < 500 and has_error for s, has_error in bad_statuses)
    assert httpx.get(server.url + "/health").json()["running"] == 0
    rss_after = psutil.Process(server.proc.pid).memory_info().rss
    print(f"\nserver RSS {rss_before / 2**20:.0f} MiB -> {rss_after / 2**20:.0f} MiB")
    assert rss_after < rss_before * 1.25 + 64 * 2**20  # flat: no per-request growth


def test_a_full_queue_answers_429(tiny_model):
    from fastapi.testclient import TestClient

    from lmforge.engine import Engine, SamplingParams
    from lmforge.models import load_model_and_tokenizer
    from lmforge.serve import TorchBackend, create_app

    model, tok = load_model_and_tokenizer(tiny_model)
    backend = TorchBackend(model, tok)
    backend.engine = Engine(model, tok, max_batch=1, max_waiting=2, start=False)  # nothing drains its queue
    for _ in range(2):
        backend.engine.submit([1, 2, 3], SamplingParams(max_tokens=2), lambda ev: None)
    r = TestClient(create_app(backend, "tiny")).post("/v1/completions", json={"prompt": "hi", "max_tokens": 2})
    assert r.status_code == 429 and r.json()["error"]["code"] == "queue_full"
