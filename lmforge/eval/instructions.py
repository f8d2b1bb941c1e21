"""Verifiable instruction following, as IFEval (Zhou et al., 2023) defines it: each prompt carries
instructions a program can check, and a reply is scored per instruction and per prompt.

    prompt-level strict       every instruction of the prompt followed by the reply as written
    instruction-level strict  the share of single instructions followed
    loose (both levels)       the same, passing when any of IFEval's relaxed readings of the reply
                              passes: first line removed, last line removed, both, and markdown
                              `*` removed from each (a model's "Sure, here it is:" does not fail
                              a format instruction)

Each checker is a small pure function `(reply, **kwargs) -> bool`, named by an id in the item's
`instructions` list, e.g. {"id": "length:max_words", "n": 50}. Counting is by whitespace words,
sentences end at . ! ? (German too), paragraphs are separated by blank lines, bullets are lines
starting with "* " or "- ".
"""

import json
import re

from lmforge.text.language import identify

SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")


def words(text: str) -> int:
    return len(re.findall(r"\w+(?:[-'’]\w+)*", text))


def sentences(text: str) -> int:
    return len(SENTENCE_END.findall(text.strip() + (" " if text.strip() else "")))


def paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]


def _unfenced(text: str) -> str:
    """JSON as models write it: possibly inside a ``` or ```json fence."""
    m = re.fullmatch(r"\s*```(?:json)?\s*(.*?)\s*```\s*", text, re.S)
    return m.group(1) if m else text


def _compare(value: int, relation: str, n: int) -> bool:
    return value <= n if relation == "at most" else value >= n if relation == "at least" else value == n


def check_max_words(reply: str, n: int) -> bool:
    return words(reply) <= n


def check_min_words(reply: str, n: int) -> bool:
    return words(reply) >= n


def check_sentences(reply: str, n: int, relation: str = "exactly") -> bool:
    return _compare(sentences(reply), relation, n)


def check_paragraphs(reply: str, n: int) -> bool:
    return len(paragraphs(reply)) == n


def check_include(reply: str, words: list[str]) -> bool:
    return all(re.search(rf"\b{re.escape(w)}\b", reply, re.I) for w in words)


def check_exclude(reply: str, words: list[str]) -> bool:
    return not any(re.search(rf"\b{re.escape(w)}\b", reply, re.I) for w in words)


def check_json(reply: str) -> bool:
    try:
        json.loads(_unfenced(reply))
    except ValueError:
        return False
    return True


def check_lowercase(reply: str) -> bool:
    return reply == reply.lower() and any(c.isalpha() for c in reply)


def check_uppercase(reply: str) -> bool:
    return reply == reply.upper() and any(c.isalpha() for c in reply)


def check_ends_with(reply: str, phrase: str) -> bool:
    return reply.strip().endswith(phrase.strip())


def check_language(reply: str, language: str) -> bool:
    return bool(reply.strip()) and identify(reply.replace("\n", " "))[0] == language


def check_bullets(reply: str, n: int) -> bool:
    return len(re.findall(r"^\s*[*-]\s+\S", reply, re.M)) == n


CHECKERS = {
    "length:max_words": check_max_words,
    "length:min_words": check_min_words,
    "length:sentences": check_sentences,
    "length:paragraphs": check_paragraphs,
    "keywords:include": check_include,
    "keywords:exclude": check_exclude,
    "format:json": check_json,
    "format:bullets": check_bullets,
    "case:lowercase": check_lowercase,
    "case:uppercase": check_uppercase,
    "ends_with": check_ends_with,
    "language": check_language,
}


def follows(reply: str, instruction: dict) -> bool:
    kwargs = {k: v for k, v in instruction.items() if k != "id"}
    return CHECKERS[instruction["id"]](reply, **kwargs)


def loose_readings(reply: str) -> list[str]:
    """IFEval's relaxed readings of a reply: as written, without its first and/or last line, and
    each of those without markdown `*`."""
    lines = reply.split("\n")
    cuts = [reply, "\n".join(lines[1:]).strip(), "\n".join(lines[:-1]).strip(), "\n".join(lines[1:-1]).strip()]
    return [r for cut in cuts for r in (cut, cut.replace("*", ""))]


def score_reply(reply: str, instructions: list[dict]) -> dict[str, list[bool]]:
    """Per instruction: followed as written (strict) and in any relaxed reading (loose)."""
    readings = [r for r in loose_readings(reply) if r.strip()]
    return {
        "strict": [follows(reply, i) for i in instructions],
        "loose": [any(follows(r, i) for r in readings) for i in instructions],
    }


def check_instructions(instructions: list, where: str) -> str | None:
    """What is wrong with an item's instruction list (unknown id, wrong arguments), or None."""
    import inspect

    if not isinstance(instructions, list) or not instructions:
        return f"{where}: 'instructions' must be a non-empty list"
    for k, ins in enumerate(instructions):
        if not isinstance(ins, dict) or ins.get("id") not in CHECKERS:
            known = ", ".join(CHECKERS)
            return (
                f"{where}: instructions[{k}]: unknown id {ins.get('id') if isinstance(ins, dict) else ins!r} ({known})"
            )
        try:
            inspect.signature(CHECKERS[ins["id"]]).bind("", **{a: v for a, v in ins.items() if a != "id"})
        except TypeError as e:
            return f"{where}: instructions[{k}] ({ins['id']}): {e}"
    return None
