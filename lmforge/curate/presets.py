"""Per-language thresholds of the heuristic filters, picked by each document's detected language.

`en` holds the published English values (Gopher table A1, C4, FineWeb), which are datatrove's
defaults. `de` holds FineWeb-2's German values (configs/deu_Latn.yml of huggingface/fineweb-2):
German stop words, longer average words allowed, tighter repetition limits, no line-punctuation
floor and a lower newline ratio. A recipe overrides any value per language and filter, e.g.
`[curate.thresholds.de.gopher_quality] min_stop_words = 3`.
"""

import copy

FILTERS = ("gopher_repetition", "gopher_quality", "c4", "fineweb")

PRESETS: dict[str, dict[str, dict]] = {
    "en": {"gopher_repetition": {}, "gopher_quality": {}, "c4": {}, "fineweb": {}},
    "de": {
        "gopher_repetition": {
            "dup_line_frac": 0.263,
            "top_n_grams": [[2, 0.169], [3, 0.153], [4, 0.137]],
            "dup_n_grams": [[5, 0.141], [6, 0.134], [7, 0.126], [8, 0.117], [9, 0.108], [10, 0.098]],
        },
        "gopher_quality": {
            "min_avg_word_length": 0,
            "max_avg_word_length": 15,
            "max_non_alpha_words_ratio": 0.774,
            "stop_words": ["der", "und", "die", "in", "von", "im", "den", "des", "mit", "das", "er", "dem", "als",
                           "wurde", "für"],
        },
        "c4": {},
        "fineweb": {"line_punct_thr": 0.0, "new_line_ratio": 0.152},
    },
}


def thresholds(language: str, overrides: dict[str, dict[str, dict]] | None = None) -> dict[str, dict] | None:
    """The preset for `language` with the recipe's overrides applied; None if neither knows it."""
    own = (overrides or {}).get(language)
    if language not in PRESETS and own is None:
        return None
    merged = copy.deepcopy(PRESETS.get(language, PRESETS["en"]))
    for name, values in (own or {}).items():
        merged[name].update(values)
    return merged
