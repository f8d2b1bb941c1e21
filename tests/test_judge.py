"""Judge: strict rating parsing on recorded judge outputs, the swapped-order pairwise logic, and
runs end to end (a scripted judge with known behaviour, and a live `lmforge serve` as the judge)."""

import json

import pytest

from lmforge.errors import DataError
from lmforge.judge.grade import _winner, pair_outcome
from lmforge.judge.parse import parse_rating, parse_verdict
from lmforge.judge.stats import pair_rates
from lmforge.recipe import EndpointConfig, JudgeConfig
from tests.conftest import ROOT, free_port, pretrain_tiny, write_jsonl
from tests.fault_endpoint import FaultEndpoint, Running

RECORDED = [  # (judge output, rating)
    ("The answer is correct and clear.\nRating: [[8]]", 8.0),
    ("Good structure but one error. Rating: [[6.5]]", 6.5),
    ("Rating: [[ 9 ]]", 9.0),
    ("Rating: 7", None),  # no brackets
    ("I would give [[3]] at first, but after checking, [[9]].", None),  # two different ratings
    ("Rating: [[7]]. To repeat: [[7]]", 7.0),  # the same rating twice is one rating
    ("Rating: [[11]]", None),  # off the scale
    ("Rating: [[0]]", None),
    ("Die Antwort ist hilfreich. Rating: [[10]]", 10.0),
    ("No rating here at all.", None),
]


@pytest.mark.parametrize("text,want", RECORDED)
def test_ratings_are_parsed_strictly(text, want):
    assert parse_rating(text) == want


def test_verdicts_and_swapped_order_logic():
    assert parse_verdict("A is better. [[A]]") == "A" and parse_verdict("[[C]]") == "C"
    assert parse_verdict("[[A]] or maybe [[B]]") is None and parse_verdict("A wins") is None
    # g1: the model is shown as A; g2: swapped, the model is B
    assert _winner("A", True) == "model_1" and _winner("A", False) == "model_2" and _winner("B", False) == "model_1"
    assert _winner("C", True) == "tie" and _winner(None, True) == "error"
    row = lambda g1, g2: {"g1_winner": g1, "g2_winner": g2}  # noqa: E731
    assert pair_outcome(row("model_1", "model_1")) == "win"
    assert pair_outcome(row("model_2", "model_2")) == "loss"
    assert pair_outcome(row("model_1", "model_2")) == "tie"  # the orders disagree: a tie, never a win
    assert pair_outcome(row("tie", "model_1")) == "tie"
    assert pair_outcome(row("error", "model_1")) is None
    rows = (
        [row("model_1", "model_1")] * 2
        + [row("model_2", "model_2")]
        + [row("model_1", "model_2")]
        + [row("error", "tie")]
    )
    r = pair_rates(rows, samples=500)
    assert r["pairs"] == 4 and r["failed"] == 1
    assert r["win_rate"] == 0.5 and r["loss_rate"] == 0.25 and r["tie_rate"] == 0.25
    assert r["adjusted_win_rate"] == 0.625 and r["position_bias_rate"] == 0.25
    lo, hi = r["adjusted_win_rate_ci95"]
    assert 0 <= lo <= 0.625 <= hi <= 1


@pytest.fixture
def scripted():
    ep = FaultEndpoint()
    server = Running(ep.app, free_port())
    yield ep, server.url
    server.stop()


def judge_cfg(url: str, **over) -> JudgeConfig:
    return JudgeConfig(
        **{
            "judge": EndpointConfig(
                base_url=url, model="scripted-judge", api_key_env=None, max_retries=1, backoff_s=0.01
            ),
            "max_new_tokens": 12,
            **over,
        }
    )


