"""Tokenizer extension: add target-language tokens to a byte-level BPE, and embeddings for them.

A BPE trained on the target corpus proposes merges in frequency order; a merge joins two
pieces the base vocabulary (or an earlier added token) already has into one it lacks. Those
merges are appended after the base's own, with new ids after the base's last id. Existing ids
never change and the base's merges keep priority, so English text tokenizes (almost always)
as before, and every text still round-trips exactly (a byte-level BPE is lossless whatever its
merges). A new token's input and output embedding starts as the mean of the embeddings of the
pieces the *old* tokenizer cut it into: a common initialisation for vocabulary extension that
puts a new token where the model already represents its text, instead of at random.
"""

import json
import tempfile
from pathlib import Path

import torch
from transformers import AutoTokenizer

from lmforge.errors import ConfigError
from lmforge.tokenizer import train_bpe


def _merge_pair(m) -> tuple[str, str]:
    return tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1))


def extend_tokenizer(tokenizer, files: list[str | Path], count: int, text_field: str = "text"):
    """Return (extended tokenizer, the added tokens in their byte-level spelling)."""
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    model, pre = spec["model"], spec.get("pre_tokenizer") or {}
    pre_types = {pre.get("type"), *(p.get("type") for p in pre.get("pretokenizers", []))}
    if model.get("type") != "BPE" or "ByteLevel" not in pre_types:
        raise ConfigError("tokenizer extension needs a byte-level BPE tokenizer (GPT-2, Llama-3, SmolLM, lmforge)")
    vocab = model["vocab"]
    target = json.loads(
        train_bpe(files, vocab_size=len(tokenizer) + 4 * count, text_field=text_field).backend_tokenizer.to_str()
    )["model"]["merges"]
    next_id = max([*vocab.values(), *(t["id"] for t in spec.get("added_tokens", []))]) + 1
    merges_as_list = bool(model["merges"]) and isinstance(model["merges"][0], list)
    added = []
    for m in target:
        if len(added) >= count:
            break
        a, b = _merge_pair(m)
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
        text = new_tokenizer.convert_tokens_to_string([token])
        pieces = torch.tensor(old_tokenizer.encode(text, add_special_tokens=False))
        emb_in[new_id] = old_in[pieces].mean(0)
        if not tied:
            emb_out[new_id] = old_out[pieces].mean(0)
    model.config.vocab_size = len(new_tokenizer)
