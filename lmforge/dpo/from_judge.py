"""Preference pairs from a pairwise `judge` run: on each first-turn question the judged winner's
answer is chosen and the loser's rejected (a win counts only when both orders agreed, as in the
judge's own tally); ties and failed judgments are dropped and counted. Second turns are left out:
each model answered them after its own first answer, so the two share no prompt."""

import json
from collections import Counter
from pathlib import Path

from lmforge.errors import DataError
from lmforge.judge import pair_outcome, read_answers


def pairs_from_judge(judge_dir: str | Path, out: str | Path) -> dict:
    judge_dir, out = Path(judge_dir), Path(out)
    rows, dropped = [], Counter()
    files = sorted(judge_dir.glob("*/model_judgment/*_pair.jsonl"))
    if not files:
        raise DataError(
            f"{judge_dir}: no pairwise judgments (*/model_judgment/*_pair.jsonl); run `judge` with mode pairwise"
        )
    for path in files:
        lang_dir = path.parents[1]
        questions = {
            json.loads(line)["question_id"]: json.loads(line)
            for line in (lang_dir / "question.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()
        }
        answers: dict[str, dict] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            j = json.loads(line)
            if j["turn"] != 1:
                dropped["second turn"] += 1
                continue
            outcome = pair_outcome(j)
            if outcome in (None, "tie"):
                dropped["judgment failed" if outcome is None else "tie"] += 1
                continue
            for model in (j["model_1"], j["model_2"]):
                if model not in answers:
                    answers[model] = read_answers(lang_dir / "model_answer" / f"{model}.jsonl")
            win, lose = (j["model_1"], j["model_2"]) if outcome == "win" else (j["model_2"], j["model_1"])
            qid = j["question_id"]
            rows.append(
                {
                    "prompt": questions[qid]["turns"][0],
                    "chosen": answers[win][qid][0],
                    "rejected": answers[lose][qid][0],
                    "language": lang_dir.name,
                }
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return {"pairs": len(rows), "dropped": dict(dropped), "output": str(out)}
