"""Token log-probabilities from `lmforge serve` (torch backend), live on 127.0.0.1 with SmolLM2: equal to
a plain transformers forward, in OpenAI's chat and legacy shapes, streamed and not, with `echo` and
token-id prompts; and lm-evaluation-harness scoring through the server as its users do it
(`local-completions` for multiple choice, `local-chat-completions` for generation)."""

import json
import os
import subprocess
import sys

import httpx
import pytest
import torch
import yaml

from lmforge.eval.harness import run_harness
from lmforge.eval.multiple_choice import evaluate_task
from lmforge.models import load_model_and_tokenizer, packaged_gguf, resolve_model_dir
from lmforge.tasks import load_task
from tests.conftest import ROOT, LiveServer, write_jsonl

openai = pytest.importorskip("openai")
TEXT = "The capital of France is Paris, and the capital of Germany is"


@pytest.fixture(scope="module")
def smollm2():
    folder = resolve_model_dir(packaged_gguf())
    model, tok = load_model_and_tokenizer(str(folder))
    return folder, model, tok


@pytest.fixture(scope="module")
def server(smollm2):
    s = LiveServer(str(smollm2[0]), "--name", "smol", "--max-batch", "4", "--dtype", "fp32")  # as the reference
    yield s
    s.stop()


def reference(model, ids: list[int]) -> torch.Tensor:
    """Each position's log-probabilities from one plain forward."""
    with torch.no_grad():
        return torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)


def test_echoed_and_generated_log_probs_equal_a_transformers_forward(smollm2, server):
    _, model, tok = smollm2
    prompt = tok(TEXT).input_ids
    body = {"prompt": prompt, "echo": True, "max_tokens": 6, "logprobs": 3, "temperature": 0}
    answer = httpx.post(server.url + "/v1/completions", json=body, timeout=120).json()["choices"][0]
    lp = answer["logprobs"]
    generated = model.generate(torch.tensor([prompt]), max_new_tokens=6, do_sample=False)[0].tolist()
    ids = generated[: len(lp["tokens"])]  # the reply may end early on EOS (its log-prob is reported)
    ref = reference(model, ids)
    assert answer["text"] == tok.decode(ids) and lp["tokens"] == [tok.decode([i]) for i in ids]
    assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None
    for k in range(1, len(ids)):
        assert lp["token_logprobs"][k] == pytest.approx(float(ref[k - 1, ids[k]]), abs=2e-4)
        best = torch.topk(ref[k - 1], 3)
        top = lp["top_logprobs"][k]
        assert list(top) == [tok.decode([i]) for i in best.indices.tolist()]
        assert list(top.values()) == pytest.approx(best.values.tolist(), abs=2e-4)
    assert lp["text_offset"] == [len(tok.decode(ids[:k])) for k in range(len(ids))]

    scored = httpx.post(
        server.url + "/v1/completions", json={"prompt": TEXT, "echo": True, "max_tokens": 0, "logprobs": 0}, timeout=60
    ).json()
    only = scored["choices"][0]
    assert only["text"] == TEXT and only["finish_reason"] == "length" and scored["usage"]["completion_tokens"] == 0
    assert only["logprobs"]["token_logprobs"][1:] == pytest.approx(lp["token_logprobs"][1 : len(prompt)], abs=1e-5)


def test_a_token_holding_part_of_a_character_reports_its_own_bytes(smollm2):
    from lmforge.serve.logprobs import TokenText

    tok = smollm2[2]
    text = "Grüße aus 日本 🙂"
    ids = tok(text, add_special_tokens=False).input_ids
    text_of = TokenText(tok)
    assert any("\ufffd" in text_of(i)[0] for i in ids)  # the emoji and the kanji span tokens
    assert b"".join(text_of(i)[1] for i in ids).decode() == text


