"""Translate through an OpenAI-compatible endpoint: protected spans, every format kept, checks and
rejects with reasons, retries on faults, accounting, resume without resending, tasks, live server."""

import json
import signal
import subprocess
import sys
import time

import pytest

from lmforge.endpoint import EndpointClient
from lmforge.errors import LmforgeError
from lmforge.recipe import EndpointConfig, TranslateConfig
from lmforge.translate import run_translate_stage
from lmforge.translate.protect import ProtectedSpanError, markers_in, protect, restore
from tests.conftest import ROOT, free_port, write_jsonl
from tests.fault_endpoint import FaultEndpoint, Running

CODE = "```python\nprint('hello')  # keep me\n```"
URL = "https://example.org/docs?id=42"


def test_protected_spans_survive_byte_identical_and_changes_are_caught():
    text = (
        f"Run {CODE} then open {URL} and call `make test`. Use {{name}} and {{{{ field }}}} and %s; "
        "it weighs 3.5 kg and runs at 20 km/h with 15% battery."
    )
    spans: list[str] = []
    masked = protect(text, spans)
    assert spans == [CODE, "`make test`", URL, "{name}", "{{ field }}", "%s", "3.5 kg", "20 km/h", "15%"]
    assert "print" not in masked and "example.org" not in masked
    assert restore(masked, spans, markers_in(masked)) == text
    with pytest.raises(ProtectedSpanError, match=r"protected span ⟦0⟧ .* missing"):
        restore(masked.replace("⟦0⟧", "```python print```"), spans, markers_in(masked))
    with pytest.raises(ProtectedSpanError, match="repeated"):
        restore(masked + " ⟦2⟧", spans, markers_in(masked))


def endpoint_cfg(url: str, **over) -> EndpointConfig:
    return EndpointConfig(
        **{
            "base_url": url,
            "model": "fake",
            "api_key_env": None,
            "concurrency": 4,
            "timeout_s": 1.0,
            "max_retries": 3,
            "backoff_s": 0.05,
            "max_backoff_s": 0.2,
            **over,
        }
    )


@pytest.fixture
def fault():
    ep = FaultEndpoint(slow_s=2.5)
    server = Running(ep.app, free_port())
    yield ep, server.url
    server.stop()


def alpaca(instruction: str, output: str = "The answer is given here in a full English sentence.") -> dict:
    return {"instruction": instruction, "input": "", "output": output}


