"""Self-Instruct: ROUGE-L against the `rouge-score` package, the named filters, a scripted run end
to end into Alpaca JSONL that `sft` reads, and a run against a live `lmforge serve`."""

import json

import pytest

from lmforge.recipe import EndpointConfig, SelfInstructConfig
from lmforge.self_instruct import run_self_instruct_stage
from lmforge.self_instruct.filters import instruction_problem
from lmforge.self_instruct.rouge import rouge_l, words
from lmforge.self_instruct.stage import read_seeds
from tests.conftest import ROOT, free_port
from tests.fault_endpoint import FaultEndpoint, Running

SEEDS_EN, SEEDS_DE = ROOT / "examples/self_instruct/seeds_en.jsonl", ROOT / "examples/self_instruct/seeds_de.jsonl"


def test_rouge_l_matches_the_rouge_score_package_on_english():
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    texts = [s["instruction"] for s in read_seeds(SEEDS_EN)]
    pairs = [(a, b) for a in texts[:12] for b in texts[:12]] + [
        ("Write a poem about the sea.", "Write a short poem about the sea at night."),
        ("List three tips for sleeping well.", "Give three practical tips for someone who has trouble falling asleep."),
    ]
    for a, b in pairs:
        assert rouge_l(a, b) == pytest.approx(scorer.score(a, b)["rougeL"].fmeasure, abs=1e-12), (a, b)
    # German words keep their umlauts (rouge-score's tokenizer would cut "Übersetze" to "bersetze")
    assert words("Übersetze den Satz ins Französische") == ["übersetze", "den", "satz", "ins", "französische"]


def test_novelty_filter_drops_a_paraphrase_and_keeps_a_new_task():
    cfg = SelfInstructConfig()
    pool = [words(s["instruction"]) for s in read_seeds(SEEDS_EN)]
    seed = "Give three practical tips for someone who has trouble falling asleep."
    paraphrase = "Give three practical tips for someone who has trouble falling asleep at night."
    assert rouge_l(paraphrase, seed) > 0.7
    assert instruction_problem(paraphrase, pool, "en", cfg)[0] == "too similar (ROUGE-L)"
    new = "Describe how a bicycle gear system lets a rider climb steep hills with less effort."
    reason, best = instruction_problem(new, pool, "en", cfg)
    assert reason is None and best < 0.7
    assert (
        instruction_problem("Zeichne ein Diagramm der Wasserversorgung einer Stadt.", [], "de", cfg)[0]
        == "blacklisted keyword"
    )
    assert instruction_problem("Erkläre, wie ein Kühlschrank Wärme aus dem Inneren abführt.", [], "de", cfg)[0] is None


def test_seed_files_follow_the_self_instruct_layout():
    for path, lang in ((SEEDS_EN, "en"), (SEEDS_DE, "de")):
        seeds = read_seeds(path)
        assert len(seeds) == 30 and {"id", "name", "instruction", "instances", "is_classification"} <= set(seeds[0])
        assert sum(s["is_classification"] for s in seeds) >= 5
        assert all(instruction_problem(s["instruction"], [], lang, SelfInstructConfig())[0] is None for s in seeds), (
            lang
        )


def test_scripted_run_names_every_drop_and_writes_alpaca_for_sft(tmp_path):
    from lmforge.chat.formats import read_conversations

    ep = FaultEndpoint()
    server = Running(ep.app, free_port())
    try:
        cfg = SelfInstructConfig(
            seeds=str(SEEDS_EN),
            target=3,
            rounds=3,
            prompts_per_round=1,
            endpoint=EndpointConfig(base_url=server.url, model="fake", api_key_env=None),
        )
        s = run_self_instruct_stage(cfg, tmp_path / "run")
    finally:
        server.stop()
    assert s["dropped"] == {
        "too similar (ROUGE-L)": 1,
        "blacklisted keyword": 1,
        "too short": 1,
        "starts with punctuation": 1,
        "wrong language": 1,
    }
    assert s["generated"] == s["kept_instructions"] + sum(s["dropped"].values()) == 8
    assert s["kept_instructions"] == 3 == s["instances_kept"]
    rows = [json.loads(line) for line in open(s["output"])]
    assert {r["instruction"] for r in rows} == {
        "Describe three ways to save water in a small garden during a dry summer.",
        "Write a polite note to a neighbour asking them to keep their dog quiet at night.",
        "Suggest a weekly meal plan for a student with a small budget and little time.",
    }
    assert all(r["input"] == "" and r["output"] and r["language"] == "en" for r in rows)
    convs, skipped, _ = read_conversations(s["output"])
    assert len(convs) == 3 and not skipped
    assert (tmp_path / "run" / "plots" / "self_instruct.png").is_file()
    report = (tmp_path / "run" / "report.md").read_text()
    assert "| too similar (ROUGE-L) | 1 |" in report
    # the second round's demonstrations include generated tasks (6 seeds + 2 generated)
    candidates = [json.loads(line) for line in open(tmp_path / "run" / "self_instruct" / "candidates.jsonl")]
    assert [c["dropped"] for c in candidates].count(None) == 3


@pytest.mark.slow
def test_self_instruct_against_a_live_lmforge_serve(tiny_run, tmp_path):
    import httpx

    from tests.conftest import LiveServer, pretrain_tiny

    server = LiveServer(str(pretrain_tiny(tiny_run, "model.max_position_embeddings=1024")))
    try:
        model = httpx.get(server.url + "/v1/models").json()["data"][0]["id"]
        cfg = SelfInstructConfig(
            seeds=str(SEEDS_DE),
            language="de",
            target=5,
            rounds=2,
            prompts_per_round=2,
            endpoint=EndpointConfig(
                base_url=server.url + "/v1", model=model, api_key_env=None, max_tokens=48, temperature=0.7
            ),
        )
        s = run_self_instruct_stage(cfg, tmp_path / "run")
    finally:
        server.stop()
    assert s["endpoint"]["requests"] >= 4 and s["endpoint"]["failures"] == {}
    assert s["generated"] == s["kept_instructions"] + sum(s["dropped"].values())
    assert (tmp_path / "run" / "self_instruct" / "instructions.jsonl").is_file()
