"""SFT examples: mix instruction sets, filter by language (encoding: lmforge/chat/encoding.py)."""

import random
from collections import Counter, defaultdict

from lmforge.chat.encoding import encode_all
from lmforge.chat.formats import read_conversations
from lmforge.recipe import SftDataset


def mix_datasets(datasets: list[SftDataset], seed: int) -> tuple[list[dict], Counter, list[str]]:
    """Every set's conversations, language-filtered, scaled by its weight (0.5 = a seeded half,
    2 = every conversation twice), shuffled together; plus skip counts and their file:line."""
    rng = random.Random(seed)
    out, skipped, where = [], Counter(), []
    for ds in datasets:
        convs, skip, examples = read_conversations(ds.path, ds.format)
        skipped.update(skip)
        where += examples
        if ds.languages:
            keep = [c for c in convs if (c["language"] or ds.language) in ds.languages]
            skipped["other language"] += len(convs) - len(keep)
            convs = keep
        for c in convs:
            c["language"] = c["language"] or ds.language
        whole, part = divmod(ds.weight, 1)
        out += convs * int(whole) + rng.sample(convs, round(part * len(convs)))
    rng.shuffle(out)
    return out, skipped, where


def heldout_by_language(tokenizer, datasets: list[SftDataset], seed: int, max_len: int) -> dict[str, list]:
    """Held-out conversations encoded for the answer-token loss, grouped by language ("-": untagged)."""
    convs, _, _ = mix_datasets(datasets, seed)
    by_lang = defaultdict(list)
    for c in convs:
        by_lang[c["language"] or "-"].append(c)
    return {lang: encode_all(tokenizer, cs, max_len, "truncate")[0] for lang, cs in by_lang.items()}
