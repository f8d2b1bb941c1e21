"""Instruction following (IFEval-style): every checker on replies that follow and replies that do
not, the loose readings, strict/loose prompt- and instruction-level accuracy, the shipped samples,
and a chat model's replies scored through the engine."""

import pytest

from lmforge.errors import DataError
from lmforge.eval.generative import evaluate_instructions
from lmforge.eval.instructions import CHECKERS, follows, loose_readings, score_reply
from lmforge.tasks import load_task
from tests.conftest import ROOT, write_jsonl

TASKS = ROOT / "examples" / "tasks"

# id, arguments, a reply that follows, one that does not
CASES = [
    ("length:max_words", {"n": 5}, "Der Hafen ist ruhig heute.", "The harbour is very quiet this morning."),
    ("length:min_words", {"n": 6}, "Im Herbst fallen bunte Blätter leise herab.", "Too short."),
    ("length:sentences", {"n": 2}, "Es regnet. Wir bleiben drinnen!", "One sentence only."),
    ("length:sentences", {"n": 2, "relation": "at least"}, "A. B. C.", "Just one."),
    ("length:sentences", {"n": 2, "relation": "at most"}, "Nur einer.", "Eins. Zwei. Drei."),
    ("length:paragraphs", {"n": 2}, "First part.\n\nSecond part.", "One block\nwith two lines."),
    ("keywords:include", {"words": ["Laterne", "Fluss"]}, "Die Laterne am Fluss.", "Die Laternen am Flussufer."),
    ("keywords:exclude", {"words": ["blue"]}, "The sea is grey.", "The sea is Blue."),
    ("format:json", {}, '```json\n{"city": "Köln"}\n```', '{"city": Köln}'),
    ("format:bullets", {"n": 3}, "* apple\n* pear\n- plum", "* apple\n* pear"),
    ("case:lowercase", {}, "es ist sonnig in köln.", "Es ist sonnig."),
    ("case:uppercase", {}, "ACHTUNG BAUSTELLE!", "Achtung Baustelle!"),
    ("ends_with", {"phrase": "Bis bald."}, "Danke für alles. Bis bald.", "Bis bald. Danke."),
    ("language", {"language": "de"}, "Man braucht Mehl, Wasser, Salz und Hefe.", "You need flour, water and salt."),
    ("language", {"language": "en"}, "You need flour, water, salt and yeast.", "Man braucht Mehl und Wasser."),
]


@pytest.mark.parametrize("id_, kwargs, good, bad", CASES)
def test_each_checker(id_, kwargs, good, bad):
    assert follows(good, {"id": id_, **kwargs}) and not follows(bad, {"id": id_, **kwargs})


def test_every_checker_is_tested():
    assert {c[0] for c in CASES} == set(CHECKERS)


def test_loose_readings_forgive_a_preamble_and_markdown():
    reply = "Sure, here it is:\n**es ist sonnig in köln.**"
    instruction = [{"id": "case:lowercase"}]
    assert score_reply(reply, instruction) == {"strict": [False], "loose": [True]}
    assert "es ist sonnig in köln." in loose_readings(reply)
    assert score_reply("", [{"id": "case:lowercase"}]) == {"strict": [False], "loose": [False]}


def test_prompt_and_instruction_level_accuracy(tmp_path):
    write_jsonl(
        tmp_path / "i.jsonl",
        [
            {"prompt": "a", "instructions": [{"id": "case:lowercase"}, {"id": "length:max_words", "n": 3}]},
            {"prompt": "b", "instructions": [{"id": "ends_with", "phrase": "Ende."}]},
        ],
    )
    (tmp_path / "i.toml").write_text(
        'name = "i"\nlanguage = "de"\ndata = "i.jsonl"\nprompt = "{{prompt}}"\noutput = "instructions"\n'
    )
    task = load_task(tmp_path / "i.toml")
    r = evaluate_instructions(task, lambda prompts, indices: [["nur drei wörter hier"], ["Hier.\nDas Ende."]])
    m = {k: v["value"] for k, v in r["metrics"].items()}
    assert m == {"prompt_strict": 0.5, "prompt_loose": 0.5, "instruction_strict": 2 / 3, "instruction_loose": 2 / 3}
    write_jsonl(tmp_path / "i.jsonl", [{"prompt": "a", "instructions": [{"id": "case:shouting"}]}])
    with pytest.raises(DataError, match="i.jsonl:1: instructions\\[0\\]: unknown id"):
        load_task(tmp_path / "i.toml")
    write_jsonl(tmp_path / "i.jsonl", [{"prompt": "a", "instructions": [{"id": "length:max_words"}]}])
    with pytest.raises(DataError, match="length:max_words.*missing a required argument: 'n'"):
        load_task(tmp_path / "i.toml")


def test_shipped_samples_load_and_cover_every_checker():
    for lang in ("en", "de"):
        task = load_task(TASKS / f"ifeval_sample_{lang}.toml")
        assert task.spec.chat and task.spec.until == [] and len(task.docs) == 16
        assert {i["id"] for d in task.docs for i in d["instructions"]} == set(CHECKERS)
        assert {i["language"] for d in task.docs for i in d["instructions"] if i["id"] == "language"} == {lang}


@pytest.mark.slow
def test_a_chat_model_is_scored_through_the_engine():
    """SmolLM2-Instruct answers the English sample as chat turns; the result has every level."""
    import torch

    from lmforge.eval.generative import engine_replies
    from lmforge.models import load_model_and_tokenizer, packaged_gguf, resolve_model_dir

    model, tok = load_model_and_tokenizer(str(resolve_model_dir(packaged_gguf())), dtype=torch.float32)
    task = load_task(TASKS / "ifeval_sample_en.toml")
    spec = task.spec.model_copy(update={"max_new_tokens": 48})
    r = evaluate_instructions(
        task, lambda prompts, indices: engine_replies(model, tok, prompts, spec, batch_size=4), limit=6
    )
    assert r["items"] == 6 and set(r["metrics"]) == {
        "prompt_strict",
        "prompt_loose",
        "instruction_strict",
        "instruction_loose",
    }
    assert all(reply[0].strip() for reply in r["replies"])  # chat turns answered, not continued
    assert r["metrics"]["prompt_loose"]["value"] >= r["metrics"]["prompt_strict"]["value"]
