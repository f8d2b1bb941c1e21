"""Reverse instructions (LongForm): against a scripted endpoint that answers each document by its
tag, every filter drops what it should under its own reason, kept pairs carry the document as the
output (Alpaca JSONL that `sft` reads), and the CLI runs the same; plus a run against a live
`lmforge serve`."""

import json
import re

import pytest
from fastapi import FastAPI, Request

from lmforge.recipe import EndpointConfig, ReverseInstructConfig
from lmforge.reverse_instruct import run_reverse_instruct_stage
from lmforge.reverse_instruct.prompts import clean_reply, length_hint
from lmforge.reverse_instruct.stage import longest_shared_run
from tests.conftest import free_port, lmforge, write_jsonl
from tests.fault_endpoint import Running, chat_reply

DOCS = {
    "DOC1": "The bakery on the corner opens long before sunrise. The baker mixes flour, water and salt, "
    "lets the dough rest in wooden boxes, shapes the loaves by hand and bakes them in a stone oven. "
    "By six o'clock the first customers wait outside, and the smell of fresh bread fills the street.",
    "DOC2": "Our village library lends more than books. Families borrow board games, gardeners borrow "
    "seeds in spring, and students borrow laptops for a week at a time. The librarian keeps a list of "
    "everything on a card index, and volunteers repair what comes back broken.",
    "DOC3": "Der Fischer fährt jeden Morgen um vier Uhr auf den See hinaus. Er prüft die Netze, die er am "
    "Abend ausgelegt hat, sortiert die Fische in Kisten mit Eis und bringt sie zum Markt am Hafen. "
    "Im Winter repariert er sein Boot und flickt die Netze in der Scheune.",
    "DOC4": "Im Herbst sammeln die Kinder der Schule Kastanien im Park. Sie basteln daraus kleine Tiere "
    "mit Streichhölzern, verkaufen sie auf dem Schulfest und spenden das Geld dem Tierheim. Die Lehrerin "
    "schreibt jedes Jahr in ein dickes Heft, wie viele Tiere entstanden sind.",
    "DOC5": "Before sunrise the bakery is already busy. Flour, water and salt become dough, the dough "
    "rests in boxes, and the baker shapes each loaf by hand before it goes into the stone oven. "
    "Customers queue outside from six, drawn by the smell of bread in the street.",
    "DOC6": "The old lighthouse stopped working in 1962. Today a small museum inside shows the lamp, the "
    "logbooks of the keepers and photographs of the storms they saw. Visitors can climb the narrow "
    "stairs to the gallery and look out over the bay on clear days.",
    "DOC7": "Too short to make a good answer here.",
    "DOC8": "The harbour crane was built in 1890 to lift timber from sailing ships. It was turned by two "
    "men walking inside a large wooden wheel. After the railway came it lifted coal, and since 1975 it "
    "has stood restored beside the museum, where children may try the wheel.",
}
REPLIES = {
    "DOC1": "Explain how a small bakery prepares its bread before sunrise.",
    "DOC2": " ".join(DOCS["DOC2"].split()[:12]),  # copies the document
    "DOC3": "Beschreibe, wie ein Fischer am See seinen Arbeitstag verbringt.",
    "DOC4": "Write about children who collect chestnuts in autumn.",  # English for a German document
    "DOC5": "Explain how a small bakery prepares its bread before the sunrise.",  # a paraphrase of DOC1's
    "DOC6": "",
    "DOC8": 'Request: "Summarise the history of the old harbour crane for a museum visitor."',
}


def scripted_endpoint() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        prompt = body["messages"][-1]["content"]
        doc = re.search(r"<<<\n(.*)\n>>>", prompt, re.S).group(1)
        tag = next(t for t, text in DOCS.items() if text == doc)
        text = REPLIES[tag]
        return chat_reply(body, text)

    return app


@pytest.fixture
def endpoint():
    server = Running(scripted_endpoint(), free_port())
    yield server.url
    server.stop()


@pytest.fixture
def documents(tmp_path):
    return write_jsonl(
        tmp_path / "docs.jsonl",
        [
            {"text": text, "metadata": {"language": "de" if tag in ("DOC3", "DOC4") else "en"}}
            for tag, text in DOCS.items()
        ],
    )


