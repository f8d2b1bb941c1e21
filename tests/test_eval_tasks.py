"""Task specs and items: loading, validation errors with file:line, few-shot prompts, metrics."""

import json
import math
from pathlib import Path

import pytest

from lmforge.errors import ConfigError, DataError
from lmforge.eval.multiple_choice import item_correct, stderr
from lmforge.tasks import Item, build_items, load_task
from tests.conftest import ROOT, write_jsonl

SHIPPED = sorted((ROOT / "examples" / "tasks").glob("*.toml"))


def spec(tmp_path, data_rows, **extra) -> Path:
    write_jsonl(tmp_path / "items.jsonl", data_rows)
    lines = ['name = "t"', 'language = "en"', 'data = "items.jsonl"', 'prompt = "Q: {{q}}\\nA:"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    path = tmp_path / "t.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


ROWS = [{"q": f"question {i}", "choices": [f"yes {i}", f"no {i}", "maybe"], "answer": i % 3} for i in range(6)]


def test_shipped_tasks_load_in_both_languages():
    tasks = [load_task(p) for p in SHIPPED]
    by_benchmark = {}
    for t in tasks:
        by_benchmark.setdefault(t.benchmark, set()).add(t.spec.language)
        assert len(t.docs) >= 16
    names = ("arc", "hellaswag", "piqa", "arith", "qa", "ifeval")
    assert by_benchmark == {f"{n}_sample": {"en", "de"} for n in names}


@pytest.mark.parametrize(
    "row, message",
    [
        ({"q": "x", "answer": 0}, "missing field 'choices'"),
        ({"q": "x", "choices": ["a", "b"], "answer": 2}, "answer index 2 out of range for 2 choices"),
        ({"q": "x", "choices": ["a", "b"], "answer": "0"}, "answer index '0' out of range"),
        ({"q": "x", "choices": ["a"], "answer": 0}, "'choices' must be a list of at least two non-empty strings"),
        ({"choices": ["a", "b"], "answer": 0}, "prompt template fails on this item"),
    ],
)
def test_bad_items_fail_with_file_and_line(tmp_path, row, message):
    path = spec(tmp_path, [ROWS[0], row])
    with pytest.raises(DataError) as err:
        load_task(path)
    assert f"items.jsonl:2: {message}" in str(err.value)


def test_malformed_json_and_unknown_spec_key(tmp_path):
    path = spec(tmp_path, ROWS)
    with open(tmp_path / "items.jsonl", "a") as f:
        f.write("{not json\n")
    with pytest.raises(DataError, match=r"items.jsonl:7: malformed JSON"):
        load_task(path)
    bad = spec(tmp_path, ROWS, choice_field="choices")
    with pytest.raises(ConfigError, match=r"t.toml: unknown key 'choice_field'"):
        load_task(bad)


def test_zero_shot_prompt_and_choice_continuations(tmp_path):
    items = build_items(load_task(spec(tmp_path, ROWS)))
    assert items[1].context == "Q: question 1\nA:" and items[1].choices == ["yes 1", "no 1", "maybe"]
    assert items[1].gold == 1 and items[1].delimiter == " "


def test_k_shot_is_seeded_and_never_shows_the_item_its_own_answer(tmp_path):
    task = load_task(spec(tmp_path, ROWS))
    a, b = build_items(task, 3, seed=1), build_items(task, 3, seed=1)
    assert [i.context for i in a] == [i.context for i in b]
    assert [i.context for i in a] != [i.context for i in build_items(task, 3, seed=2)]
    for doc, item in zip(ROWS, a):
        shots = item.context.split("\n\n")
        assert len(shots) == 4 and shots[-1] == f"Q: {doc['q']}\nA:"
        assert all(f"Q: {doc['q']}\n" not in s for s in shots[:-1])
        for s in shots[:-1]:  # each example is followed by its right answer
            i = int(s.split("question ")[1].split("\n")[0])
            assert s.endswith(f"A: {ROWS[i]['choices'][ROWS[i]['answer']]}")
    with pytest.raises(ConfigError, match="6-shot needs 7 few-shot examples"):
        build_items(task, 6)


def test_first_n_few_shot_prompts_share_one_beginning_as_the_harness_builds_them(tmp_path):
    """`fewshot_sampler = "first_n"`: the first k examples in file order for every item (the item
    itself left out), byte for byte the contexts lm-eval builds from the exported YAML."""
    from lm_eval.tasks import TaskManager, get_task_dict

    from lmforge.eval.harness import export_task

    task = load_task(spec(tmp_path, ROWS, num_fewshot=2, fewshot_sampler="first_n"))
    ours = [i.context for i in build_items(task, seed=1234)]
    assert {c.split("\n\n")[0] for c in ours[2:]} == {"Q: question 0\nA: yes 0"}  # one shared start
    assert ours[0].startswith("Q: question 1\nA: no 1\n\nQ: question 2\nA: maybe\n\n")  # never itself
    export_task(task, tmp_path / "harness")
    theirs = get_task_dict(["t"], TaskManager(include_path=str(tmp_path / "harness")))["t"]
    theirs.set_fewshot_seed(1234)
    theirs.build_all_requests(limit=None, rank=0, world_size=1)
    contexts = {inst.doc_id: inst.args[0] for inst in theirs.instances}
    assert ours == [contexts[i] for i in range(len(ROWS))]


def test_metrics_follow_the_harness_definitions():
    lls = [-1.2, -4.4, -2.0]  # raw: choice 0 wins; per character: 'bb' (-1.0); per byte: 'éééé' (8 bytes)
    assert item_correct(Item("c", ["a", "éééé", "bb"], 0, " "), lls) == {"acc": 1, "acc_norm": 0, "acc_bytes": 0}
    assert item_correct(Item("c", ["a", "éééé", "bb"], 2, " "), lls) == {"acc": 0, "acc_norm": 1, "acc_bytes": 0}
    assert item_correct(Item("c", ["a", "éééé", "bb"], 1, " "), lls) == {"acc": 0, "acc_norm": 0, "acc_bytes": 1}
    assert item_correct(Item("c", ["x", "y"], 1, " "), [-1.0, -1.0])["acc"] == 0  # tie: first choice wins
    values = [1, 0, 1, 1]
    assert stderr(values) == pytest.approx(math.sqrt(0.75 / 3) / math.sqrt(4))  # sample std (ddof=1) / sqrt(n)
    assert math.isnan(stderr([1]))
