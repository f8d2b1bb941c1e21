"""Generative tasks: answer extraction and normalisation on recorded replies (English and German
numbers), scoring with pass@n and maj@n, the engine's batched replies equal to transformers'
`generate`, the same answers through `lmforge serve` (`--endpoint`) and through lm-eval's
`generate_until` (the exported YAML), and the per-language aggregate."""

import json

import pytest
import torch

from lmforge.errors import ConfigError
from lmforge.eval.aggregate import aggregate, aggregate_delta
from lmforge.eval.answers import INVALID, extract, normalise, read_number, score
from lmforge.eval.generative import engine_replies, evaluate_generative
from lmforge.models import load_model_and_tokenizer, packaged_gguf, resolve_model_dir
from lmforge.tasks import load_task
from tests.conftest import ROOT, LiveServer, write_jsonl

TASKS = ROOT / "examples" / "tasks"
GENERATIVE = [TASKS / f"{b}_sample_{lang}.toml" for b in ("arith", "qa") for lang in ("en", "de")]


@pytest.mark.parametrize(
    "reply, how, pattern, want",
    [
        (" 12 + 5 = 17. The answer is 17.", "last_number", None, "17"),
        ("Es sind 1.200 Hühner, also 1.700.\n", "last_number", None, "1.700"),
        ("She pays 7.50 euros", "first_number", None, "7.50"),
        ("No number here.", "last_number", None, INVALID),
        ("  Paris. ", "exact", None, "Paris."),
        ("#### 42", "regex", r"#### (\-?[0-9.,]+)", "42"),
        ("the answer: yes", "regex", r"answer: (\w+)", "yes"),
        ("I think (B) is right", "choice_letter", None, "B"),
        ("all lowercase words", "choice_letter", None, INVALID),
        ("A good guess: the answer is C.", "choice_letter", None, "C"),
        ("D", "choice_letter", None, "D"),
    ],
)
def test_extraction(reply, how, pattern, want):
    assert extract(reply, how, pattern) == want


@pytest.mark.parametrize(
    "text, language, value",
    [
        ("1.000,5", "de", 1000.5),
        ("1,000.5", "en", 1000.5),
        ("1.000", "de", 1000.0),
        ("1.000", "en", 1.0),
        ("2,5", "de", 2.5),
        ("1,000,000", "en", 1e6),
        ("12.345.678", "de", 12345678.0),
        ("-3", "en", -3.0),
        ("1\u202f000", "de", 1000.0),
        ("2,5", "en", None),  # not an English number: left as text
        ("1.5.3", "de", None),
        ("abc", "en", None),
    ],
)
def test_numbers_are_read_in_the_tasks_language(text, language, value):
    assert read_number(text, language) == value


def test_normalisation_and_scores():
    assert normalise("  Der  Rhein! ", ["case", "punctuation", "whitespace"], "de") == "der rhein"
    assert normalise("7,50", ["numbers"], "de") == normalise("7.5", ["numbers"], "de") == "7.5"
    assert score("2.400", ["2400"], ["numbers"], "de") == {"exact_match": 1.0, "f1": 1.0}
    assert score("2.400", ["2400"], ["numbers"], "en")["exact_match"] == 0.0  # 2.4 in English
    assert score("the Rhine river", ["the Rhine", "Rhine"], ["case", "whitespace"], "en")["f1"] == pytest.approx(0.8)
    assert score(INVALID, [INVALID], [], "en") == {"exact_match": 0.0, "f1": 0.0}


def test_shipped_generative_tasks_load_and_a_perfect_reply_scores_one():
    """Replies that repeat each item's gold answer score 1; each German arithmetic answer written
    the German way ("1.200", "7,50") still matches."""
    for path in GENERATIVE:
        task = load_task(path)
        assert task.spec.output == "generate" and len(task.docs) >= 20
        lang = task.spec.language

        def perfect(prompts, indices, task=task, lang=lang):
            golds = [d[task.spec.answer] for d in task.docs]
            out = []
            for g in golds[: len(prompts)]:
                g = g[0] if isinstance(g, list) else g
                text = (
                    g
                    if isinstance(g, str)
                    else (f"{g:,}".replace(",", "X").replace(".", ",").replace("X", ".") if lang == "de" else f"{g:,}")
                )
                out.append([f" So it is {text}" if task.spec.extract == "last_number" else f" {text}"])
            return out

        r = evaluate_generative(task, perfect)
        assert r["metrics"]["exact_match"]["value"] == 1.0, (path, r["answers"][:3])
        assert r["invalid"] == 0


def test_pass_and_majority_at_n(tmp_path):
    write_jsonl(tmp_path / "t.jsonl", [{"q": "a", "answer": "1"}, {"q": "b", "answer": "2"}])
    (tmp_path / "t.toml").write_text(
        'name = "t"\nlanguage = "en"\ndata = "t.jsonl"\nprompt = "{{q}}"\noutput = "generate"\n'
        'extract = "last_number"\ntemperature = 0.8\nsamples = 3\nmetrics = ["exact_match"]\n'
    )
    task = load_task(tmp_path / "t.toml")
    replies = [["1", "7", "1"], ["5", "2", "nothing"]]
    r = evaluate_generative(task, lambda prompts, indices: replies)
    assert r["metrics"]["exact_match"]["value"] == pytest.approx((2 / 3 + 1 / 3) / 2)  # pass@1
    assert r["metrics"]["pass@3"]["value"] == 1.0 and r["metrics"]["maj@3"]["value"] == 0.5
    bad = 'name = "t"\nlanguage = "en"\ndata = "t.jsonl"\nprompt = "{{q}}"\noutput = "generate"\n'
    for extra, message in (
        ('extract = "regex"\n', "needs `regex`"),
        ('metrics = ["acc"]\n', "do not apply"),
        ("samples = 4\n", "needs temperature"),
        ('extract = "regex"\nregex = "(unclosed"\n', "regex"),
    ):
        (tmp_path / "bad.toml").write_text(bad + extra)
        with pytest.raises(ConfigError, match=message):
            load_task(tmp_path / "bad.toml")


