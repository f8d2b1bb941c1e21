"""Single 1-10 grading and pairwise A/B grading through the judge endpoint, in FastChat's judgment
layouts. A judgment with no parseable rating or verdict is asked again once, naming the format;
if it still has none it is a parse failure (score -1 / winner "error"), excluded from every average."""

import time

from lmforge.endpoint import EndpointError
from lmforge.judge.parse import parse_rating, parse_verdict
from lmforge.judge.prompts import RETRY, RETRY_PAIR, pair_prompt, single_prompt
from lmforge.text import identify

JUDGE_PARAMS = {"temperature": 0.0, "max_tokens": 1024}
MIN_CHECKED_CHARS = 40


def _ask(client, messages: list[dict], parse, retry_text: str) -> tuple[str, object, bool]:
    """(judgment text, parsed value or None, retried)."""
    reply = client.chat(messages, **JUDGE_PARAMS)
    value = parse(reply.text)
    if value is not None:
        return reply.text, value, False
    again = client.chat(
        messages + [{"role": "assistant", "content": reply.text}, {"role": "user", "content": retry_text}],
        **JUDGE_PARAMS,
    )
    return again.text, parse(again.text), True


def wrong_language(answer: str, lang: str) -> str | None:
    """The language an answer is in when it is long enough to tell and not `lang`."""
    if len(answer) < MIN_CHECKED_CHARS:
        return None
    found, score = identify(answer)
    return found if found != lang and score >= 0.5 else None


def grade_single(
    client,
    judge_id: str,
    lang: str,
    q: dict,
    answers: list[str],
    reference: list[str] | None,
    turn: int,
    model_id: str,
    language_check: bool,
) -> dict:
    messages = single_prompt(lang, q["turns"], answers, turn, reference)
    row = {
        "question_id": q["question_id"],
        "model": model_id,
        "judge": [judge_id, f"single-{lang}" + ("-ref" if reference else "") + f"-t{turn}"],
        "user_prompt": messages[-1]["content"],
        "turn": turn,
        "category": q["category"],
        "tstamp": time.time(),
    }
    try:
        text, score, retried = _ask(client, messages, parse_rating, RETRY.get(lang, RETRY["en"]))
    except EndpointError as e:
        return {**row, "judgment": "", "score": -1, "error": f"endpoint: {e.reason}", "retried": False}
    row |= {"judgment": text, "score": score if score is not None else -1, "retried": retried}
    if score is None:
        row["error"] = "parse failure"
    elif language_check and (other := wrong_language(answers[turn - 1], lang)):
        row |= {"score": 1.0, "language_penalty": f"answer in {other}, not {lang}"}
    return row


def _winner(letter: str | None, model_is_a: bool) -> str:
    if letter is None:
        return "error"
    if letter == "C":
        return "tie"
    return "model_1" if (letter == "A") == model_is_a else "model_2"


def grade_pair(
    client,
    judge_id: str,
    lang: str,
    q: dict,
    model: list[str],
    baseline: list[str],
    reference: list[str] | None,
    turn: int,
    model_id: str,
    baseline_id: str,
) -> dict:
    """Judged twice, the second time with the answers swapped (model_1 = the model, model_2 = baseline)."""
    g1 = pair_prompt(lang, q["turns"], model, baseline, turn, reference)
    g2 = pair_prompt(lang, q["turns"], baseline, model, turn, reference)
    row = {
        "question_id": q["question_id"],
        "model_1": model_id,
        "model_2": baseline_id,
        "judge": [judge_id, f"pair-{lang}" + ("-ref" if reference else "") + f"-t{turn}"],
        "turn": turn,
        "category": q["category"],
        "g1_user_prompt": g1[-1]["content"],
        "g2_user_prompt": g2[-1]["content"],
        "tstamp": time.time(),
    }
    retry = RETRY_PAIR.get(lang, RETRY_PAIR["en"])
    try:
        t1, v1, r1 = _ask(client, g1, parse_verdict, retry)
        t2, v2, r2 = _ask(client, g2, parse_verdict, retry)
    except EndpointError as e:
        return {
            **row,
            "g1_winner": "error",
            "g2_winner": "error",
            "g1_judgment": "",
            "g2_judgment": "",
            "error": f"endpoint: {e.reason}",
            "retried": 0,
        }
    return {
        **row,
        "g1_winner": _winner(v1, True),
        "g2_winner": _winner(v2, False),
        "g1_judgment": t1,
        "g2_judgment": t2,
        "retried": int(r1) + int(r2),
    }


def pair_outcome(row: dict) -> str | None:
    """'win' / 'loss' / 'tie' for the model, counted only when both orders agree (else a tie);
    None when either judgment failed to parse."""
    g1, g2 = row["g1_winner"], row["g2_winner"]
    if "error" in (g1, g2):
        return None
    if g1 == g2 == "model_1":
        return "win"
    if g1 == g2 == "model_2":
        return "loss"
    return "tie"
