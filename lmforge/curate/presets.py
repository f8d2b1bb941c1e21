"""Per-language thresholds of the heuristic filters, picked by each document's detected language.

Each preset is what the named pipeline actually runs, not the filters' bare defaults:

- `en` is FineWeb (datatrove's examples/fineweb.py): Gopher repetition and quality with the
  published values (Gopher table A1), C4 **with its terminal-punctuation line rule switched off**
  (`filter_no_terminal_punct=False`: the rule deletes every line not ending in . ! ? " ', which
  empties one-line news articles ending in an agency tag such as "(APA, 16.7.2015)"), and
  FineWeb's own quality filter with its defaults.
- `de` is FineWeb-2's German pipeline (fineweb-2-pipeline.py with configs/deu_Latn.yml): no C4
  filter at all ("we do not apply the C4 filters"); Gopher repetition with the paragraph and
  line-character rules off and German n-gram limits; FineWeb quality with the short-line rule off
  (`short_line_thr=999`), `char_duplicates_ratio=0.1`, no line-punctuation floor and a lower
  newline ratio; Gopher quality with German stop words (min 2), average word length 0-15 and
  alpha-word ratio 0.774.

Two departures from those pipelines, both lmforge options of the rules (LMFORGE_ONLY below), keep
real news and reports that the published rules drop (measured on examples/curation/, see
tests/test_curate_regression.py): Gopher's alphabetic-word ratio is taken over words, not over
punctuation tokens (`punctuation_counts_as_word=False`, the paper's definition; with datatrove's
split, a market report with figures in every sentence falls to 0.71-0.77), and FineWeb's
line-punctuation rule reads a line's end before a closing source tag (`source_tag_ends_line`).

A filter set to None is not run for that language. A recipe overrides any value per language and
filter, e.g. `[curate.thresholds.de.gopher_quality] min_stop_words = 3`; giving values for a
filter a preset leaves off turns it on with those values on top of the filter's defaults.
FineWeb-2's German language-score floor (0.821) was set on GlotLID scores; lmforge uses lid.176,
so `curate.language_threshold` keeps FineWeb's 0.65.
"""

import copy

FILTERS = ("gopher_repetition", "gopher_quality", "c4", "fineweb")
# options of lmforge's rules that datatrove's filters do not have (and their datatrove behaviour)
LMFORGE_ONLY = {"gopher_quality": {"punctuation_counts_as_word": True}, "fineweb": {"source_tag_ends_line": False}}

PRESETS: dict[str, dict[str, dict | None]] = {
    "en": {
        "gopher_repetition": {},
        "gopher_quality": {"punctuation_counts_as_word": False},
        "c4": {"filter_no_terminal_punct": False},
        "fineweb": {"source_tag_ends_line": True},
    },
    "de": {
        "gopher_repetition": {
            "dup_para_frac": 0,
            "dup_line_char_frac": 0,
            "dup_para_char_frac": 0,
            "dup_line_frac": 0.263,
            "top_n_grams": [[2, 0.169], [3, 0.153], [4, 0.137]],
            "dup_n_grams": [[5, 0.141], [6, 0.134], [7, 0.126], [8, 0.117], [9, 0.108], [10, 0.098]],
        },
        "gopher_quality": {
            "min_avg_word_length": 0,
            "max_avg_word_length": 15,
            "max_non_alpha_words_ratio": 0.774,
            "min_stop_words": 2,
            "punctuation_counts_as_word": False,
            "stop_words": [
                "der",
                "und",
                "die",
                "in",
                "von",
                "im",
                "den",
                "des",
                "mit",
                "das",
                "er",
                "dem",
                "als",
                "wurde",
                "für",
            ],
        },
        "c4": None,
        "fineweb": {
            "line_punct_thr": 0.0,
            "new_line_ratio": 0.152,
            "short_line_thr": 999,
            "char_duplicates_ratio": 0.1,
            "source_tag_ends_line": True,
        },
    },
}


def thresholds(language: str, overrides: dict[str, dict[str, dict]] | None = None) -> dict[str, dict | None] | None:
    """The preset for `language` with the recipe's overrides applied; None if neither knows it."""
    own = (overrides or {}).get(language)
    if language not in PRESETS and own is None:
        return None
    merged = copy.deepcopy(PRESETS.get(language, PRESETS["en"]))
    for name, values in (own or {}).items():
        merged[name] = {**(merged[name] or {}), **values}
    return merged
