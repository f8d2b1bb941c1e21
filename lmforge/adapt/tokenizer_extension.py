"""Tokenizer extension: add target-language tokens to a BPE tokenizer, and embeddings for them.

Both kinds of BPE that open models ship are extended the same way (lmforge/tokenizer/kinds.py):
byte-level (GPT-2, Llama 3, Qwen, SmolLM, lmforge's own) and SentencePiece-style (Llama 2, LeoLM,
Mistral v0.1, Gemma: BPE over "▁"-marked text with `<0xXX>` byte fallback). A BPE trained on the
target corpus, in the base's own symbol space, proposes merges in frequency order; a merge joins
two pieces the base vocabulary (or an earlier added token) already has into one it lacks. Those
merges are appended after the base's own, with new ids after the base's last id. A
SentencePiece-style base first gains the target language's frequent characters it can only spell
in bytes (German umlauts in an English vocabulary), so that merges can build on them. Existing ids
never change and the base's merges keep priority, so the old language tokenizes (almost always) as
before, and every text still round-trips exactly (byte-level BPE is lossless whatever its merges;
byte fallback spells whatever the pieces do not cover). A new token's input and output embedding
starts as the mean of the embeddings of the pieces the *old* tokenizer cut it into: a common
initialisation for vocabulary extension that puts a new token where the model already represents
its text, instead of at random.
"""

import json
import tempfile
from collections import Counter
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import AutoTokenizer

from lmforge.data.readers import iter_documents
from lmforge.errors import ConfigError
from lmforge.tokenizer.kinds import bpe_kind, merge_pairs


def _target_merges(tokenizer, kind: str, texts: list[str], size: int) -> list[tuple[str, str]]:
    """Merges a BPE learns from `texts` in the base's symbols, most frequent first."""
    trainer = trainers.BpeTrainer(
        vocab_size=size,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet() if kind == "byte-level" else [],
    )
    if kind == "byte-level":
        learner = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())  # the base's own pre-tokenizer
        learner.model = models.BPE()
    else:  # words as SentencePiece sees them: "▁" before each, pieces never cross one
        learner = Tokenizer(models.BPE())
        learner.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    learner.train_from_iterator(texts, trainer)
    return merge_pairs(json.loads(learner.to_str())["model"])


def _missing_characters(vocab: dict, texts: list[str], count: int) -> list[str]:
    """The target's characters a SentencePiece-style vocabulary spells in bytes, most frequent first
    (seen at least 10 times: one stray symbol is not worth a row)."""
    seen = Counter(ch for text in texts for ch in text if not ch.isspace())
    return [ch for ch, n in seen.most_common() if n >= 10 and ch not in vocab][:count]


def extend_tokenizer(tokenizer, files: list[str | Path], count: int, text_field: str = "text"):
    """Return (extended tokenizer, the added tokens in the vocabulary's own spelling)."""
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    kind = bpe_kind(spec)
    if kind is None:
        raise ConfigError(
            "tokenizer extension needs a byte-level BPE (GPT-2, Llama 3, Qwen, SmolLM, lmforge) or a "
            "SentencePiece-style BPE with byte fallback (Llama 2, Mistral v0.1, Gemma)"
        )
    model = spec["model"]
    vocab = model["vocab"]
    texts = [text for text, _ in iter_documents(files, text_field)]
    next_id = max([*vocab.values(), *(t["id"] for t in spec.get("added_tokens", []))]) + 1
    merges_as_list = bool(model["merges"]) and isinstance(model["merges"][0], list)
    added = _missing_characters(vocab, texts, count) if kind == "sentencepiece" else []
    for ch in added:
        vocab[ch] = next_id
        next_id += 1
    for a, b in _target_merges(tokenizer, kind, texts, len(vocab) + 4 * count):
        if len(added) >= count:
            break
        if a in vocab and b in vocab and a + b not in vocab:
            vocab[a + b] = next_id
            next_id += 1
            model["merges"].append([a, b] if merges_as_list else f"{a} {b}")
            added.append(a + b)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        (Path(tmp) / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
        extended = AutoTokenizer.from_pretrained(tmp)
    return extended, added


def old_pieces(old_tokenizer, token: str) -> list[int]:
    """The ids the old tokenizer's BPE cuts a new token's spelling into (bytes where it lacks a
    character), in its own symbol space: no normalizer or pre-tokenizer runs twice."""
    return [old_tokenizer.convert_tokens_to_ids(p.value) for p in old_tokenizer.backend_tokenizer.model.tokenize(token)]


@torch.no_grad()
def init_new_embeddings(model, old_tokenizer, new_tokenizer, added: list[str]) -> None:
    """Grow the embedding (and untied output) matrices; each new row = mean of its old pieces' rows."""
    old_in = model.get_input_embeddings().weight.detach().clone()
    old_out = model.get_output_embeddings().weight.detach().clone()
    tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
    model.resize_token_embeddings(len(new_tokenizer), mean_resizing=False)
    emb_in, emb_out = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    for token in added:
        new_id = new_tokenizer.convert_tokens_to_ids(token)
        pieces = torch.tensor(old_pieces(old_tokenizer, token))
        emb_in[new_id] = old_in[pieces].mean(0)
        if not tied:
            emb_out[new_id] = old_out[pieces].mean(0)
    model.config.vocab_size = len(new_tokenizer)
