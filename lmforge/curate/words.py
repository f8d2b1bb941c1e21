"""Word splitting shared by every heuristic filter, done once per document.

datatrove's heuristic filters each call spaCy's tokenizer on the whole text (the Gopher filters,
FineWeb's filter, and C4 once per line for sentence counts); on 2 kB documents that is most of a
curation run. One regular expression reproduces spaCy's English and German splits on ordinary
prose (punctuation as separate tokens, "n't"/"'s" clitics, numbers such as 3.50 or 01.02.2024 kept
whole), and the filters share its result. Differences remain on rare shapes (abbreviations like
"U.S.", e-mail addresses), which move a few documents that sit right at a threshold; the
benchmark measures how many decisions agree with stock datatrove.
"""

import re

WORDS = re.compile(r"\w+(?=n['’]t\b)|n['’]t\b|(?<=\w)['’](?:s|re|ve|ll|d|m)\b|\w+(?:[.,:]\d+)*|\.\.\.|[^\w\s]")
# a sentence ends at terminal punctuation followed by whitespace and more text (spaCy's sentencizer)
SENTENCE_END = re.compile(r"(?<=[^\s.!?…])[.!?…]+['\"”’»)\]]*\s+(?=\S)")


def split_words(text: str) -> list[str]:
    return WORDS.findall(text)


def count_sentences(line: str) -> int:
    return len(SENTENCE_END.findall(line)) + 1 if line.strip() else 0
