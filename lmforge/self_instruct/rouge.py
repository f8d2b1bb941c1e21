"""ROUGE-L F1 between two texts (longest common subsequence of words), as Self-Instruct uses it to
keep the pool novel. Words are Unicode word runs, lower-cased: the `rouge-score` package's default
tokenizer drops every non-ASCII letter (it would read "Übersetze" as "bersetze"); on ASCII text the
two agree (tests/test_self_instruct.py)."""

import re

WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def lcs(a: list[str], b: list[str]) -> int:
    if len(a) < len(b):
        a, b = b, a
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(a: str | list[str], b: str | list[str]) -> float:
    a = words(a) if isinstance(a, str) else a
    b = words(b) if isinstance(b, str) else b
    if not a or not b:
        return 0.0
    common = lcs(a, b)
    if common == 0:
        return 0.0
    precision, recall = common / len(b), common / len(a)
    return 2 * precision * recall / (precision + recall)