def test_faults_are_retried_or_rejected_with_reasons_and_everything_is_accounted_for(fault, tmp_path):
    ep, url = fault
    rows = [
        alpaca(f"Explain this code and the page at {URL} to a beginner in simple words:\n{CODE}"),
        alpaca("RATELIMIT Describe the harbour town in the morning when the boats come back."),
        alpaca("SERVERERROR Describe the bakery on the corner and the smell of fresh bread."),
        alpaca("SLOWPOKE Describe the old bridge over the river and the people walking on it."),
        alpaca("NOTJSON Tell a short story about a lighthouse keeper and his cat."),
        alpaca("TRUNCATE Tell a short story about a fisherman who finds a bottle."),
        alpaca(f"BREAKCODE Explain what this snippet prints and why it matters:\n{CODE}"),
        alpaca("WRONGLANG Describe a rainy afternoon in a small library full of old books."),
        alpaca("BADKEYS Describe a market square on a busy Saturday in early summer."),
        {
            "instruction": "Give two tips for a first job interview, short and practical.",
            "context": "",
            "response": "Prepare questions and arrive ten minutes early, then listen carefully.",
        },
        {
            "conversations": [
                {"from": "human", "value": "What should I pack for a weekend by the sea in autumn?"},
                {"from": "gpt", "value": "A warm jumper, a rain jacket, good shoes and a book."},
            ]
        },
        {
            "messages": [
                {"role": "system", "content": "You are a friendly travel assistant for families."},
                {"role": "user", "content": "Which city is nice for a short trip with small children?"},
                {"role": "assistant", "content": "Try a city with a zoo, parks and short distances."},
            ]
        },
        {
            "message_id": "m1",
            "parent_id": None,
            "role": "prompter",
            "lang": "en",
            "rank": None,
            "text": "How do I keep basil alive on a windowsill through the winter months?",
        },
    ]
    path = write_jsonl(tmp_path / "mixed.jsonl", rows)
    with open(path, "a") as f:
        f.write('{"instruction": "broken line"\n')
    cfg = TranslateConfig(inputs=[str(path)], endpoint=endpoint_cfg(url))
    s = run_translate_stage(cfg, tmp_path / "run")
    f = s["files"][0]
    assert f["read"] == 14 == f["translated"] + f["rejected"]
    assert f["reasons"] == {
        "not JSON": 1,
        "truncated JSON": 1,
        "protected span altered": 1,
        "wrong language": 1,
        "changed shape": 1,
        "malformed JSON": 1,
    }
    rejects = [json.loads(line) for line in (tmp_path / "run" / "translate" / "rejects.jsonl").read_text().splitlines()]
    by_reason = {r["reason"].split(":")[0]: r for r in rejects}
    assert by_reason["malformed JSON"]["where"] == f"{path}:14"
    assert by_reason["wrong language"]["record"]["instruction"].startswith("WRONGLANG")
    assert by_reason["not JSON"]["where"] == f"{path}:5"
    out = [json.loads(line) for line in open(f["output"])]
    assert len(out) == 8  # the code record, the three recovered after retries, dolly, sharegpt, messages, oasst1
    code = out[0]
    assert code["language"] == "de" and set(code) == {"instruction", "input", "output", "language"}
    assert CODE in code["instruction"] and URL in code["instruction"] and "Stadt" in code["instruction"]
    assert code["input"] == ""  # empty strings are not sent
    assert [t["from"] for t in out[5]["conversations"]] == ["human", "gpt"]
    assert [m["role"] for m in out[6]["messages"]] == ["system", "user", "assistant"]
    assert "response" in out[4] and "context" in out[4]
    assert out[7]["lang"] == "de" and out[7]["message_id"] == "m1" and out[7]["parent_id"] is None
    e = s["endpoint"]
    assert e["retries"] >= 3 and e["failures"] == {}  # 429, 500 and the timeout were retried and recovered
    assert e["requests"] >= 16  # 12 records, 3 faults retried, each check failure asked once more
    report = (tmp_path / "run" / "report.md").read_text()
    assert "14 records read, 8 translated, 6 rejected" in report
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["config"]["translate"]["endpoint"]["base_url"] == url


def test_a_killed_run_resumes_without_sending_an_answered_request_twice(fault, tmp_path):
    ep, url = fault
    rows = [alpaca(f"Describe place number {i} in the old town: its streets, houses and people.") for i in range(12)]
    path = write_jsonl(tmp_path / "in.jsonl", rows)
    run = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "lmforge",
        "translate",
        "--input",
        str(path),
        "--to",
        "de",
        "--endpoint",
        url,
        "--model",
        "fake",
        "--concurrency",
        "2",
        "--run-dir",
        str(run),
        "--set",
        "translate.endpoint.api_key_env=''",
    ]
    ep.hang_after = 5
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    end = time.time() + 120
    while sum(ep.answered.values()) < 5 and time.time() < end:
        time.sleep(0.1)
    time.sleep(0.5)  # let the client write what it got
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert sum(ep.answered.values()) == 5 and not (run / "translate" / "in.de.jsonl").exists()
    ep.hang_after = None
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert ep.twice_answered() == 0  # nothing answered before the kill was asked again
    s = json.loads((run / "manifest.json").read_text())["stages"]["translate"]
    assert s["translated"] == 12 and s["endpoint"]["answered_from_cache"] == 5


def test_a_task_becomes_a_translated_task_with_its_own_spec(fault, tmp_path):
    from lmforge.tasks import load_task

    _, url = fault
    spec = ROOT / "examples" / "tasks" / "arc_sample_en.toml"
    s = run_translate_stage(TranslateConfig(inputs=[str(spec)], endpoint=endpoint_cfg(url)), tmp_path / "run")
    f = s["files"][0]
    original, translated = load_task(spec), load_task(f["output"])
    assert translated.spec.name == "arc_sample_de" and translated.spec.language == "de"
    assert f["read"] == len(original.docs) == f["translated"] + f["rejected"] and f["translated"] == len(
        translated.docs
    )
    assert "{{question}}" in translated.spec.prompt and translated.spec.prompt != original.spec.prompt
    for a, b in zip(original.docs, translated.docs):
        assert a["answer"] == b["answer"] and len(a["choices"]) == len(b["choices"]) and a["question"] != b["question"]