def test_chat_log_probs_streamed_and_not_and_several_prompts(server):
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    ask = dict(model="smol", messages=[{"role": "user", "content": "Name a colour."}], max_tokens=10, temperature=0)
    full = client.chat.completions.create(**ask, logprobs=True, top_logprobs=2).choices[0]
    content = full.logprobs.content
    assert "".join(t.token for t in content) == full.message.content
    assert bytes(b for t in content for b in t.bytes).decode() == full.message.content
    for t in content:  # greedy: the token taken is the most likely one
        assert len(t.top_logprobs) == 2 and t.top_logprobs[0].token == t.token
        assert t.top_logprobs[0].logprob == pytest.approx(t.logprob) and t.logprob <= 0
    streamed = [c for c in client.chat.completions.create(**ask, logprobs=True, top_logprobs=2, stream=True)]
    tokens = [t for c in streamed if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.content]
    assert [t.token for t in tokens] == [t.token for t in content]
    assert [t.logprob for t in tokens] == pytest.approx([t.logprob for t in content], abs=1e-5)

    many = client.completions.create(model="smol", prompt=["Paris is", "Berlin is"], max_tokens=4, temperature=0, n=2)
    assert [c.index for c in many.choices] == [0, 1, 2, 3]
    assert many.choices[0].text == many.choices[1].text != many.choices[2].text == many.choices[3].text
    one = client.completions.create(model="smol", prompt="Berlin is", max_tokens=4, temperature=0)
    assert many.choices[2].text == one.choices[0].text
    paris = client.completions.create(model="smol", prompt="Paris is", max_tokens=1).usage.prompt_tokens
    assert many.usage.prompt_tokens == paris + one.usage.prompt_tokens  # each prompt counted once


@pytest.mark.parametrize(
    "route, body, param",
    [
        ("/v1/completions", {"prompt": "x", "max_tokens": 0}, "max_tokens"),
        ("/v1/completions", {"prompt": "x", "logprobs": 21}, "logprobs"),
        ("/v1/completions", {"prompt": "x", "logprobs": True}, "logprobs"),
        ("/v1/completions", {"prompt": [5, 10**7]}, "prompt[1]"),
        ("/v1/completions", {"prompt": [[5], [6, -1]]}, "prompt[1][1]"),
        ("/v1/completions", {"prompt": []}, "prompt"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2}, "top_logprobs"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "logprobs": 1}, "logprobs"),
    ],
)
def test_bad_log_prob_requests_name_the_field(server, route, body, param):
    r = httpx.post(server.url + route, json=body, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text


def test_lmforge_eval_scores_choices_through_the_server_as_it_does_locally(smollm2, server, tmp_path):
    """`lmforge eval MODEL --endpoint URL -t SPEC` on multiple-choice tasks: each context + choice sent
    as MODEL's token ids with echo + logprobs; the log-likelihoods are the local scorer's (fp32 on both
    sides) and every decision is the same."""
    folder, model, tok = smollm2
    specs = [ROOT / "examples" / "tasks" / f"{name}.toml" for name in ("arc_sample_en", "hellaswag_sample_de")]
    command = [sys.executable, "-m", "lmforge", "eval", str(folder), "--endpoint", server.url + "/v1"]
    command += ["--model", "smol", "--limit", "10", "--run-dir", str(tmp_path)]
    for spec in specs:
        command += ["-t", str(spec)]
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=os.environ | {"OPENAI_API_KEY": ""})
    assert out.returncode == 0, out.stderr[-2000:]
    served = {t["task"]: t for t in json.loads((tmp_path / "eval" / "results.json").read_text())["tasks"]}
    assert model.dtype == torch.float32  # as the server's --dtype
    for spec in specs:
        task = load_task(spec)
        ours = evaluate_task(model, tok, task, limit=10)
        theirs = served[task.spec.name]
        assert theirs["items"] == 10 and theirs["per_item"] == ours["per_item"], task.spec.name
        for a, b in zip(theirs["loglikelihoods"], ours["loglikelihoods"]):
            assert a == pytest.approx(b, abs=2e-3), task.spec.name
    assert "arc_sample_en: acc" in out.stdout