def test_the_aggregate_is_centred_on_chance():
    def task(name, lang, scores, chance):
        return {
            "task": name,
            "language": lang,
            "items": len(scores),
            "chance": chance,
            "per_item": {"acc_norm": scores},
        }

    chance = [task("a", "de", [1, 0, 0, 0], 0.25), task("b", "de", [1, 0], 0.5)]
    perfect = [task("a", "de", [1, 1, 1, 1], 0.25), task("b", "de", [1, 1], 0.5)]
    assert aggregate(chance)["de"]["value"] == pytest.approx(0.0)
    assert aggregate(perfect)["de"]["value"] == pytest.approx(1.0)
    generative = [{"task": "g", "language": "en", "items": 4, "chance": 0.0, "per_item": {"exact_match": [1, 1, 0, 0]}}]
    agg = aggregate(generative)
    assert agg["en"]["value"] == 0.5 and agg["en"]["ci95"][0] <= 0.5 <= agg["en"]["ci95"][1]
    delta = aggregate_delta(perfect, chance)["de"]
    assert delta["delta"] == pytest.approx(1.0) and delta["p_value"] < 0.05
    assert aggregate_delta(chance, chance)["de"]["p_value"] == 1.0


@pytest.fixture(scope="module")
def smollm2():
    return load_model_and_tokenizer(str(resolve_model_dir(packaged_gguf())), dtype=torch.float32)


def test_batched_replies_equal_transformers_generate(smollm2):
    """Every item of a task in one continuously batched engine run, each reply the tokens
    `generate` gives that prompt alone (greedy), cut at the task's stop sequence."""
    model, tok = smollm2
    task = load_task(TASKS / "arith_sample_en.toml")
    spec = task.spec.model_copy(update={"max_new_tokens": 24})
    prompts = [f"Question: {d['question']}\nAnswer:" for d in task.docs[:6]]
    replies = engine_replies(model, tok, prompts, spec, batch_size=4)
    for prompt, (reply,) in zip(prompts, replies):
        ids = tok.encode(prompt)
        out = model.generate(torch.tensor([ids]), max_new_tokens=24, do_sample=False)[0, len(ids) :]
        text = tok.decode(out, skip_special_tokens=True)
        want = min((text.split(stop)[0] for stop in spec.until), key=len)
        assert reply == want, (prompt, reply, text)


def same_as_the_harness(model, tok, tasks, work_dir, limit: int) -> dict:
    """Each task's extracted answers by lmforge's engine, asserted equal to lm-eval's
    `generate_until` (HFLM over the same model, the exported YAML); lmforge's results by task."""
    from lm_eval.models.huggingface import HFLM

    from lmforge.eval.harness import run_harness

    ours = {}
    for t in tasks:
        replies = lambda prompts, indices, t=t: engine_replies(model, tok, prompts, t.spec, indices=indices)  # noqa: E731
        ours[t.spec.name] = evaluate_generative(t, replies, limit=limit)
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=1)
    harness = {r["task"]: r for r in run_harness(model, tok, [], tasks, work_dir, limit=limit, lm=lm)}
    for name, r in ours.items():
        theirs = [a[0].strip() for a in harness[name]["answers"]]
        assert [a[0].strip() for a in r["answers"]] == theirs, name
    return ours


@pytest.mark.slow
def test_the_demo_model_answers_as_the_harness_says(demo, tmp_path):
    model, tok = load_model_and_tokenizer(str(demo[0]), dtype=torch.float32)
    same_as_the_harness(model, tok, [load_task(p) for p in GENERATIVE], tmp_path, limit=6)


@pytest.mark.slow
def test_the_same_answers_through_the_harness_and_through_a_server(smollm2, tmp_path):
    """Greedy answers on the shipped arithmetic and QA samples (EN and DE): lmforge's engine,
    lm-eval's `generate_until` over the exported YAML (HFLM, the same model), and `lmforge eval
    --endpoint` against `lmforge serve` extract the same answer for every item."""
    from lmforge.eval.stage import run_eval_stage
    from lmforge.recipe import EndpointConfig, EvalConfig

    model, tok = smollm2
    ours = same_as_the_harness(model, tok, [load_task(p) for p in GENERATIVE], tmp_path / "h", limit=8)
    cfg = EvalConfig(tasks=[str(p) for p in GENERATIVE], limit=8)
    server = LiveServer(str(resolve_model_dir(packaged_gguf())), "--name", "smol", "--dtype", "fp32")
    try:
        endpoint = EndpointConfig(base_url=server.url + "/v1", model="smol", api_key_env=None)
        summary = run_eval_stage(cfg.model_copy(update={"endpoint": endpoint}), tmp_path / "run")
        served = {t["task"]: t for t in json.loads(open(summary["results"]).read())["tasks"]}
    finally:
        server.stop()
    for name, r in ours.items():
        assert served[name]["answers"] == r["answers"], name
    assert set(summary["aggregate"]) == {"en", "de"}
