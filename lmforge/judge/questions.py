"""MT-Bench files in FastChat's layouts: `question.jsonl` (question_id, category, turns, optional
reference) and answer files (question_id, answer_id, model_id, choices[{index, turns}], tstamp)."""

import json
from pathlib import Path

from lmforge.errors import DataError

CATEGORIES = ("writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities")
NEEDS_REFERENCE = ("math", "reasoning", "coding")
TEMPERATURE = {
    "writing": 0.7,
    "roleplay": 0.7,
    "extraction": 0.0,
    "math": 0.0,
    "coding": 0.0,
    "reasoning": 0.0,
    "stem": 0.1,
    "humanities": 0.1,
}  # MT-Bench's sampling per category


def _jsonl(path: Path) -> list[tuple[dict, str]]:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append((json.loads(line), f"{path}:{n}"))
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{n}: malformed JSON ({e.msg})") from None
    return rows


def read_questions(path: str | Path) -> tuple[list[dict], list[dict]]:
    """(usable questions, skipped ones with file:line and reason)."""
    questions, skipped = [], []
    for q, where in _jsonl(Path(path)):
        if not isinstance(q.get("turns"), list) or not q["turns"] or "question_id" not in q:
            skipped.append({"where": where, "reason": "not a question (needs question_id and turns)"})
        elif q.get("category") not in CATEGORIES:
            skipped.append({"where": where, "reason": f"unknown category {q.get('category')!r}"})
        else:
            questions.append({**q, "where": where})
    return questions, skipped


def read_answers(path: str | Path) -> dict:
    """question_id -> list of turns, from a FastChat answer file (first choice)."""
    return {a["question_id"]: a["choices"][0]["turns"] for a, _ in _jsonl(Path(path))}


def answer_row(question_id, model_id: str, turns: list[str], tstamp: float) -> dict:
    return {
        "question_id": question_id,
        "answer_id": f"{model_id}-{question_id}",
        "model_id": model_id,
        "choices": [{"index": 0, "turns": turns}],
        "tstamp": tstamp,
    }


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
