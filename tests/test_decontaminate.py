"""Decontamination: planted overlaps are found (and near misses are not), per task and per training
source; curate drops the documents that hold an item, counted under their own reason; eval scores
the clean subset beside the full one."""

import json

import pytest

from lmforge.text.ngrams import NgramIndex, window_hashes, words
from tests.conftest import lmforge, pretrain_tiny, write_jsonl

ITEMS = [
    "Question: Which tool does the carpenter use to measure the old wooden table in the kitchen? Answer: a tape measure",
    "Question: Where does the young teacher water the tomatoes every morning before school? Answer: in the garden",
    "Question: What colour is the sky? Answer: blue",  # 9 words: checked whole
    "Name a fruit. Answer: pear",  # 5 words: too short to check
]


def task_spec(folder, name="planted_en"):
    rows = [
        {"text": t.split(" Answer: ")[0], "choices": [t.split(" Answer: ")[1], "a stone"], "answer": 0} for t in ITEMS
    ]
    write_jsonl(folder / f"{name}.jsonl", rows)
    spec = folder / f"{name}.toml"
    spec.write_text(f'name = "{name}"\nlanguage = "en"\ndata = "{name}.jsonl"\nprompt = "{{{{text}}}}"\n')
    return spec


def test_planted_overlaps_are_found_and_near_misses_are_not():
    index = NgramIndex(list(range(len(ITEMS))), ITEMS)
    assert index.too_short == [3]
    long_doc = "Some text first. " + ITEMS[0].upper().replace("?", " ?!") + " and more text after it."
    assert set(index.matches(long_doc)) == {0}  # case and punctuation do not hide it
    assert index.matches("in a story: the young teacher water the tomatoes every morning before school? Answer: in the")
    assert set(index.matches("Yesterday: QUESTION - what colour is the sky? answer: blue!")) == {2}
    twelve = "the young teacher water the tomatoes every morning before school? Answer: in"  # 12 words in a row
    assert index.matches(twelve) == {}
    near = ITEMS[1].replace("tomatoes", "roses")  # every 13-word window of this item holds that word
    assert index.matches(near) == {}
    assert index.matches("What colour is the sea? Answer: blue") == {}
    assert index.matches("") == {} and index.matches("Name a fruit.") == {}


def test_window_hashes_are_stable_and_positional():
    from lmforge.text.ngrams import WordHashes

    h = WordHashes()
    a = window_hashes(h(words("a b c d e")), 3)
    assert len(a) == 3 and len(set(a.tolist())) == 3
    assert window_hashes(h(words("c d e")), 3)[0] == a[2]
    assert window_hashes(h(words("e d c")), 3)[0] != a[2]
    assert WordHashes()(["köln"])[0] == h(["köln"])[0]  # no per-process salt


@pytest.mark.slow
def test_curate_drops_eval_items_decontaminate_finds_them_eval_excludes_them(tmp_path, tiny_run):
    from tests.test_curate_stage import pages

    (tmp_path / "tasks").mkdir()
    spec = task_spec(tmp_path / "tasks")
    raw = tmp_path / "raw"
    raw.mkdir()
    docs = pages("en", 12, seed=5)
    docs[3] = docs[3] + "\n" + ITEMS[0] + "."
    docs[8] = ITEMS[1] + ". " + docs[8]
    write_jsonl(raw / "web.jsonl", [{"text": d} for d in docs])
    run = tmp_path / "run"
    recipe = tmp_path / "curate.toml"
    recipe.write_text(
        f'[curate]\ninputs = ["{raw / "web.jsonl"}"]\nlanguages = ["en"]\nfilters = []\ndecontaminate = ["{tmp_path / "tasks" / "*.toml"}"]\n'
    )
    lmforge("curate", str(recipe), "--run-dir", str(run))
    accounting = json.loads((run / "curate" / "accounting.json").read_text())
    assert accounting["dropped"].get("contaminated") == 2 and accounting["balanced"]

    sft = write_jsonl(
        tmp_path / "sft.jsonl",
        [
            # the task's item text is its prompt and its gold choice
            {
                "messages": [
                    {"role": "user", "content": ITEMS[0].replace(" Answer:", "")},
                    {"role": "assistant", "content": "ok"},
                ]
            },
            {
                "messages": [
                    {"role": "user", "content": "Hallo"},
                    {"role": "assistant", "content": ITEMS[2].replace(" Answer:", "")},
                ]
            },
        ],
    )
    recipe.write_text(
        f'[decontaminate]\ntasks = ["{spec}"]\n[decontaminate.sources]\ncurate = ["{run / "curate" / "data"}"]\nsft = ["{sft}"]\n'
    )
    out = lmforge("decontaminate", str(run), "--recipe", str(recipe)).stdout
    assert "planted_en: 2 of 4 items contaminated (sft 2)" in out  # curate dropped them: none left there
    rows = [json.loads(line) for line in (run / "decontaminate" / "contaminated.jsonl").read_text().splitlines()]
    assert [(r["task"], r["item"], r["sources"]) for r in rows] == [
        ("planted_en", 0, {"sft": 1}),
        ("planted_en", 2, {"sft": 1}),
    ]
    assert rows[0]["example"]["where"].endswith("sft.jsonl:1") and "carpenter" in rows[0]["example"]["span"]
    report = (run / "report.md").read_text()
    assert "## Decontamination" in report and "| planted_en | 4 | 1 | 2 | sft 2 |" in report

    model = pretrain_tiny(tiny_run)
    lmforge("eval", str(model), "-t", str(spec), "--run-dir", str(run), "--exclude-contaminated")
    results = json.loads((run / "eval" / "results.json").read_text())
    task = results["tasks"][0]
    assert task["clean"]["items"] == 2
    kept = [v for i, v in enumerate(task["per_item"]["acc"]) if i not in (0, 2)]
    assert task["clean"]["metrics"]["acc"]["value"] == sum(kept) / 2
    assert "### Without contaminated items" in (run / "report.md").read_text()
