"""Topical guardrails: decisions, the labelled check, and a blocked topic never reaching the model."""

import json

import httpx
import pytest

from lmforge.errors import ConfigError
from lmforge.guardrails import check, load_rails, read_labelled
from lmforge.guardrails.evaluate import precision_recall
from tests.conftest import ROOT, LiveServer, lmforge, scrape

RAILS = ROOT / "examples" / "guardrails" / "rails.toml"
PROMPTS = ROOT / "examples" / "guardrails" / "prompts.jsonl"


@pytest.fixture(scope="module")
def rails():
    return load_rails(RAILS)


def test_an_example_utterance_is_decided_by_its_topic_and_logged(rails, tmp_path, caplog):
    rails.log_file = tmp_path / "decisions.jsonl"
    with caplog.at_level("INFO", logger="lmforge.guardrails"):
        blocked = rails.check("How many ibuprofen tablets can I take a day?")
        passed = rails.check("How can I track my order?")
    rails.log_file = None
    assert not blocked.allowed and blocked.topic == "medical_advice" and "medical advice" in blocked.reply
    assert passed.allowed and passed.topic == "orders_and_delivery"
    logged = [json.loads(line) for line in (tmp_path / "decisions.jsonl").read_text().splitlines()]
    assert [d["topic"] for d in logged] == ["medical_advice", "orders_and_delivery"] and "score" in logged[0]
    assert "guardrails" in caplog.text


def test_allow_list_mode_refuses_what_no_allowed_topic_is_near(tmp_path):
    f = tmp_path / "allow.toml"
    f.write_text(
        'mode = "allow"\nrefusal = "Only orders."\nthreshold = 0.85\n[[topics]]\nname = "orders"\n'
        'action = "allow"\nexamples = ["Where is my order?", "Wo ist meine Bestellung?"]\n'
    )
    r = load_rails(f)
    assert r.check("Where is my order?").allowed
    refused = r.check("Write a poem about the sea.")
    assert not refused.allowed and refused.reply == "Only orders." and refused.topic is None


def test_precision_recall_and_the_balancing_threshold(rails):
    assert precision_recall(["a", "a", None, "b"], ["a", None, "a", "b"], "a") == (0.5, 0.5, 2)
    texts, labels = read_labelled(PROMPTS)
    res = check(rails, texts, labels)
    rows = {r["topic"]: r for r in res["topics"]}
    assert set(rows) == {"medical_advice", "legal_advice", "politics", "investment_advice"}
    assert sum(r["support"] for r in rows.values()) + labels.count(None) == len(texts) == 102
    for r in rows.values():  # at the balancing threshold precision and recall are as close as the data allows
        assert abs(r["balanced_precision"] - r["balanced_recall"]) <= abs(r["precision"] - r["recall"]) + 1e-9
    print("\n" + "\n".join(f"{t}: P {r['precision']:.2f} R {r['recall']:.2f}" for t, r in rows.items()))


def test_the_shipped_rails_reach_90_percent_precision_and_recall_in_both_languages(rails):
    """The issue's target, on prompts that are not the rails' own examples, per topic and per language."""
    records = [json.loads(line) for line in PROMPTS.read_text(encoding="utf-8").splitlines()]
    examples = {e.lower() for t in rails.topics for e in t.examples}
    assert not any(r["text"].lower() in examples for r in records)  # held out
    res = check(rails, [r["text"] for r in records], [r["topic"] for r in records])
    for r in res["topics"]:
        assert r["precision"] >= 0.9 and r["recall"] >= 0.9, r
    for lang in ("en", "de"):
        part = [r for r in records if r["language"] == lang]
        assert len(part) > 40 and check(rails, [r["text"] for r in part], [r["topic"] for r in part])["accuracy"] >= 0.9


def test_check_cli_and_bad_rails_files(tmp_path):
    out = lmforge("guardrails", "check", str(RAILS), "--labelled", str(PROMPTS)).stdout
    assert "medical_advice" in out and "refuse/pass accuracy" in out
    bad = tmp_path / "bad.toml"
    bad.write_text('[[topics]]\nname = "x"\naction = "block"\nexamples = ["a"]\n')
    with pytest.raises(ConfigError, match="a blocked topic needs a reply"):
        load_rails(bad)
    bad.write_text('mode = "maybe"\n[[topics]]\nname = "x"\nreply = "no"\nexamples = ["a"]\n')
    proc = lmforge("guardrails", "check", str(bad), "--labelled", str(PROMPTS), check=False)
    assert proc.returncode == 2 and 'mode must be "block" or "allow"' in proc.stderr


def test_a_blocked_topic_never_reaches_the_model_in_serve_or_chat(tmp_path, tiny_data, tiny_run):
    from tests.conftest import pretrain_tiny

    model = pretrain_tiny(tiny_run, "train.seq_len=128")
    s = LiveServer(str(model), "--guardrails", str(RAILS), "--name", "tiny")
    try:

        def ask(text, **kw):
            return httpx.post(
                s.url + "/v1/chat/completions",
                timeout=60,
                json={
                    "messages": [{"role": "user", "content": text}],
                    "max_tokens": 4,
                    **kw,
                },
            )

        before = httpx.get(s.url + "/health").json()["submitted"]
        r = ask("Welche Partei soll ich bei der Bundestagswahl wählen?")
        assert r.status_code == 200 and "politischen Themen" in r.json()["choices"][0]["message"]["content"]
        streamed = httpx.post(
            s.url + "/v1/chat/completions",
            timeout=60,
            json={"messages": [{"role": "user", "content": "Should I invest my savings in bitcoin?"}], "stream": True},
        )
        assert "investment advice" in streamed.text and streamed.text.rstrip().endswith("data: [DONE]")
        assert httpx.get(s.url + "/health").json()["submitted"] == before  # the model saw neither
        assert ask("How can I track my order?").json()["choices"][0]["finish_reason"] in ("stop", "length")
        assert httpx.get(s.url + "/health").json()["submitted"] == before + 1
        blocks = {k[1]: v for k, v in scrape(s.url).items() if k[0] == "lmforge_guardrail_blocks_total"}
        assert blocks[(("topic", "politics"),)] == 1 and sum(blocks.values()) == 2
    finally:
        log = s.stop()
    assert '"topic": "politics"' in log
    # `chat --guardrails` answers a blocked topic with its reply instead of the model's
    out = lmforge(
        "chat",
        str(model),
        "--guardrails",
        str(RAILS),
        "--max-tokens",
        "4",
        "--prompt",
        "Wie viele Schmerztabletten darf ich am Tag nehmen?",
    ).stdout
    assert "keine medizinischen Ratschläge" in out