def test_end_to_end_with_a_scripted_judge(tiny_run, scripted, tmp_path):
    from lmforge.judge import run_judge_stage

    ep, url = scripted
    run_dir = pretrain_tiny(tiny_run, "model.max_position_embeddings=512")
    baseline = {}
    for lang in ("en", "de"):  # a baseline's answers in FastChat's layout
        qs = [json.loads(line) for line in (ROOT / f"examples/judge/{lang}/question.jsonl").read_text().splitlines()]
        baseline[lang] = str(
            write_jsonl(
                tmp_path / f"base_{lang}.jsonl",
                [
                    {
                        "question_id": q["question_id"],
                        "answer_id": "b",
                        "model_id": "base_" + lang,
                        "tstamp": 0,
                        "choices": [{"index": 0, "turns": ["I do not know.", "Still no idea."]}],
                    }
                    for q in qs
                ],
            )
        )
    s = run_judge_stage(judge_cfg(url, mode="both", baseline_answers=baseline), run_dir)
    for lang in ("en", "de"):
        r = s["languages"][lang]
        folder = run_dir / "judge" / lang
        answers = [json.loads(line) for line in (folder / "model_answer" / f"{s['model_id']}.jsonl").open()]
        assert len(answers) == 8 and all(len(a["choices"][0]["turns"]) == 2 for a in answers)
        assert {"question_id", "answer_id", "model_id", "choices", "tstamp"} <= set(answers[0])
        single = [json.loads(line) for line in (folder / "model_judgment" / "scripted-judge_single.jsonl").open()]
        assert len(single) == 16 and {
            "question_id",
            "model",
            "judge",
            "user_prompt",
            "judgment",
            "score",
            "turn",
            "tstamp",
        } <= set(single[0])
        assert all(1 <= j["score"] <= 10 for j in single) and r["single"]["parse_failures"] == 0
        turn2 = next(j for j in single if j["turn"] == 2)
        q = next(
            q for q in map(json.loads, (folder / "question.jsonl").open()) if q["question_id"] == turn2["question_id"]
        )
        assert q["turns"][0] in turn2["user_prompt"] and q["turns"][1] in turn2["user_prompt"]  # sees the whole talk
        ref = next(j for j in single if j["category"] == "math")
        assert "-ref-" in ref["judge"][1] and (
            "Reference answer" in ref["user_prompt"] or "Referenzantwort" in ref["user_prompt"]
        )
        table = r["single"]["table"]
        assert set(table) == {
            "writing",
            "roleplay",
            "reasoning",
            "math",
            "coding",
            "extraction",
            "stem",
            "humanities",
            "all",
        }
        # the scripted judge always prefers the answer shown first: every pair flips, so all ties
        p = r["pairwise"]
        assert p["pairs"] == 16 and p["tie_rate"] == 1.0 and p["position_bias_rate"] == 1.0
        assert p["adjusted_win_rate"] == 0.5
        pair = json.loads((folder / "model_judgment" / "scripted-judge_pair.jsonl").open().readline())
        assert {"model_1", "model_2", "g1_winner", "g2_winner", "g1_judgment", "g2_judgment", "turn"} <= set(pair)
    report = (run_dir / "report.md").read_text()
    assert "| category | en turn 1 | en turn 2 | en avg | de turn 1 | de turn 2 | de avg |" in report
    assert (run_dir / "plots" / "judge.png").is_file()
    # the release's model card carries the judge's averages in its model-index
    from huggingface_hub import ModelCard

    from lmforge.recipe import ReleaseConfig
    from lmforge.release import build_release

    build_release(ReleaseConfig(), run_dir)
    card = ModelCard.load(run_dir / "release" / "README.md")
    scores = {r.dataset_type: r.metric_value for r in card.data.eval_results if r.metric_type == "judge_score"}
    assert scores == {
        f"judge-{lang}": s["languages"][lang]["single"]["table"]["all"]["average"] for lang in ("en", "de")
    }
    assert "Graded MT-Bench-style by `scripted-judge`" in card.text
    # resumable: a rerun asks the judge nothing new (same answers with the same seed, same requests)
    before = sum(ep.requests.values())
    again = run_judge_stage(judge_cfg(url, mode="both", baseline_answers=baseline), run_dir)
    assert sum(ep.requests.values()) == before and again["endpoint"]["requests"] == 0
    # a judge that never answers in the format: each judgment asked again once, all kept as parse
    # failures (never a silent score), and a run that judged nothing fails in one line
    ep.garbage_judge = True
    with pytest.raises(DataError, match=r"judge: all 32 judgments failed .*first: no rating in any reply"):
        run_judge_stage(
            judge_cfg(url, mode="single", judge=EndpointConfig(base_url=url, model="garbage-judge", api_key_env=None)),
            run_dir,
        )
    rows = [
        json.loads(line) for line in (run_dir / "judge" / "en" / "model_judgment" / "garbage-judge_single.jsonl").open()
    ]
    assert len(rows) == 16 and all(r["error"] == "parse failure" and r["retried"] and r["score"] == -1 for r in rows)


def test_unknown_category_and_missing_reference_are_skipped_with_reasons(tiny_run, scripted, tmp_path):
    from lmforge.judge import run_judge_stage

    _, url = scripted
    run_dir = pretrain_tiny(tiny_run, "model.max_position_embeddings=512")
    qs = write_jsonl(
        tmp_path / "q.jsonl",
        [
            {"question_id": 1, "category": "writing", "turns": ["Write a line about the sea.", "Now about a lake."]},
            {"question_id": 2, "category": "cooking", "turns": ["Bake a cake."]},
            {"question_id": 3, "category": "math", "turns": ["What is 2 + 3?", "And times 4?"]},
        ],
    )
    s = run_judge_stage(judge_cfg(url, questions={"en": str(qs)}, references={}), run_dir)
    r = s["languages"]["en"]
    assert r["questions"] == 1
    assert [x["reason"] for x in r["skipped"]] == ["unknown category 'cooking'", "missing reference (math needs one)"]
    assert r["skipped"][0]["where"] == f"{qs}:2"