def test_a_wrong_key_stops_the_run_with_one_line(tmp_path):
    import os

    ep = FaultEndpoint()

    @ep.app.middleware("http")
    async def key_check(request, call_next):
        from fastapi.responses import JSONResponse

        if request.headers.get("authorization") != "Bearer right":
            return JSONResponse(
                {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}, 401
            )
        return await call_next(request)

    server = Running(ep.app, free_port())
    try:
        path = write_jsonl(tmp_path / "in.jsonl", [alpaca("Describe the town square on a market day.")])
        env_cfg = endpoint_cfg(server.url, api_key_env="LMFORGE_TEST_KEY")
        os.environ["LMFORGE_TEST_KEY"] = "wrong"
        with pytest.raises(LmforgeError, match=r"HTTP 401: Incorrect API key provided \(check \$LMFORGE_TEST_KEY\)"):
            run_translate_stage(TranslateConfig(inputs=[str(path)], endpoint=env_cfg), tmp_path / "run")
        os.environ["LMFORGE_TEST_KEY"] = "right"
        assert (
            run_translate_stage(TranslateConfig(inputs=[str(path)], endpoint=env_cfg), tmp_path / "run")["translated"]
            == 1
        )
        manifest = (tmp_path / "run" / "manifest.json").read_text()
        assert "right" not in manifest and "LMFORGE_TEST_KEY" in manifest  # the variable's name, never the key
    finally:
        os.environ.pop("LMFORGE_TEST_KEY", None)
        server.stop()


def test_unreachable_endpoint_is_retried_recorded_and_the_run_fails(tmp_path):
    """Every request failed: the record is in rejects.jsonl with its reason, and the stage fails in one
    line saying so, instead of looking like a run that translated nothing."""
    path = write_jsonl(tmp_path / "in.jsonl", [alpaca("Describe the town square on a market day.")])
    cfg = TranslateConfig(
        inputs=[str(path)], endpoint=endpoint_cfg(f"http://127.0.0.1:{free_port()}/v1", max_retries=2)
    )
    with pytest.raises(
        LmforgeError,
        match=r"every request to .* failed \(connection error \(ConnectError\): 1\); "
        r"first: .* after 3 attempts",
    ):
        run_translate_stage(cfg, tmp_path / "run")
    rejects = [json.loads(line) for line in (tmp_path / "run" / "translate" / "rejects.jsonl").read_text().splitlines()]
    assert len(rejects) == 1 and rejects[0]["reason"].endswith("connection error (ConnectError) after 3 attempts")


def test_client_honours_retry_after(fault):
    ep, url = fault
    waits = []
    client = EndpointClient(endpoint_cfg(url), sleep=lambda s: (waits.append(s), time.sleep(s)))
    reply = client.chat([{"role": "user", "content": json.dumps({"1": "RATELIMIT please translate this sentence"})}])
    assert waits == [0.2] and "Stadt" in reply.text and client.accounting()["retries"] == 1


@pytest.mark.slow
def test_translate_against_a_live_lmforge_serve(tiny_run, tmp_path):
    """A real model behind `lmforge serve` (tiny and untrained for this: most replies are rejected,
    but every record is accounted for)."""
    import httpx

    from tests.conftest import LiveServer, pretrain_tiny

    server = LiveServer(str(pretrain_tiny(tiny_run, "model.max_position_embeddings=1024")))  # room for the prompt
    try:
        model = httpx.get(server.url + "/v1/models").json()["data"][0]["id"]
        rows = [alpaca(f"Describe the harbour number {i} in one sentence.") for i in range(4)]
        path = write_jsonl(tmp_path / "in.jsonl", rows)
        cfg = TranslateConfig(
            inputs=[str(path)],
            endpoint=EndpointConfig(  # no model: the server's only one
                base_url=server.url + "/v1", api_key_env=None, max_tokens=16, concurrency=4
            ),
        )
        s = run_translate_stage(cfg, tmp_path / "run")
        assert s["endpoint"]["model"] == model and s["read"] == 4 == s["translated"] + s["rejected"]
        assert 4 <= s["endpoint"]["requests"] <= 8 and s["endpoint"]["failures"] == {}  # a rejected one is asked twice
    finally:
        server.stop()