def test_every_filter_names_its_drops_and_kept_pairs_are_alpaca_for_sft(endpoint, documents, tmp_path):
    from lmforge.chat.formats import read_conversations

    cfg = ReverseInstructConfig(
        inputs=[str(documents)],
        endpoint=EndpointConfig(base_url=endpoint, model="fake", api_key_env=None),
    )
    s = run_reverse_instruct_stage(cfg, tmp_path / "run")
    assert s["documents"] == s["sampled"] == 8
    assert s["dropped"] == {
        "document too short": 1,
        "request copies the document": 1,
        "request in another language": 1,
        "too similar (ROUGE-L)": 1,
        "empty request": 1,
    }
    assert s["kept"] == 3 and s["languages"] == {"en": 2, "de": 1}
    rows = [json.loads(line) for line in open(s["output"])]
    by_output = {r["output"]: r for r in rows}
    assert set(by_output) >= {DOCS["DOC3"], DOCS["DOC8"]}  # the document itself is the answer
    crane = by_output[DOCS["DOC8"]]
    assert crane["instruction"].startswith("Summarise the history of the old harbour crane for a museum visitor.")
    if crane["style"] != "query":
        assert crane["instruction"].endswith("Answer in about 50 words.")
    convs, skipped, _ = read_conversations(s["output"])
    assert len(convs) == 3 and not skipped
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Reverse instructions (LongForm)" in report and "| request copies the document | 1 |" in report
    candidates = [json.loads(line) for line in open(tmp_path / "run" / "reverse_instruct" / "candidates.jsonl")]
    assert len(candidates) == 7 and sum(c["dropped"] is None for c in candidates) == 3


def test_the_cli_with_a_language_filter(endpoint, documents, tmp_path):
    proc = lmforge(
        "reverse-instruct", "--input", str(documents), "-l", "de", "--endpoint", endpoint, "--model", "fake",
        "--run-dir", str(tmp_path / "run"),
    )  # fmt: skip
    assert "reverse-instruct: 2 documents asked about, 1 pairs kept" in proc.stdout
    assert "dropped, request in another language: 1" in proc.stdout
    bad = lmforge("reverse-instruct", "--run-dir", str(tmp_path / "r2"), check=False)
    assert bad.returncode == 2 and "reverse_instruct.inputs: give the documents" in bad.stderr


def test_pieces():
    assert clean_reply('\n  Request: "Tell me about ships."\nSure!') == "Tell me about ships."
    assert clean_reply("„Erkläre den Hafen.“") == "Erkläre den Hafen."
    assert longest_shared_run("a b c d e".split(), "x b c d y a b".split()) == 3
    assert length_hint(" ".join(["w"] * 47), "de") == " Antworte in etwa 50 Wörtern."
    assert length_hint(" ".join(["w"] * 230), "en") == " Answer in about 250 words."


@pytest.mark.slow
def test_reverse_instruct_against_a_live_lmforge_serve(tiny_run, tmp_path):
    import httpx

    from tests.conftest import ROOT, LiveServer, pretrain_tiny

    server = LiveServer(str(pretrain_tiny(tiny_run, "model.max_position_embeddings=1024")))
    try:
        model = httpx.get(server.url + "/v1/models").json()["data"][0]["id"]
        cfg = ReverseInstructConfig(
            inputs=[str(ROOT / "examples" / "corpus" / "de" / "heldout.jsonl")],
            limit=6,
            max_doc_words=400,
            endpoint=EndpointConfig(base_url=server.url + "/v1", model=model, api_key_env=None, max_tokens=24),
        )
        s = run_reverse_instruct_stage(cfg, tmp_path / "run")
    finally:
        server.stop()
    asked = s["sampled"] - s["dropped"].get("document too short", 0) - s["dropped"].get("document too long", 0)
    assert s["endpoint"]["requests"] == asked > 0 and s["endpoint"]["failures"] == {}
    assert s["kept"] + sum(s["dropped"].values()) == s["sampled"]
