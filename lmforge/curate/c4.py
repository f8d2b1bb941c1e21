"""C4's line rules (Raffel et al. 2020, and the reference c4_utils code), as datatrove applies them.

Lines without terminal punctuation, with fewer than 3 words, mentioning javascript or a cookie /
terms-of-use policy, or holding a 1000+ character word are removed from the text; a page with
"lorem ipsum" or a curly bracket, or with fewer than 5 sentences left, is dropped. Sentences are
counted with a regular expression instead of a spaCy pass per line (see words.py).
"""

import re

from lmforge.curate.words import count_sentences

CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
END_PUNCTUATION = (".", "?", "!", '"', "'")
POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")


def c4_lines(
    text: str,
    *,
    remove_citations: bool = True,
    filter_no_terminal_punct: bool = True,
    min_num_sentences: int = 5,
    min_words_per_line: int = 3,
    max_word_length: int = 1000,
    filter_lorem_ipsum: bool = True,
    filter_javascript: bool = True,
    filter_curly_bracket: bool = True,
    filter_policy: bool = True,
) -> tuple[str, str | None]:
    """(text with the failing lines removed, reason when the whole page is dropped else None)."""
    kept, sentences = [], 0
    for line in text.splitlines():
        line = line.strip()
        words = line.split()
        if max_word_length != -1 and any(len(w) > max_word_length for w in words):
            continue
        if remove_citations:
            line = CITATION.sub("", line)
        if filter_no_terminal_punct and (not line.endswith(END_PUNCTUATION) or line.endswith("...")):
            continue
        if len(words) < min_words_per_line:
            continue
        lower = line.lower()
        if filter_lorem_ipsum and "lorem ipsum" in lower:
            return text, "lorem_ipsum"
        if filter_javascript and "javascript" in lower:
            continue
        if filter_curly_bracket and "{" in line:
            return text, "curly_bracket"
        if filter_policy and any(p in lower for p in POLICY):
            continue
        if min_num_sentences != -1:
            sentences += count_sentences(line)
        kept.append(line)
    if sentences < min_num_sentences:
        return text, "too_few_sentences"
    return "\n".join(kept).strip(), None
