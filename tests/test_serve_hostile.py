"""`lmforge serve` against a hostile outside user, live on 127.0.0.1, on both backends.

Every malformed request is a 4xx carrying OpenAI's error object, and the *same* keep-alive
connection then serves a valid request; /health answers throughout and memory stays flat. Clients
that give up stop their generation; SIGTERM ends every request and the process within 5 s; the
llama.cpp backend opens no second port; a chunked upload is cut at the body limit without being
buffered. The torch backend serves a random tiny Llama that never stops by itself (tiny_models.
long_talker), llama.cpp serves SmolLM2 counting, so that long requests really are long.
"""

import http.client
import json
import os
import select
import signal
import socket
import stat
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from lmforge.models import packaged_gguf
from tests.conftest import LiveServer, free_port
from tests.tiny_models import long_talker

BACKENDS = ["torch", pytest.param("llama.cpp", marks=pytest.mark.slow)]
VALID = json.dumps({"prompt": "Hallo", "max_tokens": 3, "temperature": 0}).encode()


@pytest.fixture(scope="module")
def talker(tiny_data, tmp_path_factory) -> Path:
    return long_talker(tmp_path_factory.mktemp("talker") / "model", tiny_data / "tokenizer")


def start(backend: str, talker: Path, *extra: str) -> LiveServer:
    if backend == "llama.cpp":
        pytest.importorskip("xllamacpp")
        return LiveServer(str(packaged_gguf()), "--backend", "llama.cpp", "--name", "m", "--max-batch", "4", *extra)
    return LiveServer(str(talker), "--name", "m", "--max-batch", "4", *extra)


def long_body(backend: str, stream: bool = False, chat: bool = False) -> dict:
    """A request that decodes for many seconds on this backend's model."""
    tokens = 3000 if backend == "torch" else 1500
    body = {"max_tokens": tokens, "temperature": 0, "stream": stream}
    if chat:
        return body | {"messages": [{"role": "user", "content": "Zähle bitte weiter: 1, 2, 3, 4, 5,"}]}
    return body | {"prompt": "1, 2, 3, 4, 5,"}


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, talker):
    s = start(request.param, talker)
    s.backend = request.param
    yield s
    s.stop()


def big_int() -> bytes:
    return b'{"prompt": "hi", "max_tokens": ' + b"9" * 5000 + b"}"


