"""Near dedup past one machine's memory: datatrove's four MinHash stages, wired for lmforge.

    signatures (N tasks) -> buckets (one task per band) -> clusters (1 task) -> filter (N tasks)

Only signatures, band matches and the ids to remove ever exist as a whole, never the documents,
so each stage runs on the Local, Slurm or Ray executor like the filter phase. What lmforge adds:
the same words as the in-memory `MinHashDedup` (lower-cased `\\w+` words, digits and accents
kept: datatrove's default text normalisation maps every digit to 0 and strips diacritics, which
would make "Seite 12" and "Seite 98" one n-gram), and a filter that counts its drops as
`dropped_near_duplicate` like every other dropping step, so the run's accounting balances.
Exact-Jaccard verification of candidate pairs exists only in the in-memory path.
"""

from datatrove.pipeline.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.utils.hashing import HashConfig
from datatrove.utils.text import TextNormConfig
from datatrove.utils.word_tokenizers import WordTokenizer

from lmforge.curate.dedup import WORD


class Words(WordTokenizer):
    """The in-memory path's word split, in datatrove's tokenizer interface (picklable for workers)."""

    def word_tokenize(self, text: str) -> list[str]:
        return WORD.findall(text.lower())

    def sent_tokenize(self, text: str) -> list[str]:
        return [text]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [(0, len(text))]


class AccountedMinhashFilter(MinhashDedupFilter):
    """datatrove's stage-4 filter, reporting drops under the reason `near_duplicate`."""

    def stat_update(self, *labels, value: int = 1, unit: str = None):
        super().stat_update(*labels, value=value, unit=unit)
        if "dropped" in labels:
            super().stat_update("dropped_near_duplicate", value=value, unit=unit)


def minhash_config(bands: int, rows: int, ngram: int, seed: int = 1) -> MinhashConfig:
    words_only = TextNormConfig(norm_unicode_diacritics=False, norm_numbers=False)
    # sha1: datatrove passes str to xxhash, which current xxhash releases refuse
    return MinhashConfig(
        hash_config=HashConfig(hash_fc="sha1", precision=64),
        norm_config=words_only,
        num_buckets=bands,
        hashes_per_bucket=rows,
        n_grams=ngram,
        seed=seed,
    )


def signature_step(folder: str, config: MinhashConfig) -> MinhashDedupSignature:
    return MinhashDedupSignature(output_folder=folder, config=config, language=Words())


def bucket_step(signatures: str, folder: str, config: MinhashConfig) -> MinhashDedupBuckets:
    return MinhashDedupBuckets(input_folder=signatures, output_folder=folder, config=config)


def cluster_step(buckets: str, folder: str, config: MinhashConfig) -> MinhashDedupCluster:
    return MinhashDedupCluster(input_folder=buckets, output_folder=folder, config=config)


def filter_step(remove_ids: str, exclusion_writer=None) -> AccountedMinhashFilter:
    return AccountedMinhashFilter(input_folder=remove_ids, exclusion_writer=exclusion_writer)