def test_choices_through_an_endpoint_need_the_model_named(tmp_path, server):
    out = subprocess.run(
        [sys.executable, "-m", "lmforge", "eval", "--endpoint", server.url + "/v1", "--run-dir", str(tmp_path)]
        + ["-t", str(ROOT / "examples" / "tasks" / "arc_sample_en.toml")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode != 0 and "name the served model too" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_lm_eval_scores_through_the_server_as_lmforge_eval_and_hflm_do(smollm2, server, tmp_path):
    """Multiple choice through `local-completions` (log-likelihoods from `echo` + `logprobs`, prompts as
    token ids, four to a request): per-item decisions identical to `lmforge eval` and to lm-eval's own
    HFLM on the same model. Then a generative task through `local-chat-completions`."""
    from lm_eval import simple_evaluate
    from lm_eval.models.openai_completions import LocalChatCompletion, LocalCompletionsAPI
    from lm_eval.tasks import TaskManager

    folder, model, tok = smollm2
    task = load_task(ROOT / "examples" / "tasks" / "arc_sample_en.toml")
    ours = evaluate_task(model, tok, task)
    hflm = run_harness(model, tok, [], [task], tmp_path / "hflm")[0]
    api = LocalCompletionsAPI(
        base_url=server.url + "/v1/completions",
        model="smol",
        tokenizer=str(folder),
        tokenizer_backend="huggingface",
        tokenized_requests=True,
        batch_size=4,
        add_bos_token=True,  # the tokenizer's own special tokens, as HFLM encodes by default
    )
    served = run_harness(None, None, [], [task], tmp_path / "api", lm=api)[0]
    assert served["items"] == hflm["items"] == ours["items"] == 30
    for metric in ("acc", "acc_norm"):
        assert served["per_item"][metric] == hflm["per_item"][metric] == ours["per_item"][metric], metric

    questions = [{"question": q, "answer": "-"} for q in ("Name a colour.", "Say hello.", "Count to three.")]
    data = write_jsonl(tmp_path / "gen.jsonl", questions)
    spec = {
        "task": "say_something",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "{{question}}",
        "doc_to_target": "{{answer}}",
        "generation_kwargs": {"until": ["\n"], "max_gen_toks": 12, "do_sample": False, "temperature": 0},
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 1.0},
    }
    (tmp_path / "gen").mkdir()
    (tmp_path / "gen" / "say_something.yaml").write_text(yaml.safe_dump(spec))
    chat = LocalChatCompletion(base_url=server.url + "/v1/chat/completions", model="smol", tokenizer_backend=None)
    out = simple_evaluate(
        model=chat,
        tasks=["say_something"],
        task_manager=TaskManager(include_path=str(tmp_path / "gen")),
        apply_chat_template=True,
        log_samples=True,
        verbosity="ERROR",
    )
    replies = [s["resps"][0][0] for s in sorted(out["samples"]["say_something"], key=lambda s: s["doc_id"])]
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    for q, reply in zip(questions, replies):
        direct = client.chat.completions.create(
            model="smol",
            messages=[{"role": "user", "content": q["question"]}],
            max_tokens=12,
            temperature=0,
            stop=["\n"],
        )
        assert reply == direct.choices[0].message.content and reply
    assert json.dumps(out["results"]["say_something"])  # scored, end to end


def test_an_endpoint_without_prompt_log_probs_gets_a_one_line_error():
    """A server that answers `echo` without the prompt's log-probs (or a 400 for it, as the llama.cpp
    backend does) ends the run with an error naming what is missing, not a made-up score."""
    from types import SimpleNamespace

    from lmforge.endpoint import EndpointError, Reply
    from lmforge.eval.endpoint_scoring import endpoint_loglikelihoods
    from lmforge.eval.loglikelihood import Encoded

    def client(logprobs):
        def score(prompt):
            return Reply("x", "length", len(prompt), 1, False, logprobs)

        def run(fn, jobs, progress=None):
            out = []
            for job in jobs:
                try:
                    out.append(fn(job))
                except EndpointError as e:
                    out.append(e)
            return out

        return SimpleNamespace(cfg=SimpleNamespace(base_url="http://127.0.0.1:1/v1"), score=score, map=run)

    items = [Encoded([1, 2, 3], [[4], [5, 6]])]
    full = {"token_logprobs": [None, -1.0, -2.0, -0.5, -0.25, -0.125]}
    assert endpoint_loglikelihoods(client(full), items) == [[-0.5, -0.75]]
    for bad in (None, {"token_logprobs": [None, -1.0]}, {"token_logprobs": [None, -1.0, -2.0, "x", None, None]}):
        with pytest.raises(EndpointError, match="2 of 2 scoring requests failed") as e:
            endpoint_loglikelihoods(client(bad), items)
        assert "log-prob" in str(e.value) and "\n" not in str(e.value)