# (what, method, path, raw body, status, the error's `param` or `code`)
CASES = [
    ("nested JSON", "POST", "/v1/chat/completions", b"[" * 200_000, 400, "invalid_json"),
    ("not UTF-8", "POST", "/v1/chat/completions", b'{"prompt": "\xff\xfe"}', 400, "invalid_json"),
    ("a 5000-digit integer", "POST", "/v1/completions", big_int(), 400, "invalid_json"),
    (
        "lone surrogate",
        "POST",
        "/v1/chat/completions",
        b'{"messages": [{"role": "user", "content": "\\ud800 hi"}]}',
        400,
        "messages[0].content",
    ),
    ("surrogate in a prompt", "POST", "/v1/completions", b'{"prompt": "ok \\udfff"}', 400, "prompt"),
    ("seed past 64 bits", "POST", "/v1/completions", b'{"prompt": "hi", "seed": 18446744073709551616}', 400, "seed"),
    ("max_tokens as a string", "POST", "/v1/completions", b'{"prompt": "hi", "max_tokens": "5"}', 400, "max_tokens"),
    ("max_tokens as a bool", "POST", "/v1/completions", b'{"prompt": "hi", "max_tokens": true}', 400, "max_tokens"),
    ("n as a bool", "POST", "/v1/completions", b'{"prompt": "hi", "n": true}', 400, "n"),
    ("stream as a string", "POST", "/v1/completions", b'{"prompt": "hi", "stream": "yes"}', 400, "stream"),
    ("NaN temperature", "POST", "/v1/completions", b'{"prompt": "hi", "temperature": NaN}', 400, "temperature"),
    ("n over the limit", "POST", "/v1/completions", b'{"prompt": "hi", "n": 9}', 400, "n"),
    (
        "a tool named with a space",
        "POST",
        "/v1/chat/completions",
        json.dumps(
            {
                "messages": [{"role": "user", "content": "hi"}],
                "tools": [{"type": "function", "function": {"name": "get weather", "parameters": {}}}],
            }
        ).encode(),
        400,
        "tools[0].function.name",
    ),
    (
        "a tool choice naming no tool given",
        "POST",
        "/v1/chat/completions",
        json.dumps(
            {
                "messages": [{"role": "user", "content": "hi"}],
                "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
                "tool_choice": {"type": "function", "function": {"name": "g"}},
            }
        ).encode(),
        400,
        "tool_choice.function.name",
    ),
    (
        "a call required without tools",
        "POST",
        "/v1/chat/completions",
        json.dumps({"messages": [{"role": "user", "content": "hi"}], "tool_choice": "required"}).encode(),
        400,
        "tool_choice",
    ),
    (
        "a call whose arguments are not JSON",
        "POST",
        "/v1/chat/completions",
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
                        ],
                    },
                ]
            }
        ).encode(),
        400,
        "messages[1].tool_calls[0].function.arguments",
    ),
    (
        "legacy functions",
        "POST",
        "/v1/chat/completions",
        json.dumps({"messages": [{"role": "user", "content": "hi"}], "functions": [{"name": "f"}]}).encode(),
        400,
        "functions",
    ),
    (
        "a response format of another kind",
        "POST",
        "/v1/chat/completions",
        json.dumps({"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "yaml"}}).encode(),
        400,
        "response_format.type",
    ),
    ("logit_bias", "POST", "/v1/completions", b'{"prompt": "hi", "logit_bias": {"5": 10}}', 400, "logit_bias"),
    (
        "chat logprobs as a number",
        "POST",
        "/v1/chat/completions",
        json.dumps({"messages": [{"role": "user", "content": "hi"}], "logprobs": 5}).encode(),
        400,
        "logprobs",
    ),
    ("legacy logprobs past 20", "POST", "/v1/completions", b'{"prompt": "hi", "logprobs": 500}', 400, "logprobs"),
    ("echo as a string", "POST", "/v1/completions", b'{"prompt": "hi", "echo": "yes"}', 400, "echo"),
    ("a token id past the vocabulary", "POST", "/v1/completions", b'{"prompt": [1, 99999999]}', 400, "prompt[1]"),
    ("a stop list of numbers", "POST", "/v1/completions", b'{"prompt": "hi", "stop": [1]}', 400, "stop[0]"),
    ("a JSON array", "POST", "/v1/completions", b"[1, 2]", 400, "invalid_json"),
    ("an unknown route", "POST", "/v1/embeddings", b"{}", 404, None),
    ("a wrong method", "GET", "/v1/chat/completions", b"", 405, None),
]


def request(conn: http.client.HTTPConnection, method: str, path: str, body: bytes = b"", headers=None):
    conn.request(method, path, body=body or None, headers={"Content-Type": "application/json", **(headers or {})})
    r = conn.getresponse()
    return r, r.read()


def test_hostile_requests_get_4xx_and_the_connection_keeps_serving(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    r, _ = request(conn, "POST", "/v1/completions", VALID)
    assert r.status == 200
    local = conn.sock.getsockname()
    rss = psutil.Process(server.proc.pid).memory_info().rss
    health, stop = [], threading.Event()

    def poll_health():
        with httpx.Client(timeout=10) as h:
            while not stop.is_set():
                health.append(h.get(server.url + "/health").status_code)
                time.sleep(0.05)

    poller = threading.Thread(target=poll_health)
    poller.start()
    try:
        for _ in range(3):  # three rounds: nothing accumulates
            for what, method, path, body, status, field in CASES:
                r, raw = request(conn, method, path, body)
                assert r.status == status, (what, raw[:300])
                err = json.loads(raw)["error"]
                assert set(err) == {"message", "type", "param", "code"} and err["message"], what
                if field is not None:
                    assert field in (err["param"], err["code"]), (what, err)
                if status == 405:
                    assert "POST" in r.getheader("Allow", ""), what
                r, raw = request(conn, "POST", "/v1/completions", VALID)  # the same connection goes on
                assert r.status == 200 and json.loads(raw)["choices"][0]["finish_reason"], (what, raw[:300])
                assert conn.sock.getsockname() == local, f"{what}: the server dropped the connection"
        # any top_p the API allows samples a token, however small
        tiny_p = json.dumps({"prompt": "Hallo", "max_tokens": 3, "temperature": 1.0, "top_p": 1e-300}).encode()
        r, raw = request(conn, "POST", "/v1/completions", tiny_p)
        assert r.status == 200, raw[:300]
    finally:
        stop.set()
        poller.join()
    assert health and set(health) == {200}
    grown = psutil.Process(server.proc.pid).memory_info().rss - rss
    print(f"\n{server.backend}: {len(health)} /health answers, RSS {grown / 2**20:+.1f} MiB")
    assert grown < 100 * 2**20


def test_log_probs_are_given_or_refused_by_name(server):
    """Both backends give generated tokens' log-probs; llama.cpp's server cannot score a prompt, so
    the llama.cpp backend refuses `echo` with log-probs with a 400 naming it rather than half an answer."""
    body = {"prompt": "1, 2, 3,", "max_tokens": 2, "temperature": 0, "logprobs": 1}
    r = httpx.post(server.url + "/v1/completions", json=body, timeout=120)
    assert r.status_code == 200 and len(r.json()["choices"][0]["logprobs"]["token_logprobs"]) == 2
    r = httpx.post(server.url + "/v1/completions", json={**body, "echo": True}, timeout=120)
    if server.backend == "llama.cpp":
        err = r.json()["error"]
        assert r.status_code == 400 and err["param"] == "echo" and "llama.cpp backend" in err["message"]
    else:
        assert r.status_code == 200 and r.json()["choices"][0]["logprobs"]["token_logprobs"][0] is None


def test_abandoned_non_streamed_requests_stop_decoding(server):
    """Clients that time out free their slots at once, and the server goes idle."""
    proc = psutil.Process(server.proc.pid)
    before = httpx.get(server.url + "/health").json()

    def give_up():
        with pytest.raises(httpx.TimeoutException):
            httpx.post(server.url + "/v1/completions", json=long_body(server.backend), timeout=1.5)

    clients = [threading.Thread(target=give_up) for _ in range(3)]
    for c in clients:
        c.start()
    for c in clients:
        c.join()
    end = time.time() + 2
    while httpx.get(server.url + "/health").json()["running"] and time.time() < end:
        time.sleep(0.02)
    after = httpx.get(server.url + "/health").json()
    assert after["running"] == 0 and after["waiting"] == 0, after
    if "cancel_lag_max_steps" in after:  # the torch engine counts the steps decoded after a cancel
        assert after["cancelled"] - before["cancelled"] == 3 and after["cancel_lag_max_steps"] <= 2, after
    proc.cpu_percent()
    time.sleep(1.0)
    assert proc.cpu_percent() < 20, "the server keeps computing after its clients left"


def test_an_internal_error_is_a_500_that_keeps_the_connection(talker):
    """A bug inside a route (here: a backend that raises) is answered with OpenAI's error object by
    the server itself, and the client's keep-alive connection survives it."""
    import uvicorn

    from lmforge.models import load_model_and_tokenizer
    from lmforge.serve import TorchBackend, create_app

    class Buggy(TorchBackend):
        def text_prompt(self, text):
            if text == "BOOM":
                raise RuntimeError("a bug")
            return super().text_prompt(text)

    backend = Buggy(*load_model_and_tokenizer(talker))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(backend, "m"), host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run)
    thread.start()
    try:
        end = time.time() + 30
        while not server.started and time.time() < end:
            time.sleep(0.05)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        r, raw = request(conn, "POST", "/v1/completions", b'{"prompt": "BOOM"}')
        local = conn.sock.getsockname()
        assert r.status == 500 and json.loads(raw)["error"]["type"] == "server_error"
        assert "a bug" not in raw.decode()  # internals stay in the server's log
        r, raw = request(conn, "POST", "/v1/completions", VALID)
        assert r.status == 200 and conn.sock.getsockname() == local
    finally:
        server.should_exit = True
        thread.join()
        backend.close()


def read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        part = sock.recv(65536)
        if not part:
            break
        data += part
    return data


def upload_chunked(port: int, total: int, headers: str = "") -> bytes:
    """Send a chunked body of `total` bytes, stopping as soon as the server answers."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}"
        "Transfer-Encoding: chunked\r\n\r\n".encode()
    )
    piece = b'{"prompt": "' + b"x" * (65536 - 12)
    sent = 0
    try:
        while sent < total:
            if select.select([sock], [], [], 0)[0]:
                break  # an answer before the body ended
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sent += len(piece)
            piece = b"x" * 65536
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server closed the connection after answering
    answer = read_response(sock)
    sock.close()
    return answer


def peak_rss_reset(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # the kernel's peak RSS (VmHWM) starts again from now


def peak_rss(pid: int) -> int:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def test_a_chunked_upload_is_cut_at_the_limit_without_buffering(server):
    pid = server.proc.pid
    rss = psutil.Process(pid).memory_info().rss
    peak_rss_reset(pid)
    answer = upload_chunked(server.port, 64 << 20)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    growth = peak_rss(pid) - rss
    print(f"\n{server.backend}: peak RSS growth during a 64 MB chunked upload: {growth / 2**20:.1f} MiB")
    assert growth < 20 * 2**20
    assert httpx.post(server.url + "/v1/completions", content=VALID).status_code == 200


def test_the_api_key_is_checked_before_the_body_is_read(talker):
    s = start("torch", talker, "--api-key", "sekret")
    try:
        answer = upload_chunked(s.port, 64 << 20)  # no key: refused from the headers alone
        assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
        answer = upload_chunked(s.port, 64 << 20, "Authorization: Bearer sekret\r\n")
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    finally:
        s.stop()


def sse_events(r: httpx.Response):
    for line in r.iter_lines():
        if line.startswith("data: ") and line != "data: [DONE]":
            yield json.loads(line[6:])


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigterm_ends_requests_in_flight_and_the_process(backend, talker):
    s = start(backend, talker)
    results: dict[str, object] = {}
    first_chunk = threading.Barrier(3)

    def streamed(i):
        with httpx.stream(
            "POST", s.url + "/v1/chat/completions", json=long_body(backend, True, chat=True), timeout=60
        ) as r:
            events = sse_events(r)
            results[f"stream{i}"] = [next(events)]
            first_chunk.wait(timeout=60)
            results[f"stream{i}"] += list(events)

    def plain(i):
        results[f"plain{i}"] = httpx.post(s.url + "/v1/completions", json=long_body(backend), timeout=60)

    threads = [threading.Thread(target=streamed, args=(i,)) for i in range(2)]
    threads += [threading.Thread(target=plain, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    first_chunk.wait(timeout=60)
    end = time.time() + 30
    while httpx.get(s.url + "/health").json()["running"] < 4 and time.time() < end:
        time.sleep(0.05)
    assert httpx.get(s.url + "/health").json()["running"] == 4
    started = time.time()
    s.proc.send_signal(signal.SIGTERM)
    code = s.proc.wait(timeout=30)
    took = time.time() - started
    for t in threads:
        t.join(timeout=30)
    out = s.proc.stdout.read()
    print(f"\n{backend}: exited {code} {took:.2f} s after SIGTERM")
    # prompt, not instant: a worker of a loaded CI box may lag a few seconds; a request left hanging
    # would hold the process past the 30-second wait
    assert code == 0 and took < 15, out[-2000:]
    for i in range(2):
        assert results[f"stream{i}"][-1]["error"]["code"] == "shutting_down"
        r = results[f"plain{i}"]
        assert r.status_code == 503 and r.json()["error"]["code"] == "shutting_down"


@pytest.mark.slow
def test_llamacpp_listens_on_one_tcp_port_and_nothing_bypasses_the_key(talker):
    pytest.importorskip("xllamacpp")
    s = start("llama.cpp", talker, "--api-key", "sekret")
    try:
        proc = psutil.Process(s.proc.pid)
        listening = [c for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
        assert [c.laddr.port for c in listening] == [s.port], listening
        unix = sorted({c.laddr for c in proc.net_connections(kind="unix") if c.laddr})  # listening + lmforge's own
        assert len(unix) == 1 and unix[0].endswith(".sock"), unix
        folder = Path(unix[0]).parent
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700  # no other user can reach the socket
        with httpx.Client(transport=httpx.HTTPTransport(uds=unix[0]), base_url="http://llama") as h:
            r = h.post("/v1/completions", json={"prompt": "hi", "max_tokens": 2})
            assert r.status_code == 401  # llama.cpp's own routes want a key only lmforge holds
        assert httpx.post(s.url + "/v1/completions", json={"prompt": "hi", "max_tokens": 2}).status_code == 401
        ok = httpx.post(
            s.url + "/v1/completions",
            json={"prompt": "hi", "max_tokens": 2},
            headers={"Authorization": "Bearer sekret"},
        )
        assert ok.status_code == 200
    finally:
        s.stop()
    assert not folder.exists()  # the private folder goes with the server


def test_the_endpoint_client_leaves_nothing_decoding(talker):
    """lmforge's own client against lmforge serve: a streamed answer that takes longer than the
    timeout arrives in one request (the timeout bounds silence, not the answer); without streaming,
    each timed-out attempt is cancelled by the server and the next waits at least half its backoff,
    so a give-up leaves no generation behind."""
    from lmforge.endpoint import EndpointClient, EndpointError
    from lmforge.recipe.schema import EndpointConfig

    s = start("torch", talker)
    waits = []
    try:
        cfg = {
            "base_url": s.url + "/v1",
            "model": "m",
            "api_key_env": None,
            "timeout_s": 1.0,
            "max_retries": 2,
            "backoff_s": 0.4,
        }
        ask = [{"role": "user", "content": "Erzähl mir alles."}]
        streamed = EndpointClient(EndpointConfig(**cfg))
        reply = streamed.chat(ask, max_tokens=1200, temperature=0)
        assert reply.finish_reason == "length" and reply.completion_tokens == 1200
        assert streamed.accounting()["requests"] == 1 and streamed.accounting()["retries"] == 0
        plain = EndpointClient(EndpointConfig(**cfg, stream=False), sleep=lambda t: (waits.append(t), time.sleep(t)))
        with pytest.raises(EndpointError, match="timeout after 3 attempts"):
            plain.chat(ask, max_tokens=3000, temperature=0)
        assert len(waits) == 2 and waits[0] >= 0.2 and waits[1] >= 0.4  # half the doubling backoff at least
        end = time.time() + 2
        while httpx.get(s.url + "/health").json()["running"] and time.time() < end:
            time.sleep(0.02)
        assert httpx.get(s.url + "/health").json()["running"] == 0
    finally:
        s.stop()
