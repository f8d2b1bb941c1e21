"""Evaluation items as text to look for: each task item's prompt (without few-shot examples) with
its gold answer, and each judge question's turns and reference answer."""

from pathlib import Path

from lmforge.data import iter_records
from lmforge.tasks import load_task
from lmforge.tasks.spec import golds_of, render


def _task_texts(spec_path: str | Path) -> tuple[str, list[str]]:
    task = load_task(spec_path)
    spec, texts = task.spec, []
    for doc in task.docs:
        prompt = render(spec.prompt, doc)
        if spec.output == "multiple_choice":
            texts.append(f"{prompt}{spec.target_delimiter}{doc[spec.choices][doc[spec.answer]]}")
        elif spec.output == "generate":
            texts.append(f"{prompt}{spec.target_delimiter}{golds_of(doc[spec.answer])[0]}")
        else:
            texts.append(prompt)
    return spec.name, texts


def eval_items(tasks: list[str | Path], judge_questions: dict[str, str | Path] | None = None) -> tuple[list, list[str]]:
    """(keys, texts): keys are (task name, item index) or (`judge_<lang>`, question id)."""
    keys, texts = [], []
    for path in tasks:
        name, item_texts = _task_texts(path)
        keys += [(name, i) for i in range(len(item_texts))]
        texts += item_texts
    for lang, path in (judge_questions or {}).items():
        for q, _ in iter_records([path]):
            parts = [t for t in q.get("turns", []) if isinstance(t, str)]
            parts += [r for r in q.get("reference", []) or [] if isinstance(r, str)]
            keys.append((f"judge_{lang}", q.get("question_id")))
            texts.append("\n".join(parts))
    return keys, texts