@pytest.mark.slow
def test_a_live_lmforge_serve_as_the_judge(tiny_run, tmp_path):
    """A real (tiny, untrained-for-judging) model as the judge: every request is answered, but no
    judgment has a rating; each is kept as a parse failure (none as a score) and the run fails in one
    line saying so."""
    import httpx

    from lmforge.judge import run_judge_stage
    from tests.conftest import LiveServer

    run_dir = pretrain_tiny(tiny_run, "model.max_position_embeddings=4096")  # room for judge prompts
    server = LiveServer(str(run_dir))
    try:
        name = httpx.get(server.url + "/v1/models").json()["data"][0]["id"]
        with pytest.raises(DataError, match="judge: all 32 judgments failed"):  # judge model: the server's only one
            run_judge_stage(
                JudgeConfig(
                    judge=EndpointConfig(base_url=server.url + "/v1", api_key_env=None, max_tokens=16), max_new_tokens=8
                ),
                run_dir,
            )
    finally:
        server.stop()
    for lang in ("en", "de"):
        rows = [
            json.loads(line) for line in (run_dir / "judge" / lang / "model_judgment" / f"{name}_single.jsonl").open()
        ]
        assert len(rows) == 16 and all(r["error"] == "parse failure" and r["judgment"] for r in rows)


def test_eval_can_include_the_judge(tiny_run, scripted):
    """`[eval.judge]`: the evaluated model is also graded, in the eval stage's own run."""
    from lmforge.eval import run_eval_stage
    from lmforge.recipe import EvalConfig
    from tests.conftest import CORPUS

    _, url = scripted
    run_dir = pretrain_tiny(tiny_run, "model.max_position_embeddings=512")
    s = run_eval_stage(
        EvalConfig(
            bpb_texts={"en": str(CORPUS / "en" / "heldout.jsonl")},
            max_docs=3,
            judge=judge_cfg(url, questions={"en": str(ROOT / "examples/judge/en/question.jsonl")}),
        ),
        run_dir,
    )
    assert s["judge"]["en"]["single"]["judgments"] == 16
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["stages"]["judge"]["model"] == s["model"]  # the model eval evaluated
    assert (run_dir / "judge" / "en" / "model_judgment" / "scripted-judge_single.jsonl").is_file()


def test_the_judge_cli_as_the_readme_shows_it_outside_the_checkout(tiny_run, scripted, tmp_path):
    """`lmforge judge --model RUN --judge-endpoint URL --judge-model NAME` from a folder outside the
    repository: the default questions and references ship inside the package."""
    from tests.conftest import lmforge

    ep, url = scripted
    run_dir = pretrain_tiny(tiny_run, "model.max_position_embeddings=512")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = lmforge(
        "judge",
        "--model",
        str(run_dir),
        "--judge-endpoint",
        url,
        "--judge-model",
        "scripted-judge",
        "--run-dir",
        str(tmp_path / "judged"),
        "--set",
        "judge.max_new_tokens=8",
        cwd=elsewhere,
    )
    assert "| en |" in out.stdout or "en" in out.stdout
    results = json.loads((tmp_path / "judged" / "manifest.json").read_text())["stages"]["judge"]
    assert set(results["languages"]) == {"en", "de"} and results["judge"]["model"] == "scripted-judge"
    assert all(r["judgments"] > 0 and r["failed"] == 0 for r in results["languages"].values())


def test_a_judge_run_whose_every_judgment_failed_exits_non_zero(tiny_run, scripted, tmp_path):
    from tests.conftest import lmforge

    ep, url = scripted
    ep.garbage_judge = True  # answers without any rating, also when asked again
    run_dir = pretrain_tiny(tiny_run, "model.max_position_embeddings=512")
    proc = lmforge(
        "judge",
        "--model",
        str(run_dir),
        "--judge-endpoint",
        url,
        "--judge-model",
        "scripted-judge",
        "--questions",
        f"en={ROOT / 'examples/judge/en/question.jsonl'}",
        "--run-dir",
        str(tmp_path / "j"),
        "--set",
        "judge.max_new_tokens=8",
        check=False,
    )  # --questions: English only
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "judge: all 16 judgments failed" in proc.stderr and "Traceback" not in proc.stderr
